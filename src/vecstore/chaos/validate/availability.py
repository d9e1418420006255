"""Availability figures: the error rate, and the longest time a shard acknowledged no write."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from vecstore.chaos.traffic.history import History, Outcome


@dataclass
class Availability:
    """What clients experienced."""

    writes_attempted: int = 0
    writes_acknowledged: int = 0
    reads_attempted: int = 0
    reads_acknowledged: int = 0
    strong_reads_acknowledged: int = 0
    records_produced: int = 0
    """Kafka records sent (acknowledged by the broker or not)."""
    records_acknowledged: int = 0
    error_rate: float = 0.0
    longest_unavailable: float = 0.0
    """Seconds: the longest gap between acknowledged writes of any one shard."""
    longest_by_shard: dict[int, float] = field(default_factory=dict)
    longest_starts_at: dict[int, float] = field(default_factory=dict)
    """Per shard: when its longest gap began, in seconds after the first fault."""

    @property
    def attempted(self) -> int:
        """Client operations of every kind: HTTP writes and reads, Kafka records."""
        return self.writes_attempted + self.reads_attempted + self.records_produced

    @property
    def acknowledged(self) -> int:
        """Operations that got a success answer."""
        return self.writes_acknowledged + self.reads_acknowledged + self.records_acknowledged


def measure(history: History, shards: int, start: float, end: float) -> Availability:
    """Figures over the traffic window [start, end]."""
    figures = Availability()
    acknowledged: dict[int, list[float]] = defaultdict(list)
    for write in history.writes:
        figures.writes_attempted += 1
        if write.outcome is Outcome.OK and write.completed is not None:
            figures.writes_acknowledged += 1
            acknowledged[write.shard].append(write.completed)
    for read in history.reads:
        figures.reads_attempted += 1
        if read.outcome is Outcome.OK:
            figures.reads_acknowledged += 1
            figures.strong_reads_acknowledged += read.consistency == "strong"
    for record in history.produced:
        figures.records_produced += 1
        figures.records_acknowledged += record.outcome is Outcome.OK
    attempted = figures.attempted
    failed = attempted - figures.acknowledged
    figures.error_rate = round(failed / attempted, 4) if attempted else 0.0
    for shard in range(shards):
        times = sorted([start, *(t for t in acknowledged[shard] if start <= t <= end), end])
        gap, begins = max((b - a, a) for a, b in itertools.pairwise(times))
        figures.longest_by_shard[shard] = round(gap, 2)
        figures.longest_starts_at[shard] = round(begins - start, 2)
    figures.longest_unavailable = max(figures.longest_by_shard.values(), default=0.0)
    return figures
