"""Pure translation of Qdrant requests and answers: filters, collections, points, searches."""

from __future__ import annotations

from typing import Any

import pytest

from vecstore.cluster.commands import named_columns
from vecstore.cluster.errors import (
    InvalidFilter,
    InvalidRequest,
    InvalidSchema,
    InvalidVector,
    NotImplementedParameter,
)
from vecstore.cluster.filters import (
    And,
    Compare,
    CompareOp,
    Contains,
    HasId,
    HasVector,
    In,
    IsEmpty,
    Not,
    Or,
    Text,
    TextMode,
)
from vecstore.cluster.schema import CollectionSchema, HnswConfig, Metric, StorageDtype
from vecstore.router.hybrid import Fuse, Mmr, SparseQuery
from vecstore.router.qdrant.collection import ClusterShape, collection_info, schema_from_qdrant
from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.router.qdrant.http import qdrant_error
from vecstore.router.qdrant.prefetch import needs_plan, stage_of
from vecstore.router.qdrant.query import query_request, scored_points, search_request
from vecstore.router.qdrant.translate import (
    PayloadSelection,
    dense_vector,
    payload_selection,
    points_selector,
    upsert_batch,
    vector_wanted,
)

SHAPE = ClusterShape(shards=2, replicas=3)
UUID = "5f1d0d6e-8c3a-4b8e-9a59-6b8f0c8f9d11"

# ---- filters ---------------------------------------------------------------------------


def test_supported_conditions_translate() -> None:
    raw = {
        "must": [
            {"key": "color", "match": {"value": "red"}},
            {"key": "n", "range": {"gte": 1, "lt": 5, "gt": None}},
            {"key": "tags[].name", "match": {"any": ["a", "b"]}},
        ],
        "should": {"key": "title", "match": {"text": "shoe"}},
        "must_not": [{"has_id": [1, UUID]}, {"is_empty": {"key": "meta"}}],
    }
    assert filter_from_qdrant(raw) == And(
        (
            Compare("color", CompareOp.EQ, "red"),
            And((Compare("n", CompareOp.GE, 1), Compare("n", CompareOp.LT, 5))),
            In("tags[].name", ("a", "b")),
            Or((Text("title", "shoe", TextMode.ALL),)),
            Not(HasId(frozenset({1, UUID}))),
            Not(IsEmpty("meta")),
        )
    )


def test_field_level_is_empty_except_substring_and_nesting() -> None:
    assert filter_from_qdrant({"must": [{"key": "a", "is_empty": True}]}) == IsEmpty("a")
    assert filter_from_qdrant({"must": [{"key": "a", "is_empty": False}]}) == Not(IsEmpty("a"))
    assert filter_from_qdrant({"must": [{"key": "a", "match": {"except": [1, 2]}}]}) == In(
        "a", (1, 2), negate=True
    )
    assert filter_from_qdrant({"must": [{"key": "a", "match": {"substring": "x"}}]}) == Contains("a", "x")
    nested = {"should": [{"must": [{"key": "a", "match": {"value": 1}}]}, {"has_id": [3]}]}
    assert filter_from_qdrant(nested) == Or((Compare("a", CompareOp.EQ, 1), HasId(frozenset({3}))))
    assert filter_from_qdrant(None) is None
    assert filter_from_qdrant({}) == And(())
    assert filter_from_qdrant({"must": [{}], "must_not": {"should": []}}) == And((And(()), Not(And(()))))


def test_has_vector_translates() -> None:
    assert filter_from_qdrant({"must": [{"has_vector": "v"}]}) == HasVector("v")
    with pytest.raises(InvalidFilter):
        filter_from_qdrant({"must": [{"has_vector": 3}]})


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"must": [{"slice": {"total": 2, "index": 0}}]}, "slice"),
    ],
)
def test_unsupported_conditions_are_named(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(NotImplementedParameter, match=named):
        filter_from_qdrant(raw)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"must": [{"key": "a"}]},
        {"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]},
        {"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]},
        {"must": [{"key": "a", "range": {"between": 1}}]},
        {"must": [{"key": "a", "range": {}}]},
        {"must": [{"key": "a", "match": {"value": [1]}}]},
        {"must": [{"unknown": 1}]},
        {"must": [{"has_id": ["not-a-uuid"]}]},
        {"must": [{"key": 5, "match": {"value": 1}}]},
        {"filter": {}},
    ],
)
def test_malformed_filters_are_400(raw: object) -> None:
    with pytest.raises(InvalidFilter):
        filter_from_qdrant(raw)


