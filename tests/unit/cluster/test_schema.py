"""Collection schemas: validation with clear errors, and the dict round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vecstore.cluster.errors import InvalidSchema
from vecstore.cluster.schema import (
    MAX_DIMENSION,
    CollectionSchema,
    HnswConfig,
    Metric,
    StorageDtype,
    validate_collection_name,
)


@pytest.mark.parametrize("name", ["a", "docs", "A-b_c.d", "0day", "x" * 128])
def test_valid_names(name: str) -> None:
    assert validate_collection_name(name) == name
    CollectionSchema(name, 4).validate()


@pytest.mark.parametrize(
    "name", ["", "_x", "-x", ".x", "a b", "a/b", "../etc", "x" * 129, "docs\n", "é", 5, None]
)
def test_bad_names(name: object) -> None:
    with pytest.raises(InvalidSchema, match="is invalid"):
        validate_collection_name(name)


@pytest.mark.parametrize("dimension", [1, 3, MAX_DIMENSION])
def test_dimension_in_range(dimension: int) -> None:
    CollectionSchema("c", dimension).validate()


@pytest.mark.parametrize("dimension", [0, -1, MAX_DIMENSION + 1, 10**9, True, 1.5, "8", None])
def test_dimension_out_of_range(dimension: Any) -> None:
    with pytest.raises(InvalidSchema, match="dimension must be an integer"):
        CollectionSchema("c", dimension).validate()


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("connectivity", 2, True),
        ("connectivity", 256, True),
        ("connectivity", 1, False),
        ("connectivity", 257, False),
        ("expansion_add", 1, True),
        ("expansion_add", 0, False),
        ("expansion_add", 10_001, False),
        ("expansion_search", 10_000, True),
        ("expansion_search", 0, False),
        ("expansion_search", True, False),
        ("expansion_search", 64.0, False),
    ],
)
def test_hnsw_ranges(field: str, value: Any, ok: bool) -> None:
    config = HnswConfig(**{field: value})
    if ok:
        config.validate()
        CollectionSchema("c", 4, hnsw=config).validate()
    else:
        with pytest.raises(InvalidSchema, match=f"hnsw {field}"):
            CollectionSchema("c", 4, hnsw=config).validate()


@pytest.mark.parametrize("metric", list(Metric))
@pytest.mark.parametrize("dtype", list(StorageDtype))
def test_to_dict_from_dict_round_trip(metric: Metric, dtype: StorageDtype) -> None:
    schema = CollectionSchema(
        "docs.v2", 384, metric, dtype, HnswConfig(connectivity=8, expansion_add=40, expansion_search=30)
    )
    data = schema.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["metric"] == metric.value
    assert data["dtype"] == dtype.value
    assert CollectionSchema.from_dict(data) == schema


def test_from_dict_fills_defaults() -> None:
    schema = CollectionSchema.from_dict({"name": "c", "dimension": 8})
    assert schema == CollectionSchema("c", 8, Metric.COSINE, StorageDtype.F32, HnswConfig())
    assert CollectionSchema.from_dict({"name": "c", "dimension": 8, "hnsw": None}).hnsw == HnswConfig()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be an object"),
        ({"name": "c"}, "needs 'name' and 'dimension'"),
        ({"dimension": 4}, "needs 'name' and 'dimension'"),
        ({"name": "c", "dimension": 4, "size": 4}, "unknown collection schema fields: ['size']"),
        ({"name": "c", "dimension": 4, "metric": "cos"}, "metric 'cos' is not one of: cosine, l2, dot"),
        ({"name": "c", "dimension": 4, "metric": 1}, "metric 1 is not one of"),
        ({"name": "c", "dimension": 4, "dtype": "f64"}, "dtype 'f64' is not one of: f32, f16, i8"),
        ({"name": "c", "dimension": 4, "hnsw": [16]}, "hnsw must be an object"),
        ({"name": "c", "dimension": 4, "hnsw": {"m": 16}}, "unknown hnsw fields: ['m']"),
        ({"name": "c", "dimension": 4, "hnsw": {"connectivity": 0}}, "hnsw connectivity"),
        ({"name": "c", "dimension": 0}, "dimension must be an integer"),
        ({"name": "c", "dimension": "4"}, "dimension must be an integer"),
        ({"name": "bad name", "dimension": 4}, "is invalid"),
    ],
)
def test_from_dict_rejects_bad_input(data: object, fragment: str) -> None:
    with pytest.raises(InvalidSchema) as caught:
        CollectionSchema.from_dict(data)
    assert fragment in caught.value.message


def test_only_l2_prefers_lower_scores() -> None:
    assert Metric.COSINE.higher_is_better
    assert Metric.DOT.higher_is_better
    assert not Metric.L2.higher_is_better
