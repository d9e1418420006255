"""Resharding: moving points between shards when the topology changes (docs/operations.md)."""
