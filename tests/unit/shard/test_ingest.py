"""Exactly-once ingestion: records fenced by offset per topic-partition, in one apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import (
    CreateCollection,
    DeletePoints,
    IngestBatch,
    IngestRecord,
    PartitionBatch,
    PointCommand,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.state import Shard

DIM = 3


def upsert(point_id: int, value: float, collection: str = "c") -> Upsert:
    return Upsert.build(collection, [point_id], np.full((1, DIM), value), [{"value": value}])


def batch(topic: str, partition: int, records: list[tuple[int, PointCommand]]) -> IngestBatch:
    return IngestBatch((PartitionBatch(topic, partition, tuple(IngestRecord(o, c) for o, c in records)),))


def ingest_status(shard: Shard) -> list[dict[str, Any]]:
    status: list[dict[str, Any]] = shard.status()["ingest"]
    return status


def value_of(shard: Shard, point_id: int) -> Any:
    [record] = shard.get("c", [point_id])
    assert record.payload is not None
    return record.payload["value"]


@pytest.fixture
def ready(shard: Shard) -> Shard:
    shard.apply(CreateCollection(CollectionSchema("c", DIM)))
    return shard


def test_records_apply_and_the_offset_advances_in_the_same_apply(ready: Shard) -> None:
    result = ready.apply(batch("events", 0, [(offset, upsert(offset, 1.0)) for offset in range(5)]))
    assert result == {
        "status": "ok",
        "partitions": [
            {"topic": "events", "partition": 0, "applied": 5, "skipped": 0, "rejected": [], "high_offset": 4}
        ],
    }
    assert ready.count("c") == 5
    assert ready.fence.applied == {("events", 0): 4}
    assert ingest_status(ready) == [
        {
            "topic": "events",
            "partition": 0,
            "applied_offset": 4,
            "records_applied": 5,
            "records_skipped": 0,
            "records_rejected": 0,
        }
    ]


def test_replaying_a_batch_changes_nothing(ready: Shard) -> None:
    first = batch("events", 0, [(offset, upsert(offset, 1.0)) for offset in range(5)])
    ready.apply(first)
    digest = ready.digest()
    replayed = ready.apply(decode_command(encode_command(first)))
    assert replayed["partitions"][0]["applied"] == 0
    assert replayed["partitions"][0]["skipped"] == 5
    assert replayed["partitions"][0]["high_offset"] == 4
    assert ready.digest() == digest
    assert ready.collection("c").next_key == 5
    [counters] = ingest_status(ready)
    assert (counters["records_applied"], counters["records_skipped"], counters["applied_offset"]) == (5, 5, 4)


def test_an_overlapping_batch_applies_only_the_new_records(ready: Shard) -> None:
    ready.apply(batch("events", 0, [(offset, upsert(offset, 1.0)) for offset in range(5)]))
    result = ready.apply(batch("events", 0, [(offset, upsert(offset, 2.0)) for offset in range(3, 8)]))
    part = result["partitions"][0]
    assert (part["applied"], part["skipped"], part["high_offset"]) == (3, 2, 7)
    assert [value_of(ready, i) for i in range(8)] == [1.0] * 5 + [2.0] * 3


def test_a_zombie_batch_cannot_overwrite_newer_data(ready: Shard) -> None:
    ready.apply(batch("events", 0, [(10, upsert(1, 10.0))]))
    ready.apply(batch("events", 0, [(4, upsert(1, 4.0)), (9, DeletePoints("c", Selector.of_ids([1])))]))
    assert value_of(ready, 1) == 10.0
    assert ready.fence.applied[("events", 0)] == 10


def test_offsets_are_fenced_per_topic_partition(ready: Shard) -> None:
    ready.apply(batch("events", 0, [(100, upsert(1, 1.0))]))
    command = IngestBatch(
        (
            PartitionBatch("events", 1, (IngestRecord(5, upsert(2, 2.0)),)),
            PartitionBatch("other", 0, (IngestRecord(5, upsert(3, 3.0)),)),
            PartitionBatch("events", 0, (IngestRecord(5, upsert(4, 4.0)),)),
        )
    )
    result = ready.apply(command)
    assert [(p["topic"], p["partition"], p["applied"], p["skipped"]) for p in result["partitions"]] == [
        ("events", 1, 1, 0),
        ("other", 0, 1, 0),
        ("events", 0, 0, 1),
    ]
    assert ready.fence.applied == {("events", 0): 100, ("events", 1): 5, ("other", 0): 5}
    assert sorted(r.id for r in ready.scroll("c")[0]) == [1, 2, 3]


def test_duplicate_offsets_inside_one_batch_apply_once(ready: Shard) -> None:
    result = ready.apply(batch("events", 0, [(1, upsert(1, 1.0)), (1, upsert(1, 9.0)), (0, upsert(2, 2.0))]))
    part = result["partitions"][0]
    assert (part["applied"], part["skipped"]) == (1, 2)
    assert value_of(ready, 1) == 1.0
    assert ready.count("c") == 1


def test_a_failing_record_is_rejected_and_the_offset_still_advances(ready: Shard) -> None:
    bad_vector = Upsert("c", (9,), DIM, np.array([np.nan] * DIM, "<f4").tobytes(), ({},))
    result = ready.apply(
        batch(
            "events",
            0,
            [
                (0, upsert(1, 1.0)),
                (1, upsert(2, 2.0, collection="missing")),
                (2, SetPayload("c", Selector.of_ids([1]), {"value": 5.0})),
                (3, bad_vector),
            ],
        )
    )
    part = result["partitions"][0]
    assert part["applied"] == 2
    assert [r["offset"] for r in part["rejected"]] == [1, 3]
    assert "'missing' does not exist" in part["rejected"][0]["error"]
    assert "finite" in part["rejected"][1]["error"]
    assert part["high_offset"] == 3
    assert value_of(ready, 1) == 5.0
    assert ready.get("c", [9]) == []
    [counters] = ingest_status(ready)
    assert (counters["records_applied"], counters["records_rejected"], counters["applied_offset"]) == (
        2,
        2,
        3,
    )
    digest = ready.digest()
    replay = ready.apply(batch("events", 0, [(1, upsert(2, 2.0, collection="missing"))]))
    assert replay["partitions"][0]["skipped"] == 1
    assert replay["partitions"][0]["rejected"] == []
    assert ready.digest() == digest


def test_the_digest_covers_applied_offsets(make_shard: Callable[..., Shard]) -> None:
    direct, ingested = make_shard("direct"), make_shard("ingested")
    for target in (direct, ingested):
        target.apply(CreateCollection(CollectionSchema("c", DIM)))
    direct.apply(upsert(1, 1.0))
    ingested.apply(batch("events", 0, [(0, upsert(1, 1.0))]))
    assert direct.count("c") == ingested.count("c") == 1
    assert direct.digest() != ingested.digest()


def test_an_empty_partition_batch_registers_the_partition(ready: Shard) -> None:
    result = ready.apply(batch("events", 2, []))
    assert result["partitions"][0]["high_offset"] == -1
    assert ready.count("c") == 0
    assert ingest_status(ready)[0]["applied_offset"] == -1