# ---- collections -----------------------------------------------------------------------


def test_create_collection_maps_distance_and_hnsw() -> None:
    body = {
        "vectors": {
            "size": 384,
            "distance": "Euclid",
            "hnsw_config": {"ef_construct": 200},
            "datatype": "float16",
        },
        "hnsw_config": {"m": 32, "ef_construct": 100},
        "shard_number": 2,
        "replication_factor": 3,
        "write_consistency_factor": 2,
        "on_disk_payload": None,
    }
    schema = schema_from_qdrant("docs", body, SHAPE)
    assert schema == CollectionSchema(
        "docs", 384, Metric.L2, StorageDtype.F16, HnswConfig(connectivity=32, expansion_add=200)
    )
    for distance, metric in [("Cosine", Metric.COSINE), ("Dot", Metric.DOT)]:
        plain = schema_from_qdrant("d", {"vectors": {"size": 3, "distance": distance}}, SHAPE)
        assert (plain.metric, plain.hnsw, plain.dtype) == (metric, HnswConfig(), StorageDtype.F32)


@pytest.mark.parametrize(
    ("body", "error", "named"),
    [
        ({"vectors": {"a b": {"size": 3, "distance": "Cosine"}}}, InvalidSchema, "vector name 'a b'"),
        (
            {"vectors": {"a": {"size": 3, "distance": "Cosine", "multivector_config": {}}}},
            InvalidSchema,
            "vectors.a.multivector_config must be",
        ),
        ({"vectors": {"a": {"size": 3}}}, InvalidSchema, "vectors.a.distance"),
        ({"sparse_vectors": {"s": {"modifier": "bm42"}}}, InvalidSchema, "sparse_vectors.s.modifier"),
        (
            {"sparse_vectors": {"s": {"index": {"on_disk": 1}}}},
            InvalidSchema,
            "sparse_vectors.s.index.on_disk",
        ),
        (
            {"quantization_config": {"scalar": {"type": "int8"}}},
            NotImplementedParameter,
            "quantization_config",
        ),
        ({"optimizers_config": {"indexing_threshold": -1}}, InvalidSchema, "optimizers_config.indexing"),
        ({"wal_config": {"wal_capacity_mb": 0}}, InvalidSchema, "wal_config.wal_capacity_mb"),
        ({"on_disk_payload": True}, NotImplementedParameter, "on_disk_payload"),
        ({"sharding_method": "custom"}, NotImplementedParameter, "sharding_method"),
        ({"shard_number": 4}, InvalidSchema, "shard_number=4"),
        ({"replication_factor": 1}, InvalidSchema, "replication_factor=1"),
        ({"write_consistency_factor": 3}, InvalidSchema, "write_consistency_factor=3"),
        ({"hnsw_config": {"full_scan_threshold": -1}}, InvalidSchema, "hnsw_config.full_scan_threshold"),
        ({"hnsw_config": {"on_disk": True}}, NotImplementedParameter, "hnsw_config.on_disk"),
        ({"hnsw_config": {"m": 0}}, InvalidSchema, "hnsw_config.m"),
        ({"hnsw_config": {"ef_construct": True}}, InvalidSchema, "ef_construct"),
        ({"vectors": {"size": 3, "distance": "Manhattan"}}, NotImplementedParameter, "Manhattan"),
        ({"vectors": {"size": 3, "distance": "cosine"}}, InvalidSchema, "distance"),
        ({"vectors": {"size": 0, "distance": "Cosine"}}, InvalidSchema, "vectors.size"),
        (
            {"vectors": {"size": 3, "distance": "Cosine", "datatype": "uint8"}},
            NotImplementedParameter,
            "uint8",
        ),
        ({"vectors": {"size": 3, "distance": "Cosine", "on_disk": True}}, NotImplementedParameter, "on_disk"),
        (
            {"vectors": {"size": 3, "distance": "Cosine", "multivector_config": {"comparator": "mean"}}},
            InvalidSchema,
            "multivector_config",
        ),
        ({"vectors": {"size": 3, "distance": "Cosine", "colour": 1}}, InvalidSchema, "colour"),
        ({"surprise": 1}, InvalidSchema, "surprise"),
        ({"vectors": [3]}, InvalidSchema, "'vectors' must be an object"),
    ],
)
def test_create_collection_refusals(body: dict[str, Any], error: type[Exception], named: str) -> None:
    full = {"vectors": {"size": 3, "distance": "Cosine"}, **body}
    with pytest.raises(error, match=named):
        schema_from_qdrant("docs", full, SHAPE)


