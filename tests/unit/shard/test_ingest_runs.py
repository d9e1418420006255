"""Ingest batches apply runs of upserts together, with the same result as one by one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vecstore.cluster.commands import (
    CreateCollection,
    DeletePoints,
    IngestBatch,
    IngestRecord,
    PartitionBatch,
    PointCommand,
    Selector,
    Upsert,
)
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard

DIM = 4


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[tuple[Shard, Shard]]:
    pair = (
        Shard(ShardSettings(data_dir=tmp_path / "a")),
        Shard(ShardSettings(data_dir=tmp_path / "b")),
    )
    for shard in pair:
        shard.apply(CreateCollection(CollectionSchema("c", DIM)))
    yield pair
    for shard in pair:
        shard.close()


def upsert(point_id: int, dim: int = DIM, payload: dict[str, object] | None = None) -> Upsert:
    vector = np.random.default_rng(point_id).normal(size=(1, dim)).astype(np.float32)
    return Upsert("c", (point_id,), dim, vector.tobytes(), (payload or {"v": point_id},))


def test_runs_match_one_by_one_and_reject_only_bad_records(shards: tuple[Shard, Shard]) -> None:
    batched, single = shards
    commands: list[PointCommand] = [
        upsert(1),
        upsert(2),
        upsert(3, dim=DIM + 1),  # invalid: rejected alone
        upsert(2, payload={"v": "again"}),  # repeated id: a new run, last write wins
        DeletePoints("c", Selector.of_ids([1])),
        upsert(4),
        upsert(5),
    ]
    records = tuple(IngestRecord(offset, command) for offset, command in enumerate(commands))
    result = batched.apply(IngestBatch((PartitionBatch("t", 0, records),)))
    for record in records:
        single.apply(IngestBatch((PartitionBatch("t", 0, (record,)),)))

    (partition,) = result["partitions"]
    assert [r["offset"] for r in partition["rejected"]] == [2]
    assert partition["applied"] == 6
    assert batched.digest() == single.digest()
    assert {r.id: r.payload for r in batched.get("c", [1, 2, 3, 4, 5])} == {
        2: {"v": "again"},
        4: {"v": 4},
        5: {"v": 5},
    }
    status = batched.status()["ingest"][0]
    assert (status["records_applied"], status["records_rejected"], status["applied_offset"]) == (6, 1, 6)
