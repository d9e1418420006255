"""is_null, values_count, nested and min_should against qdrant-client's local mode.

qdrant-client's in-process evaluator (`qdrant_client.local.payload_filters.check_filter`) is
the oracle: random payloads (nulls, arrays with nulls, arrays of objects, nested objects)
and random Qdrant filters of these conditions, translated by the router and evaluated by
the shard, must give the same answer for every point.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client import models
from qdrant_client.local.payload_filters import check_filter

from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.shard.payload_filter import matches

KEYS = ("a", "b", "c")
scalars = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["x", "y"]), st.booleans())
elements = st.fixed_dictionaries(
    {"x": st.one_of(st.none(), st.integers(0, 3))}, optional={"y": st.sampled_from(["p", "q"])}
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(elements, max_size=3),
    st.fixed_dictionaries({"x": scalars}),
)
# "d" is always an object: dotted keys go through objects only (VecStore also walks through
# arrays of objects, where Qdrant needs `a[].x`: docs/filters.md)
payloads = st.builds(
    lambda top, d: {**top, **({"d": d} if d is not None else {})},
    st.dictionaries(st.sampled_from(KEYS), values, max_size=3),
    st.one_of(
        st.none(),
        st.fixed_dictionaries({}, optional={"x": st.one_of(scalars, st.lists(scalars, max_size=3))}),
    ),
)
keys = st.sampled_from([*KEYS, "d", "d.x"])
bounds = st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(0, 4), min_size=1)


def field_conditions() -> st.SearchStrategy[dict[str, Any]]:
    inner = st.one_of(
        st.builds(lambda v: {"key": "x", "match": {"value": v}}, st.integers(0, 3)),
        st.builds(lambda v: {"key": "y", "match": {"value": v}}, st.sampled_from(["p", "q"])),
        st.builds(lambda k: {"is_null": {"key": k}}, st.just("x")),
        st.builds(lambda b: {"key": "x", "range": b}, bounds),
    )
    return st.one_of(
        st.builds(lambda k: {"is_null": {"key": k}}, keys),
        st.builds(lambda k, v: {"key": k, "is_null": v}, keys, st.booleans()),
        st.builds(lambda k: {"is_empty": {"key": k}}, keys),
        # values_count is pinned by tests/unit/shard/test_payload_filter.py instead: for a
        # missing field this qdrant-client's local mode counts 0, while Qdrant (and the local
        # mode of qdrant-client 1.18, whose congruence test checks it against a server) and
        # VecStore match nothing
        st.builds(lambda k, v: {"key": k, "match": {"value": v}}, keys, st.integers(-3, 3)),
        st.builds(
            lambda k, must, must_not: {"nested": {"key": k, "filter": {"must": must, "must_not": must_not}}},
            st.sampled_from(["a", "b", "c", "c[]"]),
            st.lists(inner, max_size=2),
            st.lists(inner, max_size=1),
        ),
    )


conditions = field_conditions()
filters = st.builds(
    lambda must, should, min_should, count: {
        "must": must,
        "should": should,
        **({"min_should": {"conditions": min_should, "min_count": count}} if min_should else {}),
    },
    st.lists(conditions, max_size=2),
    st.lists(conditions, max_size=2),
    st.lists(conditions, max_size=3),
    st.integers(0, 3),
)


@settings(max_examples=500, deadline=None)
@given(filters, st.lists(payloads, min_size=1, max_size=5))
def test_same_answer_as_qdrant_local_mode(raw: dict[str, Any], points: list[dict[str, Any]]) -> None:
    ours = filter_from_qdrant(raw)
    assert ours is not None
    theirs = models.Filter(**raw)
    for point_id, payload in enumerate(points, 1):
        expected = check_filter(theirs, payload, point_id, has_vector={})
        assert matches(ours, point_id, payload) == expected, (raw, payload)


# ---- geo, datetime, text, prefix and array-index keys -------------------------------------
# Coordinates on a coarse grid so points fall on box edges, polygon edges and corners; a few
# off the grid, out of range, integers, or not points at all (which match nothing).
GRID = [-180.0, -179.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 179.5, 180.0]
LATS = [-90.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 89.5, 90.0]
coordinates = st.one_of(
    st.sampled_from(GRID[2:8]), st.sampled_from(GRID), st.floats(-3, 3, allow_nan=False), st.integers(-2, 2)
)
latitudes = st.one_of(
    st.sampled_from(LATS[1:7]), st.sampled_from(LATS), st.floats(-3, 3, allow_nan=False), st.integers(-2, 2)
)
geo_points = st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, coordinates, latitudes)
not_points = st.sampled_from([{"lat": 0.0}, {"lon": "0", "lat": 0.0}, {"lon": True, "lat": 0}, "x", 3, None])
geo_values = st.one_of(
    geo_points,
    not_points,
    st.lists(st.one_of(geo_points, not_points), max_size=3),
    st.just({"lon": 0, "lat": 100}),
)
DATETIMES = [
    "2024-01-01T10:00:00Z",
    "2024-01-01T10:00:00",
    "2024-01-01 10:00:00",
    "2024-01-01T10:00:00.5+01:00",
    "2024-01-01T11:00:00+01",
    "2024-01-01",
    "2024-01-01T10:00",
    "2024-01-01 09:59:59.999999 UTC",
    "2023-12-31T23:00:00-11:00",
    "2024-13-01",
    "noon",
    "",
]
BOUNDS = ["2024-01-01T10:00:00Z", "2024-01-01", "2024-01-01T10:00:00+01:00", "2024-01-01T09:00:00.5Z"]
WORDS = ["cat", "Cat", "dog", "a-b", "x_y", "über", "42"]
texts = st.lists(st.sampled_from(WORDS), max_size=5).flatmap(
    lambda words: st.sampled_from([" ", ", ", "-", "_"]).map(lambda sep: sep.join(words))
)
extended_payloads = st.fixed_dictionaries(
    {
        "g": geo_values,
        "t": st.one_of(
            st.sampled_from(DATETIMES), st.lists(st.sampled_from(DATETIMES), max_size=2), st.just(5)
        ),
        "s": st.one_of(texts, st.lists(texts, max_size=2), st.just(7)),
        "arr": st.lists(
            st.fixed_dictionaries({}, optional={"x": st.integers(0, 2), "g": geo_points, "s": texts}),
            max_size=3,
        ),
        "m": st.lists(st.lists(st.integers(0, 2), max_size=2), max_size=2),
    },
)
queries = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=2).map(" ".join),
    st.sampled_from(["c", "Ca", "ü", "", "cat, dog"]),
)


def ring(points: list[tuple[float, float]]) -> dict[str, Any]:
    return {"points": [{"lon": lon, "lat": lat} for lon, lat in [*points, points[0]]]}


corners = st.tuples(st.sampled_from(GRID[2:8]), st.sampled_from(LATS[1:7]))
polygons = st.builds(
    lambda exterior, hole: {"exterior": ring(exterior), **({"interiors": [ring(hole)]} if hole else {})},
    st.lists(corners, min_size=3, max_size=5),
    st.one_of(st.none(), st.lists(corners, min_size=3, max_size=4)),
)
geo_keys = st.sampled_from(["g", "g[]", "g[0]", "g[1]", "arr[].g", "arr[0].g"])
string_keys = st.sampled_from(["s", "s[]", "s[0]", "arr[].s", "arr[1].s"])
extended_conditions = st.one_of(
    st.builds(
        lambda key, center, radius: {"key": key, "geo_radius": {"center": center, "radius": radius}},
        geo_keys,
        st.builds(lambda lon, lat: {"lon": lon, "lat": lat}, st.sampled_from(GRID), st.sampled_from(LATS)),
        st.one_of(st.sampled_from([0.0, 55_597.5, 111_195.0, 1e7]), st.floats(0, 300_000)),
    ),
    st.builds(
        lambda key, a, b: {
            "key": key,
            "geo_bounding_box": {
                "top_left": {"lon": a[0], "lat": a[1]},
                "bottom_right": {"lon": b[0], "lat": b[1]},
            },
        },
        geo_keys,
        st.tuples(st.sampled_from(GRID[:5]), st.sampled_from(LATS[3:])),
        st.tuples(st.sampled_from(GRID[3:]), st.sampled_from(LATS[:6])),
    ),
    st.builds(lambda key, polygon: {"key": key, "geo_polygon": polygon}, geo_keys, polygons),
    st.builds(
        lambda key, bounds: {"key": key, "range": bounds},
        st.sampled_from(["t", "t[]", "t[1]"]),
        st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from(BOUNDS), min_size=1),
    ),
    st.builds(
        lambda key, kind, query: {"key": key, "match": {kind: query}},
        string_keys,
        st.sampled_from(["text", "text_any", "phrase", "prefix", "substring"]),
        queries,
    ),
    st.builds(
        lambda key, value: {"key": key, "match": {"value": value}},
        st.sampled_from(["arr[0].x", "arr[].x", "arr[2].x", "m[0]", "m[1][0]", "m[]"]),
        st.integers(0, 2),
    ),
)
extended_filters = st.builds(
    lambda must, should, must_not: {"must": must, "should": should, "must_not": must_not},
    st.lists(extended_conditions, max_size=2),
    st.lists(extended_conditions, max_size=2),
    st.lists(extended_conditions, max_size=1),
)


@settings(max_examples=int(os.environ.get("VECSTORE_ORACLE_EXAMPLES", "2000")), deadline=None)
@given(extended_filters, st.lists(extended_payloads, min_size=1, max_size=5))
def test_geo_datetime_text_and_index_keys_as_qdrant_local_mode(
    raw: dict[str, Any], points: list[dict[str, Any]]
) -> None:
    ours = filter_from_qdrant(raw)
    assert ours is not None
    theirs = models.Filter(**raw)
    for point_id, payload in enumerate(points, 1):
        expected = check_filter(theirs, payload, point_id, has_vector={})
        assert matches(ours, point_id, payload) == expected, (raw, payload)
