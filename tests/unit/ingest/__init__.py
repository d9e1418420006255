"""Unit tests of the ingest room (pure modules)."""
