"""Grouping a polled batch into one offset-fenced command per shard."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import Upsert
from vecstore.cluster.hash_ring import ShardRing
from vecstore.cluster.schema import CollectionSchema
from vecstore.ingest.batcher import plan_batch
from vecstore.ingest.records import encode_record

SCHEMAS = {"docs": CollectionSchema("docs", 2)}
RING = ShardRing(3)


@dataclass(frozen=True)
class Polled:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def upsert(topic: str, partition: int, offset: int, point_id: int) -> Polled:
    return Polled(topic, partition, offset, *encode_record("docs", "upsert", point_id, vector=[1.0, 2.0]))


def test_each_shard_gets_one_command_with_its_records_in_offset_order() -> None:
    polled = [upsert("t", p, offset, point_id=offset * 4 + p) for offset in range(50) for p in range(4)]
    plan = plan_batch(polled, RING, SCHEMAS)
    assert plan.records == 200
    assert not plan.rejected
    assert plan.next_offsets == {("t", p): 50 for p in range(4)}
    seen = []
    for shard, command in plan.commands.items():
        assert decode_command(encode_command(command)) == command
        assert [(p.topic, p.partition) for p in command.partitions] == sorted(
            {("t", p.partition) for p in command.partitions}
        )
        for part in command.partitions:
            offsets = [r.offset for r in part.records]
            assert offsets == sorted(offsets)
            for record in part.records:
                assert isinstance(record.command, Upsert)
                [point_id] = record.command.ids
                assert isinstance(point_id, int)
                assert RING.shard_for(point_id) == shard
                assert point_id == record.offset * 4 + part.partition
                seen.append(point_id)
    assert sorted(seen) == list(range(200))


def test_invalid_records_are_set_aside_and_still_move_the_offsets() -> None:
    polled = [
        upsert("t", 0, 10, 1),
        Polled("t", 0, 11, b"2", b"garbage"),
        Polled("t", 0, 12, b"3", b'{"collection": "nope", "op": "delete", "id": 3}'),
    ]
    plan = plan_batch(polled, RING, SCHEMAS)
    assert plan.next_offsets == {("t", 0): 13}
    assert [(r.offset, r.rejection.code) for r in plan.rejected] == [
        (11, "malformed_record"),
        (12, "collection_not_found"),
    ]
    assert plan.rejected[0].value == b"garbage"
    assert plan.unknown_collections == frozenset({"nope"})
    assert sum(len(p.records) for c in plan.commands.values() for p in c.partitions) == 1


def test_a_batch_of_only_invalid_records_has_no_commands() -> None:
    plan = plan_batch([Polled("t", 1, 0, b"1", b"")], RING, SCHEMAS)
    assert plan.commands == {}
    assert plan.next_offsets == {("t", 1): 1}


def test_offsets_must_ascend_within_a_partition() -> None:
    with pytest.raises(ValueError, match="ascend"):
        plan_batch([upsert("t", 0, 5, 1), upsert("t", 0, 4, 2)], RING, SCHEMAS)
