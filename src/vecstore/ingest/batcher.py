"""A polled batch of Kafka records in, one offset-fenced IngestBatch per shard out.

Pure: it decodes each record (`records.decode_record`), routes it with the same ring as
the router, and keeps each topic-partition's records in offset order. It never talks to
Kafka or to a node. docs/ingest.md explains why one command per shard is enough.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from vecstore.cluster.commands import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    IngestBatch,
    IngestRecord,
    PartitionBatch,
    PointCommand,
    UpdateVectors,
    Upsert,
)
from vecstore.cluster.errors import CollectionNotFound
from vecstore.cluster.hash_ring import ShardRing
from vecstore.cluster.schema import CollectionSchema
from vecstore.ingest.formats import ValueFormat
from vecstore.ingest.records import Rejection, decode_record

TopicPartition = tuple[str, int]


class PolledRecord(Protocol):
    """What the batcher reads of a consumed record (aiokafka's ConsumerRecord has it)."""

    @property
    def topic(self) -> str:
        """The topic it was read from."""

    @property
    def partition(self) -> int:
        """Its partition."""

    @property
    def offset(self) -> int:
        """Its offset in the partition."""

    @property
    def key(self) -> bytes | None:
        """The raw key (the point id)."""

    @property
    def value(self) -> bytes | None:
        """The raw value (msgpack or JSON)."""


@dataclass(frozen=True)
class RejectedRecord:
    """A record bound for the dead-letter topic, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    rejection: Rejection


@dataclass(frozen=True)
class BatchPlan:
    """What to do with one polled batch."""

    commands: dict[int, IngestBatch]
    """One command per shard that owns at least one of the batch's valid records."""
    rejected: tuple[RejectedRecord, ...]
    """Invalid records, in poll order: they go to the dead-letter topic."""
    next_offsets: dict[TopicPartition, int]
    """Per topic-partition, the offset after the batch's last record (what to commit)."""
    records: int
    """How many records the batch holds, valid or not."""
    unknown_collections: frozenset[str] = field(default_factory=frozenset)
    """Collections named by records but absent from the schemas (refresh, then re-plan)."""


def plan_batch(
    polled: Iterable[PolledRecord],
    ring: ShardRing,
    schemas: Mapping[str, CollectionSchema],
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    value_format: ValueFormat | None = None,
) -> BatchPlan:
    """Decode, validate and route `polled`; each partition's records must ascend in offset."""
    by_shard: dict[int, dict[TopicPartition, list[IngestRecord]]] = defaultdict(lambda: defaultdict(list))
    next_offsets: dict[TopicPartition, int] = {}
    rejected: list[RejectedRecord] = []
    count = 0
    for record in polled:
        count += 1
        position = (record.topic, record.partition)
        previous = next_offsets.get(position)
        if previous is not None and record.offset < previous:
            raise ValueError(f"offsets of {position} must ascend: {record.offset} came after {previous - 1}")
        next_offsets[position] = record.offset + 1
        outcome = decode_record(
            record.key, record.value, schemas, max_payload_bytes=max_payload_bytes, value_format=value_format
        )
        if isinstance(outcome, Rejection):
            rejected.append(
                RejectedRecord(
                    record.topic, record.partition, record.offset, record.key, record.value, outcome
                )
            )
            continue
        shard = ring.shard_for(target_of(outcome))
        by_shard[shard][position].append(IngestRecord(record.offset, outcome))
    commands = {
        shard: IngestBatch(
            tuple(
                PartitionBatch(topic, partition, tuple(records))
                for (topic, partition), records in sorted(partitions.items())
            )
        )
        for shard, partitions in sorted(by_shard.items())
    }
    unknown = frozenset(
        r.rejection.collection
        for r in rejected
        if r.rejection.code == CollectionNotFound.code and r.rejection.collection is not None
    )
    return BatchPlan(commands, tuple(rejected), next_offsets, count, unknown)


def target_of(command: PointCommand) -> int | str:
    """The one point id an ingested command touches (records always name exactly one)."""
    ids = command.ids if isinstance(command, (Upsert, UpdateVectors)) else command.selector.ids
    assert ids is not None and len(ids) == 1, "an ingest record touches exactly one point"
    return ids[0]
