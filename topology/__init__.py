"""Every Kafka topic crosscheck reads or writes, as typed definitions."""