def test_collection_info_has_what_qdrant_client_requires() -> None:
    schema = CollectionSchema(
        "docs", 4, Metric.DOT, StorageDtype.I8, HnswConfig(connectivity=8, expansion_add=50)
    )
    info = collection_info(schema, {"points": 10, "segments": 3, "indexing_lag": 4}, SHAPE)
    assert info["status"] == "yellow"
    assert (info["points_count"], info["indexed_vectors_count"], info["segments_count"]) == (10, 6, 3)
    assert info["config"]["params"]["vectors"] == {"size": 4, "distance": "Dot"}
    assert info["config"]["params"]["write_consistency_factor"] == 2
    assert info["config"]["hnsw_config"]["m"] == 8
    assert info["config"]["quantization_config"] == {"scalar": {"type": "int8"}}
    models = pytest.importorskip("qdrant_client.models")
    parsed = models.CollectionInfo.model_validate(info)
    assert parsed.config.hnsw_config.ef_construct == 50


# ---- points ----------------------------------------------------------------------------


def test_upsert_forms_and_duplicates() -> None:
    listed = upsert_batch(
        {"points": [{"id": 1, "vector": [1, 2]}, {"id": UUID, "vector": [3, 4], "payload": {"a": 1}}]}
    )
    assert listed.ids == [1, UUID]
    assert listed.vectors == [[1.0, 2.0], [3.0, 4.0]]
    assert listed.payloads == [None, {"a": 1}]
    batch = upsert_batch(
        {"batch": {"ids": [5, 6, 5], "vectors": [[1], [2], [3]], "payloads": [{"x": 1}, None, {"x": 2}]}}
    )
    assert (batch.ids, batch.vectors, batch.payloads) == ([6, 5], [[2.0], [3.0]], [None, {"x": 2}])
    assert upsert_batch({"batch": {"ids": [], "vectors": []}}).ids == []


@pytest.mark.parametrize(
    ("body", "error", "named"),
    [
        (
            {"points": [{"id": 1, "vector": {"indices": [1], "values": [1.0]}}]},
            InvalidVector,
            "a sparse vector must be named",
        ),
        (
            {"points": [{"id": 1, "vector": [[1.0], "x"]}]},
            InvalidVector,
            "must be a non-empty list of numbers",
        ),
        (
            {"points": [{"id": 1, "vector": {"text": "hi", "model": "m"}}]},
            NotImplementedParameter,
            "inference",
        ),
        ({"batch": {"ids": [1, 2], "vectors": {"text": [[1.0]]}}}, InvalidRequest, "one vector per id"),
        ({"points": [], "shard_key": "a"}, NotImplementedParameter, "shard_key"),
        ({"points": [], "update_filter": {}}, NotImplementedParameter, "update_filter"),
        ({"points": [{"id": 1, "vector": [True]}]}, InvalidVector, "only numbers"),
        ({"points": [{"id": 1, "vector": [10**400]}]}, InvalidVector, "finite"),
        ({"points": [{"id": 1, "vector": [1e39]}]}, InvalidVector, "finite"),
        ({"points": [{"id": 1, "vector": []}]}, InvalidVector, "non-empty"),
        ({"points": [{"id": 1}]}, InvalidRequest, "needs an 'id' and a 'vector'"),
        ({"points": [{"id": 1, "vector": [1], "extra": 1}]}, InvalidRequest, "extra"),
        ({"points": [{"id": 1, "vector": [1], "payload": [1]}]}, InvalidRequest, "must be an object"),
        ({"batch": {"ids": [1, 2], "vectors": [[1]]}}, InvalidRequest, "same length"),
        ({"batch": {"ids": [1], "vectors": [[1]], "payloads": []}}, InvalidRequest, "one payload"),
        ({"points": [], "batch": {}}, InvalidRequest, "exactly one"),
        ({}, InvalidRequest, "exactly one"),
    ],
)
def test_upsert_refusals(body: dict[str, Any], error: type[Exception], named: str) -> None:
    with pytest.raises(error, match=named):
        upsert_batch(body)


