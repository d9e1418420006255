"""The exactly-once fence of Kafka ingestion, part of a shard's replicated state.

Per (topic, partition) the shard keeps the highest offset it has applied. An ingest batch
carries offsets; records at or below the mark are skipped (a worker retried, or another
worker replayed the partition after a rebalance) and counted, and the mark advances in the
same apply as the records. Pure data: the shard's lock guards it.

Across a resharding, a shard that receives points inherits the marks of the shards that
gave them, per origin: a record for a point that came from shard S is skipped if its offset
is at or below S's mark at the cutover (S had applied it, and the copy carried it), as well
as at or below this shard's own mark. Taking one mark for all origins would skip records
an origin never applied (lost) or re-apply records another already had (applied twice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
        self.inherited: dict[int, dict[TopicPartition, int]] = {}
        """origin shard -> its marks at the cutover that brought its points here."""

    def high(self, position: TopicPartition) -> int:
        """The highest applied offset (-1 before any)."""
        return self.applied.get(position, -1)

    def fresh(
        self,
        position: TopicPartition,
        records: Sequence[IngestRecord],
        origin_of: Callable[[IngestRecord], int | None] | None = None,
    ) -> list[IngestRecord]:
        """The records past the mark, in order (offsets within a batch only grow). With
        inherited marks, `origin_of(record)` names the shard its point came from."""
        high = self.high(position)
        fresh = []
        for record in records:
            if record.offset <= high:
                continue
            if self.inherited and origin_of is not None:
                origin = origin_of(record)
                if origin is not None and record.offset <= self.inherited.get(origin, {}).get(position, -1):
                    continue
            fresh.append(record)
            high = record.offset
        return fresh

    def effective_marks(self, origins: Sequence[int]) -> dict[TopicPartition, int]:
        """Per partition, the offset up to which every record for any point here is reflected
        (what a shard receiving points from this one inherits). `origins` are the shards the
        points here came from under the previous topology (this one included)."""
        positions = set(self.applied) | {p for marks in self.inherited.values() for p in marks}
        marks = {}
        for position in positions:
            own = self.high(position)
            if not self.inherited:
                marks[position] = own
                continue
            marks[position] = min(
                max(own, self.inherited.get(origin, {}).get(position, -1)) for origin in origins
            )
        return marks

    def inherit(self, origins_before: Sequence[int], marks: dict[int, dict[TopicPartition, int]]) -> None:
        """Take the marks of the shards that gave points at a cutover (replacing those of an
        earlier one, folded into this shard's own marks first: safe, as they are minima)."""
        if self.inherited:
            for position, mark in self.effective_marks(origins_before).items():
                if mark > self.high(position):
                    self.applied[position] = mark
        self.inherited = {origin: dict(m) for origin, m in marks.items() if m}

    def advance(self, position: TopicPartition, high: int, applied: int, rejected: int, skipped: int) -> None:
        """Record one partition's part of a batch: the new mark and what happened to it."""
        self.applied[position] = high
        counters = self.counters.setdefault(position, IngestCounters())
        counters.applied += applied
        counters.rejected += rejected
        counters.skipped += skipped

    def digest_rows(self) -> list[list[Any]]:
        """The marks, in a stable order, for the shard's digest."""
        rows = sorted([t, p, o] for (t, p), o in self.applied.items())
        inherited = sorted([s, t, p, o] for s, m in self.inherited.items() for (t, p), o in m.items())
        return rows + [["inherited", *row] for row in inherited]

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
            "inherited": [
                [s, t, p, o] for s, m in sorted(self.inherited.items()) for (t, p), o in sorted(m.items())
            ],
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> IngestFence:
        """The fence `to_manifest` wrote; KeyError, TypeError or ValueError if malformed."""
        applied = {(str(t), int(p)): int(o) for t, p, o in manifest["applied"]}
        counters = {
            (str(t), int(p)): IngestCounters(int(a), int(s), int(r)) for t, p, a, s, r in manifest["counters"]
        }
        fence = cls(applied, counters)
        for origin, topic, partition, offset in manifest.get("inherited", []):  # absent before 0.2
            fence.inherited.setdefault(int(origin), {})[(str(topic), int(partition))] = int(offset)
        return fence
