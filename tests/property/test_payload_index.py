"""A hypothesis state machine: the payload index against per-point filter evaluation.

Random JSON payloads (numbers at float64's edges, strings, booleans, nulls, arrays and
nested objects) and random filter trees; after every step of writes, payload changes,
deletions, sealing and compaction, the keys the index finds for a filter must be exactly
the live points on which `payload_filter.matches` holds for their current payload.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from vecstore.cluster.commands import (
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.datetimes import parse_datetime
from vecstore.cluster.filters import (
    And,
    Compare,
    CompareOp,
    Contains,
    DatetimeRange,
    Filter,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    HasId,
    In,
    IsEmpty,
    IsNull,
    MinShould,
    Nested,
    Not,
    Or,
    Prefix,
    Regex,
    Text,
    TextMode,
    ValuesCount,
)
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.shard import geo_index
from vecstore.shard.collection import Collection
from vecstore.shard.payload_filter import matches
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

DIM = 4
NAME = "c"
IDS: list[PointId] = list(range(40))
FIELD_NAMES = ["a", "b", "c"]

EDGE_INTEGERS = [0, 1, -1, 2, 2**53, 2**53 + 1, -(2**53) - 1, 2**63, 2**64 - 1, -(2**63)]
EDGE_FLOATS = [0.0, -0.0, 0.5, 1.0, 2.0, -1.5, 1e300, float(2**53)]

integers = st.one_of(st.integers(-3, 3), st.sampled_from(EDGE_INTEGERS))
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-4, 4, allow_nan=False, width=32))
DATETIMES = ["2024-01-01T10:00:00Z", "2024-01-01 11:00:00+01", "2024-01-02", "2023-12-31T23:59:59.5"]
texts = st.one_of(
    st.text(alphabet="ab1", max_size=3), st.sampled_from(DATETIMES), st.sampled_from(["a b", "b-a 1"])
)
scalars: st.SearchStrategy[Any] = st.one_of(integers, floats, texts, st.booleans())
COORDINATES = [-1.0, 0.0, 0.5, 1.0, 2.0, 179.0, -179.0, 200.0, 2**60]
geo_points = st.builds(
    lambda lon, lat: {"lon": lon, "lat": lat},
    st.one_of(st.sampled_from(COORDINATES), st.floats(-2, 2, allow_nan=False)),
    st.one_of(st.sampled_from(COORDINATES[:5]), st.integers(-1, 1), st.floats(-2, 2, allow_nan=False)),
)
_json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(scalars, st.none(), geo_points),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=3),
    ),
    max_leaves=6,
)
_payloads = st.dictionaries(st.sampled_from(FIELD_NAMES), _json_values, max_size=3)
keys = st.one_of(
    st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=3).map(".".join),
    st.sampled_from(["a[0]", "a[]", "a[1].b", "a[].b", "b[0][0]"]),
)
numbers = st.one_of(integers, floats)
micros = st.sampled_from([parse_datetime(text) for text in DATETIMES])
corners = st.tuples(st.sampled_from([-1.0, 0.0, 1.0, 2.0]), st.sampled_from([-1.0, 0.0, 1.0, 2.0]))

_leaves: st.SearchStrategy[Filter] = st.one_of(
    st.builds(Compare, keys, st.sampled_from([CompareOp.EQ, CompareOp.NE]), scalars),
    st.builds(
        Compare, keys, st.sampled_from([CompareOp.LT, CompareOp.LE, CompareOp.GT, CompareOp.GE]), numbers
    ),
    st.builds(In, keys, st.lists(scalars, max_size=3).map(tuple), st.booleans()),
    st.builds(Contains, keys, scalars),
    st.builds(IsEmpty, keys),
    st.builds(IsNull, keys),
    st.builds(ValuesCount, keys, st.none() | st.integers(0, 3), st.none(), st.none() | st.integers(0, 4)),
    st.builds(HasId, st.frozensets(st.sampled_from(IDS), max_size=4)),
    st.builds(DatetimeRange, keys, st.none() | micros, st.none() | micros, st.none() | micros),
    st.builds(Text, keys, st.sampled_from(["a", "b a", "1", ""]), st.sampled_from(list(TextMode))),
    st.builds(Prefix, keys, st.sampled_from(["a", "", "b-"])),
    st.builds(Regex, keys, st.sampled_from(["^a", "b$", "1|a"])),
    st.builds(
        GeoRadius,
        keys,
        st.sampled_from([0.0, 1.0, 179.5]),
        st.sampled_from([0.0, 1.0]),
        st.sampled_from([0.0, 60_000.0, 200_000.0]),
    ),
    st.builds(
        GeoBox,
        keys,
        st.sampled_from([-1.0, 178.0]),
        st.just(2.0),
        st.sampled_from([1.0, -178.0]),
        st.just(-1.0),
    ),
    st.builds(
        lambda key, points: GeoPolygon(key, (*points, points[0])),
        keys,
        st.lists(corners, min_size=3, max_size=4).map(tuple),
    ),
)
_filters: st.SearchStrategy[Filter] = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda children: And(tuple(children))),
        st.lists(inner, max_size=3).map(lambda children: Or(tuple(children))),
        st.builds(Not, inner),
        st.builds(MinShould, st.lists(inner, max_size=3).map(tuple), st.integers(0, 3)),
        st.builds(Nested, keys, inner),
    ),
    max_leaves=5,
)


# composites keep the strategies' reprs short: hypothesis prints them in notes and events,
# and a repr over 30 kB raises a HypothesisWarning, which this project's pytest turns into an error
@st.composite
def random_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object over fields a, b, c: scalars at float64's edges, nulls, arrays, objects."""
    return draw(_payloads)


