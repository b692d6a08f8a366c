"""Change-data-capture for development and tests: local PostgreSQL, Kafka Connect, Debezium."""
