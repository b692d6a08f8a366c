"""Avro schemas of crosscheck's records and their Confluent wire-format codec."""
