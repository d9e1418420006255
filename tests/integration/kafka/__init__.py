"""Kafka test support: the broker fixture and the ingest harness."""