@st.composite
def random_filters(draw: st.DrawFn) -> Filter:
    """A filter tree (And, Or, Not) over every leaf condition on dotted keys of a, b, c."""
    return draw(_filters)


payloads = random_payloads()
filters = random_filters()


class PayloadIndexMachine(RuleBasedStateMachine):
    """Writes and maintenance on one collection; every filter checked against brute force."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="vecstore-index-"))
        self.shard = Shard(ShardSettings(data_dir=self.root, seal_threshold=12, gpu=GpuMode.OFF))
        self.shard.apply(CreateCollection(CollectionSchema(NAME, DIM, Metric.L2)))
        self.rng = np.random.default_rng(0)
        self.min_grid = geo_index.MIN_GRID
        geo_index.MIN_GRID = 2  # grid even these few points

    def teardown(self) -> None:
        geo_index.MIN_GRID = self.min_grid
        self.shard.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def collection(self) -> Collection:
        return self.shard.collection(NAME)

    @initialize(batch=st.lists(st.tuples(st.sampled_from(IDS), payloads), min_size=1, max_size=20))
    def fill(self, batch: list[tuple[PointId, dict[str, Any]]]) -> None:
        self.upsert(batch)

    @rule(batch=st.lists(st.tuples(st.sampled_from(IDS), payloads), min_size=1, max_size=8))
    def upsert(self, batch: list[tuple[PointId, dict[str, Any]]]) -> None:
        rows = dict(batch)
        vectors = self.rng.normal(size=(len(rows), DIM)).astype(np.float32)
        self.shard.apply(Upsert.build(NAME, list(rows), vectors, list(rows.values())))

    @rule(ids=st.lists(st.sampled_from(IDS), max_size=5))
    def delete(self, ids: list[PointId]) -> None:
        self.shard.apply(DeletePoints(NAME, Selector.of_ids(ids)))

    @rule(
        kind=st.sampled_from(["set", "overwrite", "delete_keys"]),
        ids=st.lists(st.sampled_from(IDS), max_size=6),
        payload=payloads,
        doomed=st.lists(st.sampled_from(FIELD_NAMES), max_size=2),
    )
    def change_payload(
        self, kind: str, ids: list[PointId], payload: dict[str, Any], doomed: list[str]
    ) -> None:
        selector = Selector.of_ids(ids)
        if kind == "set":
            self.shard.apply(SetPayload(NAME, selector, payload))
        elif kind == "overwrite":
            self.shard.apply(OverwritePayload(NAME, selector, payload))
        else:
            self.shard.apply(DeletePayloadKeys(NAME, selector, tuple(doomed)))

    @rule(condition=filters)
    def change_payload_by_filter(self, condition: Filter) -> None:
        self.shard.apply(SetPayload(NAME, Selector.of_filter(condition), {"a": "set"}))

    @rule()
    def seal(self) -> None:
        self.shard.maintain(seal=True, compact=False, force=True)

    @rule()
    def compact(self) -> None:
        self.shard.maintain(force=True)

    @rule(condition=filters)
    def index_equals_brute_force(self, condition: Filter) -> None:
        collection = self.collection
        with collection.reading():
            found = collection.matching_keys(condition).tolist()
            expected = sorted(
                key
                for point_id, key in collection.id_map.items()
                if matches(condition, point_id, collection.payload_of(key))
            )
        assert found == expected, (condition, found, expected)
        assert self.shard.count(NAME, condition) == len(expected)
        queries = np.zeros((1, DIM), np.float32)
        hits = self.shard.search(NAME, queries, len(IDS), condition, exact=True, with_payload=False)[0]
        assert sorted(collection.id_map[hit.id] for hit in hits) == expected


TestPayloadIndex = PayloadIndexMachine.TestCase
TestPayloadIndex.settings = settings(
    max_examples=int(os.environ.get("VECSTORE_PROPERTY_EXAMPLES", "40")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
