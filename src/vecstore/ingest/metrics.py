"""Prometheus metrics of one ingest worker, in a registry of its own.

Lag is the partition's high watermark (from fetch responses) minus the offset below
which everything is applied; records/s is measured over a sliding window.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATE_WINDOW_SECONDS = 10.0


class RateMeter:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, count: int, now: float | None = None) -> None:
        """Record `count` events now."""
        moment = time.monotonic() if now is None else now
        self._events.append((moment, count))
        self._total += count
        self._trim(moment)

    def rate(self, now: float | None = None) -> float:
        """Events per second over the window."""
        moment = time.monotonic() if now is None else now
        self._trim(moment)
        return self._total / self.window

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window:
            self._total -= self._events.popleft()[1]


class IngestMetrics:
    """Every metric an ingest worker exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.records = Counter(
            "vecstore_ingest_records",
            "Records by outcome: applied, skipped (already applied), rejected (by a shard), "
            "dead_lettered (invalid, sent to the DLQ)",
            ["outcome"],
            registry=registry,
        )
        self.consumed = Counter(
            "vecstore_ingest_records_consumed", "Records polled from Kafka", registry=registry
        )
        self.dead_letters = Counter(
            "vecstore_ingest_dead_letters", "Invalid records sent to the dead-letter topic", registry=registry
        )
        self.records_per_second = Gauge(
            "vecstore_ingest_records_per_second",
            f"Records acknowledged by every shard per second, over {RATE_WINDOW_SECONDS:.0f} s",
            registry=registry,
        )
        self.lag = Gauge(
            "vecstore_ingest_lag_records",
            "High watermark minus the offset below which every record is applied",
            ["topic", "partition"],
            registry=registry,
        )
        self.safe_offset = Gauge(
            "vecstore_ingest_safe_offset",
            "Offset below which every record of the partition is applied",
            ["topic", "partition"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "vecstore_ingest_batch_seconds",
            "Time from dispatching a batch to every shard acknowledging it",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "vecstore_ingest_in_flight_records",
            "Records dispatched and not yet acknowledged",
            registry=registry,
        )
        self.shard_retries = Counter(
            "vecstore_ingest_shard_retries", "Retried shard requests", ["shard"], registry=registry
        )
        self.commits = Counter(
            "vecstore_ingest_commits", "Kafka offset commits by result", ["result"], registry=registry
        )
        self.rebalances = Counter(
            "vecstore_ingest_rebalances", "Partition revocations seen by this worker", registry=registry
        )
        self.rate = RateMeter()

    def acknowledged(self, records: int, seconds: float) -> None:
        """A batch of `records` finished `seconds` after it was dispatched."""
        self.rate.add(records)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        self.records_per_second.set(self.rate.rate())
        return generate_latest(self.registry)