def test_points_selector() -> None:
    assert points_selector({"points": [1, 1, 2]}, "delete").ids == (1, 2)
    selector = points_selector({"filter": {"must": [{"has_id": [1]}]}}, "delete")
    assert selector.filter == HasId(frozenset({1}))
    for body in ({}, {"points": [1], "filter": {}}, {"points": "1"}):
        with pytest.raises(InvalidRequest):
            points_selector(body, "delete")


def test_payload_selection() -> None:
    payload = {"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 1, "g": 2}, {"f": 3}]}
    assert payload_selection(None, default=True).apply(payload) == payload
    assert payload_selection(None, default=False).apply(payload) is None
    assert payload_selection(False, default=True).apply(payload) is None
    assert payload_selection(["a", "b.c"], default=False).apply(payload) == {"a": 1, "b": {"c": 2}}
    assert payload_selection({"include": ["e.f", "missing"]}, default=False).apply(payload) == {
        "e": [{"f": 1}, {"f": 3}]
    }
    assert payload_selection({"exclude": ["b.d", "e.g", "a"]}, default=False).apply(payload) == {
        "b": {"c": 2},
        "e": [{"f": 1}, {"f": 3}],
    }
    assert payload == {"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 1, "g": 2}, {"f": 3}]}  # untouched
    for bad in ("a", 1, {"include": "a"}, {"include": ["a"], "exclude": ["b"]}, [""]):
        with pytest.raises(InvalidRequest):
            payload_selection(bad, default=True)
    assert vector_wanted(None) is False
    assert vector_wanted(True) is True
    assert vector_wanted(["text"]) == ["text"]
    assert vector_wanted([]) is False
    with pytest.raises(InvalidRequest):
        vector_wanted("yes")
    with pytest.raises(InvalidRequest):
        vector_wanted([1])


# ---- searches --------------------------------------------------------------------------


def test_search_request() -> None:
    query = search_request(
        {
            "vector": [1, 0],
            "limit": 3,
            "offset": 2,
            "filter": {"must": [{"key": "a", "match": {"value": 1}}]},
            "params": {"hnsw_ef": 99, "exact": True, "indexed_only": False},
            "score_threshold": 0.5,
            "with_payload": ["a"],
            "with_vector": True,
            "shard_key": None,
        },
        max_k=100,
    )
    assert (query.k, query.limit, query.offset, query.ef, query.exact) == (5, 3, 2, 99, True)
    assert query.shard_filter() == Compare("a", CompareOp.EQ, 1)
    assert query.options() == {
        "ef": 99,
        "exact": True,
        "with_payload": True,
        "with_vector": True,
        "score_threshold": 0.5,
    }
    hits = [
        {"id": i, "score": 1.0 - i / 10, "payload": {"a": 1, "b": 2}, "vector": [0.0, 1.0]} for i in range(5)
    ]
    assert scored_points(hits, query) == [
        {"id": i, "version": 0, "score": 1.0 - i / 10, "payload": {"a": 1}, "vector": [0.0, 1.0]}
        for i in (2, 3, 4)
    ]
    plain = search_request({"vector": [1.0], "limit": 1}, max_k=10)
    assert plain.payload == PayloadSelection(False)
    assert scored_points([{"id": 1, "score": 0.1, "payload": None}], plain)[0]["payload"] is None


@pytest.mark.parametrize(
    ("body", "error", "named"),
    [
        ({"vector": [1.0]}, InvalidRequest, "limit is required"),
        ({"vector": [1.0], "limit": 0}, InvalidRequest, "limit"),
        ({"vector": [1.0], "limit": 8, "offset": 5}, InvalidRequest, "offset \\+ limit"),
        ({"vector": {"name": "a", "vector": [1.0], "x": 1}, "limit": 1}, InvalidRequest, "unknown field"),
        ({"vector": {"name": 3, "vector": [1.0]}, "limit": 1}, InvalidRequest, "vector.name"),
        (
            {"vector": [1.0], "limit": 1, "params": {"quantization": {"rescore": True}}},
            NotImplementedParameter,
            "quant",
        ),
        (
            {"vector": [1.0], "limit": 1, "params": {"indexed_only": True}},
            NotImplementedParameter,
            "indexed_only",
        ),
        ({"vector": [1.0], "limit": 1, "params": {"hnsw_ef": 0}}, InvalidRequest, "hnsw_ef"),
        ({"vector": [1.0], "limit": 1, "score_threshold": "high"}, InvalidRequest, "score_threshold"),
        ({"vector": [1.0], "limit": 1, "score_threshold": 10**400}, InvalidRequest, "score_threshold"),
        (
            {"vector": [1.0], "limit": 1, "filter": {"must": [{"key": "a", "match": {"value": 2**70}}]}},
            InvalidFilter,
            "integer range",
        ),
        ({"vector": [1.0], "limit": 1, "shard_key": "x"}, NotImplementedParameter, "shard_key"),
        ({"vector": [1.0], "limit": 1, "group_by": "x"}, InvalidRequest, "group_by"),
    ],
)
def test_search_refusals(body: dict[str, Any], error: type[Exception], named: str) -> None:
    with pytest.raises(error, match=named):
        search_request(body, max_k=10)


def test_query_request_forms() -> None:
    plain = query_request({"query": [1, 2]}, max_k=100)
    assert (plain.vector, plain.point_id, plain.limit) == ([1.0, 2.0], None, 10)
    nearest = query_request({"query": {"nearest": [1, 2]}, "limit": 3}, max_k=100)
    assert (nearest.vector, nearest.limit) == ([1.0, 2.0], 3)
    by_id = query_request(
        {"query": {"nearest": 7}, "filter": {"must": [{"key": "a", "match": {"value": 1}}]}}, max_k=100
    )
    assert (by_id.vector, by_id.point_id) == (None, 7)
    assert by_id.shard_filter() == And((Compare("a", CompareOp.EQ, 1), Not(HasId(frozenset({7})))))
    assert query_request({"query": UUID}, max_k=100).shard_filter() == Not(HasId(frozenset({UUID})))


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"query": {"recommend": {"positive": [1]}}}, "recommend"),
        ({"query": {"discover": {}}}, "discover"),
        ({"query": {"order_by": "a"}}, "order_by"),
        ({"query": {"text": "hello", "model": "m"}}, "inference"),
        ({"query": {"text": "hello"}}, "query kind 'text'"),
        ({"query": [1.0], "lookup_from": {"collection": "x"}}, "lookup_from"),
        ({"limit": 3}, "without 'query'"),
    ],
)
def test_query_refusals(body: dict[str, Any], named: str) -> None:
    with pytest.raises(NotImplementedParameter, match=named):
        query_request(body, max_k=100)


