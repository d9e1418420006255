"""The exactly-once fence of Kafka ingestion, part of a shard's replicated state.

Per (topic, partition) the shard keeps the highest offset it has applied. An ingest batch
carries offsets; records at or below the mark are skipped (a worker retried, or another
worker replayed the partition after a rebalance) and counted, and the mark advances in the
same apply as the records. Pure data: the shard's lock guards it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vecstore.cluster.commands import IngestRecord

TopicPartition = tuple[str, int]


@dataclass
class IngestCounters:
    """Per (topic, partition): records applied, skipped as duplicates, and rejected."""

    applied: int = 0
    skipped: int = 0
    rejected: int = 0


class IngestFence:
    """Applied offsets and counters per (topic, partition)."""

    def __init__(
        self,
        applied: dict[TopicPartition, int] | None = None,
        counters: dict[TopicPartition, IngestCounters] | None = None,
    ) -> None:
        self.applied: dict[TopicPartition, int] = dict(applied or {})
        self.counters: dict[TopicPartition, IngestCounters] = dict(counters or {})

    def high(self, position: TopicPartition) -> int:
        """The highest applied offset (-1 before any)."""
        return self.applied.get(position, -1)

    def fresh(self, position: TopicPartition, records: Sequence[IngestRecord]) -> list[IngestRecord]:
        """The records past the mark, in order (offsets within a batch only grow)."""
        high = self.high(position)
        fresh = []
        for record in records:
            if record.offset > high:
                fresh.append(record)
                high = record.offset
        return fresh

    def advance(self, position: TopicPartition, high: int, applied: int, rejected: int, skipped: int) -> None:
        """Record one partition's part of a batch: the new mark and what happened to it."""
        self.applied[position] = high
        counters = self.counters.setdefault(position, IngestCounters())
        counters.applied += applied
        counters.rejected += rejected
        counters.skipped += skipped

    def digest_rows(self) -> list[list[Any]]:
        """The marks, in a stable order, for the shard's digest."""
        return sorted([t, p, o] for (t, p), o in self.applied.items())

    def status(self) -> list[dict[str, Any]]:
        """One row per partition seen, for status pages and metrics."""
        return [
            {
                "topic": topic,
                "partition": partition,
                "applied_offset": self.high((topic, partition)),
                "records_applied": counters.applied,
                "records_skipped": counters.skipped,
                "records_rejected": counters.rejected,
            }
            for (topic, partition), counters in sorted(self.counters.items())
        ]

    def to_manifest(self) -> dict[str, Any]:
        """The fence as msgpack-able data (a snapshot's manifest)."""
        return {
            "applied": [[t, p, o] for (t, p), o in sorted(self.applied.items())],
            "counters": [
                [t, p, c.applied, c.skipped, c.rejected] for (t, p), c in sorted(self.counters.items())
            ],
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> IngestFence:
        """The fence `to_manifest` wrote; KeyError, TypeError or ValueError if malformed."""
        applied = {(str(t), int(p)): int(o) for t, p, o in manifest["applied"]}
        counters = {
            (str(t), int(p)): IngestCounters(int(a), int(s), int(r)) for t, p, a, s, r in manifest["counters"]
        }
        return cls(applied, counters)
