"""Benchmarks of the shard core against the libraries it is built on (`make bench`).

Nothing here is imported by the product; results go to `bench/results/` (not tracked).
"""