def test_a_multivector_for_a_plain_vector_is_a_bad_request() -> None:
    with pytest.raises(InvalidVector, match="needs a vector with multivector_config"):
        query_request({"query": [[1.0], [2.0]]}, max_k=100)


def test_dense_vector() -> None:
    assert dense_vector([1, 2.5], "v") == [1.0, 2.5]
    for bad in (None, [], ["a"], [float("nan")], "1,2"):
        with pytest.raises(InvalidVector):
            dense_vector(bad, "v")


def test_errors_take_qdrant_shape() -> None:
    assert qdrant_error({"status": "error", "error": "bad", "code": "invalid_request"}, 0.5) == {
        "status": {"error": "bad"},
        "time": 0.5,
    }
    missing = {"status": "error", "error": "x", "code": "collection_not_found", "name": "docs"}
    assert qdrant_error(missing, 0.1)["status"] == {"error": "Not found: Collection `docs` doesn't exist!"}
    partial = {
        "status": "error",
        "error": "down",
        "code": "unavailable",
        "failed": [{"id": 1}],
        "partial": True,
    }
    assert qdrant_error(partial, 0.1)["result"] == {"failed": [{"id": 1}], "partial": True}


def test_named_vectors_in_upserts_and_searches() -> None:
    batch = upsert_batch({"batch": {"ids": [1, 2], "vectors": {"a": [[1.0], [2.0]], "b": [[1, 2], [3, 4]]}}})
    assert batch.named and batch.vectors == [{"a": [1.0], "b": [1.0, 2.0]}, {"a": [2.0], "b": [3.0, 4.0]}]
    points = upsert_batch({"points": [{"id": 1, "vector": {"b": [1.0]}}, {"id": 2, "vector": {}}]})
    assert named_columns(points.vectors) == {"b": ([0], [[1.0]])}
    with pytest.raises(InvalidVector, match="named vectors"):
        named_columns([[1.0], {"a": [1.0]}])
    query = search_request({"vector": {"name": "a", "vector": [1.0]}, "limit": 2}, max_k=10)
    assert query.using == "a" and query.options()["using"] == "a"
    assert query_request({"query": [1.0], "using": "b"}, max_k=10).using == "b"
    assert "using" not in query_request({"query": [1.0]}, max_k=10).options()


