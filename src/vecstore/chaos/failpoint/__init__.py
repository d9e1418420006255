"""Failpoints: process kills and pauses, network partitions, router and ingest kills, membership."""
