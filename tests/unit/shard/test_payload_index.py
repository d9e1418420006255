"""The payload index answers every filter exactly as per-point evaluation does.

Each check compares `Collection.matching_keys` with `payload_filter.matches` run on every
live point's current payload, over memtables, sealed segments, overrides and deletions.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from vecstore.cluster.commands import (
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.filters import Compare, CompareOp, Filter, In, parse_filter
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.shard.collection import Collection
from vecstore.shard.payload_filter import matches
from vecstore.shard.payload_index import (
    EMPTY,
    NUMBER,
    STRING,
    StringCodes,
    build_column,
    contains_keys,
    extend_column,
)
from vecstore.shard.planner import OVER_FETCH
from vecstore.shard.search import _accept
from vecstore.shard.state import Shard

ShardFactory = Callable[..., Shard]
DIM = 4
BIG = 2**53 + 1

ROWS: list[dict[str, Any]] = [
    {"n": 1, "s": "red", "b": True, "tags": ["red", "green", 7], "meta": {"x": 1.5, "deep": {"y": 2}}},
    {"n": 1.0, "s": "green", "b": False, "tags": [], "meta": {"x": 2}},
    {"n": True, "s": "1", "tags": [True, 1], "items": [{"x": 1, "t": "ab"}, {"x": 2}]},
    {"n": "1", "s": "", "z": None, "tags": [None, "b"], "items": [{"x": [3, 4]}, {"t": ["a", "c"]}]},
    {"n": 2.5, "s": "redder", "b": True, "meta": {}, "items": []},
    {"n": -3, "tags": [[1, 2], [3, None]], "meta": {"x": [1, 2], "label": "abc"}},
    {"n": BIG, "s": "big", "meta": {"x": 2**63}},
    {"n": 2**53, "s": "edge", "tags": [2**64 - 1, "x"]},
    {"n": {"nested": 1}, "s": ["red", "blue"], "b": [True, False]},
    {},
    {"n": None, "s": None, "meta": None},
    {"n": 0, "s": "abc", "b": False, "z": 0, "tags": ["abc", "ab"], "meta": {"deep": {"y": [1, None]}}},
]

CONDITIONS: list[dict[str, Any]] = [
    {"key": "n", "match": {"value": 1}},
    {"key": "n", "match": {"value": 1.0}},
    {"key": "n", "match": {"value": True}},
    {"key": "n", "match": {"value": "1"}},
    {"key": "b", "match": {"value": False}},
    {"key": "s", "match": {"value": "red"}},
    {"key": "s", "match": {"value": "absent-text"}},
    {"key": "tags", "match": {"value": 7}},
    {"key": "tags", "match": {"value": 1}},
    {"key": "tags", "match": {"value": 3}},
    {"key": "n", "match": {"any": [1, "1", False]}},
    {"key": "n", "match": {"any": []}},
    {"key": "tags", "match": {"any": ["b", 2]}},
    {"key": "n", "match": {"except": [1]}},
    {"key": "n", "match": {"except": []}},
    {"key": "tags", "match": {"except": ["red", "green", 7]}},
    {"key": "s", "match": {"text": "red"}},
    {"key": "s", "match": {"text": ""}},
    {"key": "tags", "contains": "b"},
    {"key": "tags", "contains": 7},
    {"key": "b", "contains": True},
    {"key": "n", "range": {"gt": 0}},
    {"key": "n", "range": {"gte": 1, "lt": 2.5}},
    {"key": "n", "range": {"lte": 1}},
    {"key": "n", "range": {"gt": 2**53}},
    {"key": "n", "range": {"lt": BIG}},
    {"key": "n", "op": "==", "value": BIG},
    {"key": "n", "match": {"any": [BIG, 1]}},
    {"key": "n", "op": "!=", "value": 1},
    {"key": "n", "op": "!=", "value": "1"},
    {"key": "s", "op": "!=", "value": "red"},
    {"key": "s", "range": {"gt": 0}},
    {"key": "meta.x", "range": {"gte": 2}},
    {"key": "meta.x", "match": {"value": 1}},
    {"key": "meta.deep.y", "match": {"value": 1}},
    {"key": "meta.label", "match": {"text": "b"}},
    {"key": "items.x", "match": {"value": 3}},
    {"key": "items.t", "match": {"value": "c"}},
    {"key": "z", "match": {"value": 0}},
    {"is_empty": {"key": "z"}},
    {"is_empty": {"key": "tags"}},
    {"is_empty": {"key": "meta"}},
    {"is_empty": {"key": "meta.deep"}},
    {"is_empty": {"key": "items"}},
    {"is_empty": {"key": "absent"}},
    {"has_id": [0, 3, 5, 999]},
    {"has_id": []},
    {
        "must": [{"key": "n", "range": {"gte": 0}}],
        "should": [{"key": "s", "match": {"text": "e"}}, {"has_id": [11]}],
        "must_not": [{"key": "b", "match": {"value": True}}],
    },
    {"must_not": [{"key": "n", "match": {"value": 1}}]},
    {"must_not": [{"must_not": [{"is_empty": {"key": "s"}}]}]},
    {"should": [{"key": "n", "range": {"lt": BIG}}, {"key": "tags", "contains": "x"}]},
    {},
]


def make_collection(shard: Shard, rows: list[dict[str, Any]] = ROWS) -> Collection:
    shard.apply(CreateCollection(CollectionSchema("c", DIM, Metric.L2)))
    vectors = np.random.default_rng(0).normal(size=(len(rows), DIM)).astype(np.float32)
    shard.apply(Upsert.build("c", range(len(rows)), vectors, rows))
    return shard.collection("c")


def brute_force(collection: Collection, condition: Filter) -> list[int]:
    with collection.reading():
        return sorted(
            key
            for point_id, key in collection.id_map.items()
            if matches(condition, point_id, collection.payload_of(key))
        )


def indexed(collection: Collection, condition: Filter) -> list[int]:
    with collection.reading():
        keys = collection.matching_keys(condition)
    assert keys.dtype == np.uint64
    assert list(keys) == sorted(keys), "matching keys come in key order"
    return [int(k) for k in keys]


def assert_same(collection: Collection) -> None:
    for raw in CONDITIONS:
        condition = parse_filter({"must": [raw]})
        assert indexed(collection, condition) == brute_force(collection, condition), raw


LAYOUTS = ["memtable", "sealed", "half_sealed", "sealed_twice"]


def laid_out(make_shard: ShardFactory, layout: str) -> tuple[Shard, Collection]:
    shard = make_shard(seal_threshold=1_000)
    if layout == "half_sealed":
        collection = make_collection(shard, ROWS[:6])
        shard.maintain(seal=True, compact=False, force=True)
        vectors = np.ones((len(ROWS) - 6, DIM), np.float32)
        shard.apply(Upsert.build("c", range(6, len(ROWS)), vectors, ROWS[6:]))
        return shard, collection
    collection = make_collection(shard)
    if layout in ("sealed", "sealed_twice"):
        shard.maintain(seal=True, compact=False, force=True)
    if layout == "sealed_twice":
        shard.apply(Upsert.build("c", [100], np.ones((1, DIM), np.float32), [{"n": 1}]))
        shard.maintain(seal=True, compact=False, force=True)
    return shard, collection


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_condition_matches_per_point_evaluation(make_shard: ShardFactory, layout: str) -> None:
    _, collection = laid_out(make_shard, layout)
    assert_same(collection)
    assert_same(collection)  # again from the cached columns


@pytest.mark.parametrize("layout", LAYOUTS)
def test_overrides_deletes_and_edits_are_respected(make_shard: ShardFactory, layout: str) -> None:
    shard, collection = laid_out(make_shard, layout)
    assert_same(collection)  # columns built before the writes below
    shard.apply(SetPayload("c", Selector.of_ids([0, 4]), {"n": 7, "s": "new"}))
    shard.apply(OverwritePayload("c", Selector.of_ids([1]), {"tags": ["red"]}))
    shard.apply(DeletePayloadKeys("c", Selector.of_ids([2, 5, 6]), ("n", "tags")))
    shard.apply(DeletePoints("c", Selector.of_ids([3, 11])))
    shard.apply(Upsert.build("c", [7, 50], np.ones((2, DIM), np.float32), [{"n": 1.0, "s": "red"}, {"n": 2}]))
    assert_same(collection)
    shard.maintain(force=True)  # compaction folds overrides into a new segment
    assert_same(collection)


def test_a_sealed_row_is_evaluated_on_its_override(make_shard: ShardFactory) -> None:
    shard, collection = laid_out(make_shard, "sealed")
    red = parse_filter({"must": [{"key": "s", "match": {"value": "red"}}]})
    assert indexed(collection, red) == [0, 8]
    shard.apply(SetPayload("c", Selector.of_ids([0]), {"s": "blue"}))
    shard.apply(SetPayload("c", Selector.of_ids([1]), {"s": "red"}))
    assert collection.overrides
    assert indexed(collection, red) == [1, 8]


def test_many_memtable_edits_rebuild_the_column(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000)
    rows = [{"n": i % 10} for i in range(400)]
    collection = make_collection(shard, rows)
    low = parse_filter({"must": [{"key": "n", "range": {"lt": 3}}]})
    assert indexed(collection, low) == brute_force(collection, low)
    cache = collection.payload_index.cache(collection.active)
    built, _ = cache.column(collection.active, "n")
    shard.apply(SetPayload("c", Selector.of_ids(list(range(0, 40, 2))), {"n": 1}))
    _, stale = cache.column(collection.active, "n")
    assert list(stale) == list(range(0, 40, 2)), "a few edits are redone per point"
    assert indexed(collection, low) == brute_force(collection, low)
    shard.apply(SetPayload("c", Selector.of_ids(list(range(100, 400))), {"n": 9}))
    column, stale = cache.column(collection.active, "n")
    assert column is not built and not len(stale), "many edits rebuild the column"
    assert indexed(collection, low) == brute_force(collection, low)


def test_a_growing_memtable_extends_its_columns(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000)
    collection = make_collection(shard, ROWS[:3])
    for start in range(3, len(ROWS)):
        assert_same(collection)
        shard.apply(Upsert.build("c", [start], np.ones((1, DIM), np.float32), [ROWS[start]]))
    assert_same(collection)
    column, _ = collection.payload_index.cache(collection.active).column(collection.active, "tags")
    assert column.rows == len(ROWS)


def test_compaction_drops_old_columns_and_warms_new_ones(make_shard: ShardFactory) -> None:
    shard, collection = laid_out(make_shard, "sealed_twice")
    condition = parse_filter({"must": [{"key": "n", "match": {"value": 1}}]})
    indexed(collection, condition)
    old = list(collection.sealed)
    shard.maintain(force=True)
    assert collection.sealed != old
    (merged,) = collection.sealed
    assert collection.payload_index.keys_in_use([merged]) == {"n"}
    assert collection.payload_index.keys_in_use(old) == {"n"}  # still held by this test only
    assert indexed(collection, condition) == brute_force(collection, condition)


def test_dense_and_sparse_columns() -> None:
    dense = build_column([{"a": 1}, {}, {"a": "x"}, {"a": None}], "a", 0, StringCodes())
    assert dense.value_rows is None
    assert list(dense.kinds) == [NUMBER, EMPTY, STRING, EMPTY]
    assert list(dense.has_value()) == [True, False, True, False]
    sparse = build_column([{"a": [1, 2]}, {}, {"a": ["x"]}], "a", 0, StringCodes())
    assert sparse.value_rows is not None
    assert sorted(sparse.value_rows.tolist()) == [0, 0, 2]
    assert list(sparse.has_value()) == [True, False, True]
    grown = extend_column(dense, [{"a": [3, "x"]}], "a")
    assert grown.rows == 5
    assert grown.value_rows is not None
    assert sorted(grown.value_rows.tolist()) == [0, 2, 4, 4]
    assert list(grown.any_per_row(grown.equal_to("x"))) == [False, False, True, False, True]


def test_values_numpy_cannot_compare_exactly_are_left_to_python() -> None:
    column = build_column([{"a": BIG}, {"a": 1}, {"a": [2**64 - 1]}, {"a": 2**53}], "a", 0, StringCodes())
    assert list(column.awkward) == [0, 2]


def test_huge_integer_filter_values_fall_back_per_point(make_shard: ShardFactory) -> None:
    shard = make_shard()
    collection = make_collection(shard, [{"n": 2**53}, {"n": float(2**53)}, {"n": BIG}, {"n": 2**63}])
    shard.maintain(seal=True, compact=False, force=True)
    for condition in (
        Compare("n", CompareOp.LT, BIG),
        Compare("n", CompareOp.EQ, BIG),
        Compare("n", CompareOp.GE, 2**63),
        In("n", (BIG, 2**63)),
        In("n", (BIG,), negate=True),
    ):
        assert indexed(collection, condition) == brute_force(collection, condition), condition


def test_contains_keys_and_accept_use_the_allowed_keys() -> None:
    allowed = np.array([2, 5, 9], dtype=np.uint64)
    keys = np.array([9, 1, 5, 9, 2**64 - 1, 2], dtype=np.uint64)
    assert list(contains_keys(allowed, keys)) == [True, False, True, True, False, True]
    assert not contains_keys(np.zeros(0, np.uint64), keys).any()
    distances = np.arange(6, dtype=np.float32)
    kept, dists = _accept(None, keys, distances, allowed, 2)  # type: ignore[arg-type]
    assert (list(kept), list(dists)) == ([9, 5], [0.0, 2.0])


def test_count_scroll_and_search_agree_with_brute_force(make_shard: ShardFactory) -> None:
    shard, collection = laid_out(make_shard, "half_sealed")
    for raw in CONDITIONS:
        condition = parse_filter({"must": [raw]})
        expected = brute_force(collection, condition)
        assert shard.count("c", condition) == len(expected), raw
        records, _ = shard.scroll("c", limit=100, condition=condition)
        assert sorted(collection.id_map[r.id] for r in records) == expected, raw
        hits = shard.search("c", np.zeros((1, DIM), np.float32), 100, condition, exact=True)[0]
        assert sorted(collection.id_map[h.id] for h in hits) == expected, raw


def test_the_planner_counts_with_the_index(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000, exact_limit=50)
    rows = [{"bucket": i % 100} for i in range(1_000)]
    make_collection(shard, rows)
    shard.maintain(seal=True, compact=False, force=True)
    few = parse_filter({"must": [{"key": "bucket", "range": {"lt": 3}}]})
    many = parse_filter({"must": [{"key": "bucket", "range": {"lt": 50}}]})
    assert (shard.explain("c", 5, few).kind, shard.explain("c", 5, few).estimated_matches) == ("exact", 30)
    plan = shard.explain("c", 5, many)
    assert (plan.kind, plan.estimated_matches, plan.fetch) == ("hnsw", 500, math.ceil(5 / 0.5 * OVER_FETCH))
    hits = shard.search("c", np.ones((2, DIM), np.float32), 5, many)
    assert all(len(row) == 5 and all(h.payload["bucket"] < 50 for h in row) for row in hits)  # type: ignore[index]


def test_concurrent_first_use_builds_one_consistent_column(make_shard: ShardFactory) -> None:
    shard = make_shard(seal_threshold=10_000)
    rows = [{"n": i % 7, "s": f"t{i % 5}"} for i in range(3_000)]
    collection = make_collection(shard, rows)
    shard.maintain(seal=True, compact=False, force=True)
    condition = parse_filter(
        {"must": [{"key": "n", "range": {"gte": 3}}, {"key": "s", "match": {"text": "1"}}]}
    )
    expected = brute_force(collection, condition)
    results: list[list[int]] = []
    threads = [
        threading.Thread(target=lambda: results.append(indexed(collection, condition))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 6