def test_multi_stage_queries_parse_into_stage_trees() -> None:
    body = {
        "prefetch": [
            {
                "query": [1.0, 0.0],
                "using": "dense",
                "limit": 20,
                "filter": {"must": [{"key": "a", "match": {"value": 1}}]},
            },
            {"query": {"indices": [7, 3], "values": [0.5, 1.0]}, "using": "sparse", "limit": 30},
        ],
        "query": {"rrf": {"k": 10}},
        "limit": 5,
    }
    assert needs_plan(body) and not needs_plan({"query": [1.0]})
    assert needs_plan({"query": {"nearest": [1.0], "mmr": {"diversity": 0.3}}})
    stage = stage_of(body, 100, "")
    assert stage.query == Fuse("rrf", 10) and stage.limit == 5 and stage.searches() == 3
    dense, sparse = stage.prefetch
    assert dense.using == "dense" and dense.condition == Compare("a", CompareOp.EQ, 1)
    assert sparse.query == SparseQuery((3, 7), (1.0, 0.5))  # sorted by index
    mmr = stage_of({"query": {"nearest": 5, "mmr": {"candidates_limit": 40}}}, 100, "")
    assert mmr.query == 5 and mmr.mmr == Mmr(0.5, 40)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"query": {"fusion": "max"}}, InvalidRequest, "fusion must be rrf or dbsf"),
        ({"query": {"rrf": {"k": 0}}}, InvalidRequest, "rrf.k"),
        ({"query": {"nearest": [1.0], "mmr": {"diversity": 2}}}, InvalidRequest, "diversity"),
        ({"query": {"indices": [1, 1], "values": [1.0, 2.0]}}, InvalidVector, "distinct"),
        ({"query": {"indices": [1], "values": [1.0, 2.0]}}, InvalidVector, "1 indices but 2 values"),
        ({"prefetch": {"query": [1.0], "colour": 1}, "query": [1.0]}, InvalidRequest, "colour"),
        (
            {"prefetch": {"query": [1.0], "lookup_from": {"collection": "x", "shard": 1}}, "query": [1.0]},
            InvalidRequest,
            "lookup_from",
        ),
        (
            {"query": {"formula": {"sum": []}}, "prefetch": {"query": [1.0]}},
            NotImplementedParameter,
            "formula",
        ),
        (
            {
                "prefetch": {
                    "prefetch": {"prefetch": {"prefetch": {"query": [1.0]}, "query": [1.0]}, "query": [1.0]},
                    "query": [1.0],
                },
                "query": [1.0],
            },
            InvalidRequest,
            "at most 4 levels",
        ),
    ],
)
def test_multi_stage_refusals(body: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        stage_of(body, 100, "")
