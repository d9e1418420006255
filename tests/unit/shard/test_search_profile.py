"""The shard's search stages (`profile=`): which ran depends on the plan and the data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.profile import Profile
from vecstore.cluster.schema import CollectionSchema, StorageDtype
from vecstore.shard.state import Shard

ShardFactory = Callable[..., Shard]
DIM = 8


def fill(shard: Shard, count: int, dtype: StorageDtype = StorageDtype.F32) -> None:
    shard.apply(CreateCollection(CollectionSchema("c", DIM, dtype=dtype)))
    vectors = np.random.default_rng(3).normal(size=(count, DIM)).astype(np.float32)
    ids = list(range(count))
    shard.apply(Upsert.build("c", ids, vectors, [{"n": i} for i in ids]))


def stage_names(shard: Shard, **options: Any) -> list[str]:
    profile = Profile("shard 0")
    query = np.ones((2, DIM), dtype=np.float32)
    hits = shard.search("c", query, 5, profile=profile, **options)
    assert len(hits) == 2
    assert all(seconds >= 0 and where == "shard 0" for _, where, _, seconds in profile.stages)
    starts = [start for _, _, start, _ in profile.stages]
    assert starts == sorted(starts)
    return [name for name, _, _, _ in profile.stages]


def test_an_unindexed_tail_is_an_exact_tail_stage(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000, index_chunk=64)
    fill(shard, 200)
    assert shard.collection("c").exact_tail() > 0
    names = stage_names(shard)
    assert names[0] == "plan"
    assert names[-1] == "fetch"
    assert "hnsw" in names
    assert "exact_tail" in names
    assert "rescore" not in names


def test_an_indexed_collection_has_no_exact_tail(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000)
    fill(shard, 200)
    shard.maintain(force=True)  # indexed and sealed: nothing left to score exactly
    assert shard.collection("c").exact_tail() == 0
    names = stage_names(shard)
    assert "hnsw" in names and "filter" in names
    assert "exact_tail" not in names


def test_an_exact_plan_has_an_exact_stage(shard: Shard) -> None:
    fill(shard, 100)
    assert stage_names(shard, exact=True) == ["plan", "exact", "fetch"]
    assert stage_names(shard, condition=parse_filter({"must": [{"key": "n", "match": {"value": 3}}]})) == [
        "plan",
        "exact",
        "fetch",
    ]


def test_quantized_candidates_are_rescored(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000)
    fill(shard, 300, StorageDtype.I8)
    shard.maintain(force=True)
    assert "rescore" in stage_names(shard)
