"""Which Kafka offsets are safe to commit: those of batches every shard acknowledged.

Pure bookkeeping. Batches are opened in poll order and may finish in any order; an
offset becomes committable only when its batch and every earlier one have finished,
so a committed offset always means "every record before it is applied".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class PendingBatch:
    """A dispatched batch waiting for its parts (shards, the dead-letter topic) to finish."""

    batch_id: int
    """Its place in poll order."""
    next_offsets: Mapping[TopicPartition, int]
    """Per topic-partition, the offset after its last record."""
    records: int
    """How many records it holds."""
    opened_at: float
    """When it was dispatched (the caller's clock), for batch latency."""
    waiting: set[Hashable] = field(default_factory=set)
    """Parts not yet finished."""


@dataclass(frozen=True)
class Released:
    """Batches that just became committable, and the offsets they move forward."""

    offsets: dict[TopicPartition, int]
    batches: list[PendingBatch]


class OffsetLedger:
    """Tracks dispatched batches in order; releases the finished prefix."""

    def __init__(self) -> None:
        self._pending: deque[PendingBatch] = deque()
        self._by_id: dict[int, PendingBatch] = {}
        self._next_id = 0
        self.in_flight_records = 0
        """Records dispatched and not yet released (or abandoned)."""
        self.safe: dict[TopicPartition, int] = {}
        """Per topic-partition, the highest offset below which every record is applied."""

    def open(
        self,
        next_offsets: Mapping[TopicPartition, int],
        parts: Iterable[Hashable],
        records: int,
        opened_at: float,
    ) -> int:
        """Register a dispatched batch waiting on `parts`; returns its id."""
        batch = PendingBatch(self._next_id, dict(next_offsets), records, opened_at, set(parts))
        self._next_id += 1
        self._pending.append(batch)
        self._by_id[batch.batch_id] = batch
        self.in_flight_records += records
        return batch.batch_id

    def finish(self, batch_id: int, part: Hashable) -> None:
        """Mark one part of a batch finished (unknown ids are ignored: abandoned batches)."""
        batch = self._by_id.get(batch_id)
        if batch is not None:
            batch.waiting.discard(part)

    def release(self) -> Released:
        """Pop the prefix of finished batches and advance the safe offsets."""
        offsets: dict[TopicPartition, int] = {}
        done: list[PendingBatch] = []
        while self._pending and not self._pending[0].waiting:
            batch = self._pending.popleft()
            del self._by_id[batch.batch_id]
            self.in_flight_records -= batch.records
            done.append(batch)
            for position, offset in batch.next_offsets.items():
                if offset > self.safe.get(position, -1):
                    self.safe[position] = offset
                    offsets[position] = offset
        return Released(offsets, done)

    def abandon(self) -> int:
        """Forget every pending batch (their offsets are never committed); returns how many."""
        count = len(self._pending)
        self._pending.clear()
        self._by_id.clear()
        self.in_flight_records = 0
        return count

    def forget(self, positions: Iterable[TopicPartition]) -> None:
        """Drop safe offsets of partitions this worker no longer owns."""
        for position in positions:
            self.safe.pop(position, None)

    def __len__(self) -> int:
        return len(self._pending)
