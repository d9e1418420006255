"""A hypothesis state machine: one Shard against a brute-force model of its points.

The model is a dict id -> (vector, payload); its filter evaluator works on the JSON form
and is written from the documented semantics, sharing no code with the shard's. Sealing,
indexing, compaction, snapshots and the wire codec must never change what reads return.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DropCollection,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.ids import PointId, point_id_sort_key
from vecstore.cluster.schema import CollectionSchema, Metric, StorageDtype
from vecstore.shard.records import ScoredPoint
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

DIM = 8
COLLECTION = "points"

Payload = dict[str, Any]
JsonFilter = dict[str, Any]
Vector = npt.NDArray[np.float32]

INT_IDS: list[int] = [*range(48), 1_000, 2**32, 2**63, 2**64 - 1]
UUID_IDS: list[str] = [
    str(uuid.UUID(int=value))
    for value in (
        5,
        2**64,
        2**127,
        2**128 - 1,
        0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0,
        0xFEDC_BA98_7654_3210_FEDC_BA98_7654_3210,
        *range(0x0A0A_0000, 0x0A0A_0008),
    )
]
ALL_IDS: list[PointId] = [*INT_IDS, *UUID_IDS]


# ---- ids, vectors, payloads ----------------------------------------------------------


def as_written(point_id: PointId, shout: bool) -> object:
    """The id as a client may spell it: UUIDs sometimes in upper case."""
    if isinstance(point_id, str) and shout:
        return point_id.upper()
    return point_id


point_ids = st.sampled_from(ALL_IDS)
id_batches = st.lists(point_ids, min_size=1, max_size=16, unique=True)

small_ints = st.integers(-3, 3)
small_floats = st.sampled_from([-1.5, 0.5, 1.0, 2.0, 2.5])
short_texts = st.text(alphabet="abc", max_size=3)
edge_ints = st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2**63])
"""Integers float64 cannot hold exactly: the payload index must leave them to Python."""
scalars: st.SearchStrategy[Any] = st.one_of(small_ints, small_floats, short_texts, st.booleans(), edge_ints)
numbers: st.SearchStrategy[Any] = st.one_of(small_ints, small_floats, edge_ints)

_PAYLOAD_FIELDS: st.SearchStrategy[Payload] = st.fixed_dictionaries(
    {},
    optional={
        "n": scalars,
        "s": short_texts,
        "b": st.booleans(),
        "z": st.one_of(st.none(), small_ints),
        "tags": st.lists(st.one_of(short_texts, small_ints), max_size=3),
        "meta": st.fixed_dictionaries(
            {},
            optional={
                "x": numbers,
                "label": short_texts,
                "deep": st.fixed_dictionaries({}, optional={"y": small_ints}),
            },
        ),
        "items": st.lists(
            st.fixed_dictionaries({"x": small_ints}, optional={"t": short_texts}),
            max_size=2,
        ),
    },
)


@st.composite
def random_payloads(draw: st.DrawFn) -> Payload:
    """A payload with some of the fields n, s, b, z, tags, meta{x, label, deep{y}}, items[{x, t}]."""
    return draw(_PAYLOAD_FIELDS)


payloads = random_payloads()
payload_keys = st.sampled_from(["n", "s", "b", "z", "tags", "meta", "items", "absent"])


def vectors_from_seed(seed: int, rows: int, rounded: bool) -> Vector:
    """Gaussian vectors, optionally rounded to a tiny grid so that scores tie."""
    matrix = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return np.round(matrix).astype(np.float32) if rounded else matrix


seeds = st.integers(0, 2**32 - 1)


# ---- filters (JSON form) -------------------------------------------------------------

SCALAR_KEYS = ["n", "s", "b", "z", "tags", "meta.x", "meta.label", "meta.deep.y", "items.x", "items.t"]
EMPTY_KEYS = [*SCALAR_KEYS, "meta", "meta.deep", "items", "absent"]
keys = st.sampled_from([*SCALAR_KEYS, "absent"])


def _range_bounds() -> st.SearchStrategy[dict[str, Any]]:
    names = st.lists(st.sampled_from(["gt", "gte", "lt", "lte"]), min_size=1, max_size=2, unique=True)
    return names.flatmap(lambda chosen: st.fixed_dictionaries(dict.fromkeys(chosen, numbers)))


def _id_lists() -> st.SearchStrategy[list[object]]:
    return st.lists(st.tuples(point_ids, st.booleans()), max_size=4).map(
        lambda pairs: [as_written(point_id, shout) for point_id, shout in pairs]
    )


leaf_conditions: st.SearchStrategy[JsonFilter] = st.one_of(
    st.builds(lambda k, v: {"key": k, "match": {"value": v}}, keys, scalars),
    st.builds(lambda k, vs: {"key": k, "match": {"any": vs}}, keys, st.lists(scalars, max_size=3)),
    st.builds(lambda k, vs: {"key": k, "match": {"except": vs}}, keys, st.lists(scalars, max_size=3)),
    st.builds(lambda k, s: {"key": k, "match": {"substring": s}}, keys, short_texts),
    st.builds(lambda k, r: {"key": k, "range": r}, keys, _range_bounds()),
    st.builds(lambda k, v: {"key": k, "contains": v}, keys, scalars),
    st.builds(
        lambda k, op, v: {"key": k, "op": op, "value": v},
        keys,
        st.sampled_from(["==", "!="]),
        scalars,
    ),
    st.builds(
        lambda k, op, v: {"key": k, "op": op, "value": v},
        keys,
        st.sampled_from(["<", "<=", ">", ">="]),
        numbers,
    ),
    st.builds(lambda k: {"is_empty": {"key": k}}, st.sampled_from(EMPTY_KEYS)),
    st.builds(lambda ids: {"has_id": ids}, _id_lists()),
)


@st.composite
def json_filters(draw: st.DrawFn, depth: int = 0) -> JsonFilter:
    """A Qdrant-style filter; nested clauses are never empty (the parser refuses `{}` there)."""

    def condition() -> JsonFilter:
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            nested = draw(json_filters(depth + 1))
            if nested:
                return nested
        return draw(leaf_conditions)

    def conditions() -> list[JsonFilter]:
        return [condition() for _ in range(draw(st.integers(1, 3)))]

    result: JsonFilter = {}
    if draw(st.booleans()):
        result["must"] = conditions() if draw(st.booleans()) else condition()
    if draw(st.booleans()):
        result["should"] = conditions()
    if draw(st.booleans()):
        result["must_not"] = conditions() if draw(st.booleans()) else condition()
    return result


# a composite keeps the strategy's repr short: hypothesis prints it in notes, and a repr
# over 30 kB raises a HypothesisWarning, which this project's pytest turns into an error
filters: st.SearchStrategy[JsonFilter] = json_filters()


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _equal(stored: object, wanted: object) -> bool:
    kind = _kind(stored)
    return kind != "other" and kind == _kind(wanted) and stored == wanted


def _values(payload: Payload, key: str) -> list[Any]:
    """Values at a dotted key: walk objects, flatten arrays, drop nulls."""
    found: list[Any] = [payload]
    for part in key.split("."):
        following: list[Any] = []
        for node in found:
            if isinstance(node, dict) and part in node:
                child = node[part]
                following.extend(child if isinstance(child, list) else [child])
        found = [value for value in following if value is not None]
    return found


_ORDER_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_RANGE_NAMES = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _ordered(values: Iterable[Any], op: str, bound: Any) -> bool:
    return any(_kind(v) == "number" and _ORDER_OPS[op](v, bound) for v in values)


def _canonical(raw: object) -> PointId:
    if isinstance(raw, str):
        return str(uuid.UUID(raw))
    assert isinstance(raw, int)
    return raw


def _condition(point_id: PointId, payload: Payload, cond: JsonFilter) -> bool:
    if {"must", "should", "must_not"} & set(cond) or not cond:
        return evaluate(cond, point_id, payload)
    if "has_id" in cond:
        return point_id in {_canonical(raw) for raw in cond["has_id"]}
    if "is_empty" in cond:
        return not _values(payload, cond["is_empty"]["key"])
    values = _values(payload, cond["key"])
    if "match" in cond:
        ((kind, operand),) = cond["match"].items()
        if kind == "value":
            return any(_equal(v, operand) for v in values)
        if kind == "any":
            return any(_equal(v, w) for v in values for w in operand)
        if kind == "except":
            return any(not any(_equal(v, w) for w in operand) for v in values)
        assert kind == "substring"  # word matches (text, phrase, ...): test_filters_vs_qdrant_local.py
        return any(isinstance(v, str) and operand in v for v in values)
    if "range" in cond:
        return all(_ordered(values, _RANGE_NAMES[name], bound) for name, bound in cond["range"].items())
    if "contains" in cond:
        wanted = cond["contains"]
        return any(
            _equal(v, wanted) or (isinstance(v, str) and isinstance(wanted, str) and wanted in v)
            for v in values
        )
    op, wanted = cond["op"], cond["value"]
    if op == "==":
        return any(_equal(v, wanted) for v in values)
    if op == "!=":
        return any(not _equal(v, wanted) for v in values)
    return _ordered(values, op, wanted)


def evaluate(json_filter: JsonFilter, point_id: PointId, payload: Payload) -> bool:
    """True if the point satisfies the filter: must all, should any (if given), must_not none."""

    def listed(raw: object) -> list[JsonFilter]:
        return raw if isinstance(raw, list) else [raw]  # type: ignore[list-item]

    must = listed(json_filter.get("must", []))
    should = listed(json_filter.get("should", []))
    must_not = listed(json_filter.get("must_not", []))
    return (
        all(_condition(point_id, payload, c) for c in must)
        and (not should or any(_condition(point_id, payload, c) for c in should))
        and not any(_condition(point_id, payload, c) for c in must_not)
    )


# ---- brute-force search ---------------------------------------------------------------


def true_scores(metric: Metric, query: Vector, vectors: Vector) -> npt.NDArray[np.float64]:
    """User-facing scores in float64: cosine similarity, euclidean distance, or dot product."""
    q = query.astype(np.float64)
    m = vectors.astype(np.float64).reshape(-1, query.shape[0])
    result: npt.NDArray[np.float64]
    if metric is Metric.L2:
        result = np.sqrt(((m - q) ** 2).sum(axis=1))
    elif metric is Metric.DOT:
        result = m @ q
    else:
        q_norm = float(np.linalg.norm(q)) or 1.0
        m_norms = np.linalg.norm(m, axis=1)
        m_norms[m_norms == 0] = 1.0
        result = (m @ q) / (m_norms * q_norm)
    return result


def best_first(metric: Metric, scores: Sequence[float]) -> list[float]:
    """Scores sorted from best to worst for the metric."""
    return sorted(scores) if metric is Metric.L2 else sorted(scores, reverse=True)


def sorted_ids(ids: Iterable[PointId]) -> list[PointId]:
    """Ids in scroll order."""
    return sorted(ids, key=point_id_sort_key)


# ---- the state machine ------------------------------------------------------------------

SCORE_TOLERANCE = 1e-4
VECTOR_TOLERANCE = 1e-6
Model = dict[PointId, tuple[Vector, Payload]]


def shard_settings(data_dir: Path) -> ShardSettings:
    """Tiny thresholds so that a few dozen points cross every physical boundary."""
    return ShardSettings(
        data_dir=data_dir,
        seal_threshold=40,
        exact_limit=20,
        index_chunk=8,
        gpu=GpuMode.OFF,
    )


def check_hits(
    metric: Metric,
    hits: Sequence[ScoredPoint],
    candidates: Model,
    query: Vector,
    k: int,
    complete: bool,
) -> None:
    """Hits are distinct candidates with true scores, best first; `complete`: the exact top-k."""
    ids = [hit.id for hit in hits]
    assert len(ids) == len(set(ids)), f"duplicate hits {ids}"
    assert set(ids) <= set(candidates), f"hits {set(ids) - set(candidates)} are not live matches"
    assert len(hits) <= k
    truth = dict(zip(candidates, true_scores(metric, query, _stack(candidates)).tolist(), strict=True))
    for hit in hits:
        assert abs(hit.score - truth[hit.id]) <= SCORE_TOLERANCE, (hit, truth[hit.id])
    scores = [hit.score for hit in hits]
    assert all(
        abs(a - b) <= SCORE_TOLERANCE or a == best_first(metric, [a, b])[0]
        for a, b in itertools.pairwise(scores)
    ), f"hits not best first: {scores}"
    if complete:
        expected = best_first(metric, list(truth.values()))[:k]
        assert len(hits) == len(expected), (len(hits), len(expected))
        for got, want in zip(best_first(metric, scores), expected, strict=True):
            assert abs(got - want) <= SCORE_TOLERANCE, (scores, expected)


def _stack(points: Model) -> Vector:
    if not points:
        return np.zeros((0, DIM), np.float32)
    return np.stack([vector for vector, _ in points.values()])


class ShardMachine(RuleBasedStateMachine):
    """Random commands and maintenance on a Shard, checked against the model after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="vecstore-model-"))
        self.generation = 0
        self.shard = Shard(shard_settings(self.root / "shard-0"))
        self.model: Model = {}
        self.metric = Metric.COSINE

    # ---- setup and teardown ---------------------------------------------------------------

    @initialize(
        metric=st.sampled_from(list(Metric)),
        dtype=st.sampled_from(list(StorageDtype)),
        ids=st.lists(point_ids, min_size=10, max_size=45, unique=True),
        seed=seeds,
        data=st.data(),
        seal=st.booleans(),
    )
    def create(
        self,
        metric: Metric,
        dtype: StorageDtype,
        ids: list[PointId],
        seed: int,
        data: st.DataObject,
        seal: bool,
    ) -> None:
        self.metric = metric
        schema = CollectionSchema(COLLECTION, DIM, metric, dtype)
        assert self.shard.apply(CreateCollection(schema)) == {"status": "ok", "created": True}
        assert self.shard.apply(CreateCollection(schema)) == {"status": "ok", "created": False}
        self._upsert(ids, False, vectors_from_seed(seed, len(ids), False), data, through_codec=False)
        if seal:
            self.shard.maintain(seal=True, compact=False, force=True)

    def teardown(self) -> None:
        self.shard.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _apply(self, command: Command, through_codec: bool) -> dict[str, Any]:
        if through_codec:
            command = decode_command(encode_command(command))
        return self.shard.apply(command)

    def _matching(self, json_filter: JsonFilter) -> list[PointId]:
        return [i for i, (_, payload) in self.model.items() if evaluate(json_filter, i, payload)]

    # ---- writes ---------------------------------------------------------------------------

    @rule(
        ids=id_batches,
        shout=st.booleans(),
        seed=seeds,
        rounded=st.booleans(),
        data=st.data(),
        through_codec=st.booleans(),
    )
    def upsert(
        self,
        ids: list[PointId],
        shout: bool,
        seed: int,
        rounded: bool,
        data: st.DataObject,
        through_codec: bool,
    ) -> None:
        self._upsert(ids, shout, vectors_from_seed(seed, len(ids), rounded), data, through_codec)

    def _upsert(
        self, ids: list[PointId], shout: bool, vectors: Vector, data: st.DataObject, through_codec: bool
    ) -> None:
        batch = data.draw(st.lists(payloads, min_size=len(ids), max_size=len(ids)))
        command = Upsert.build(COLLECTION, [as_written(i, shout) for i in ids], vectors, batch)
        assert self._apply(command, through_codec) == {"status": "ok", "upserted": len(ids)}
        for point_id, vector, payload in zip(ids, vectors, batch, strict=True):
            self.model[point_id] = (vector, payload)

    @rule(ids=st.lists(point_ids, max_size=6), through_codec=st.booleans())
    def delete_ids(self, ids: list[PointId], through_codec: bool) -> None:
        existing = {i for i in ids if i in self.model}
        result = self._apply(DeletePoints(COLLECTION, Selector.of_ids(ids)), through_codec)
        assert result == {"status": "ok", "deleted": len(existing)}
        for point_id in existing:
            del self.model[point_id]

    @rule(json_filter=filters, through_codec=st.booleans())
    def delete_filter(self, json_filter: JsonFilter, through_codec: bool) -> None:
        chosen = self._matching(json_filter)
        selector = Selector.of_filter(parse_filter(json_filter))
        result = self._apply(DeletePoints(COLLECTION, selector), through_codec)
        assert result == {"status": "ok", "deleted": len(chosen)}
        for point_id in chosen:
            del self.model[point_id]

    @rule(
        kind=st.sampled_from(["set", "overwrite", "delete_keys"]),
        by_filter=st.booleans(),
        ids=st.lists(point_ids, max_size=6),
        json_filter=filters,
        payload=payloads,
        doomed=st.lists(payload_keys, max_size=3, unique=True),
        through_codec=st.booleans(),
    )
    def change_payload(
        self,
        kind: str,
        by_filter: bool,
        ids: list[PointId],
        json_filter: JsonFilter,
        payload: Payload,
        doomed: list[str],
        through_codec: bool,
    ) -> None:
        if by_filter:
            chosen = self._matching(json_filter)
            selector = Selector.of_filter(parse_filter(json_filter))
        else:
            chosen = [i for i in dict.fromkeys(ids) if i in self.model]
            selector = Selector.of_ids(ids)
        command: Command
        if kind == "set":
            command = SetPayload(COLLECTION, selector, payload)
        elif kind == "overwrite":
            command = OverwritePayload(COLLECTION, selector, payload)
        else:
            command = DeletePayloadKeys(COLLECTION, selector, tuple(doomed))
        assert self._apply(command, through_codec) == {"status": "ok", "updated": len(chosen)}
        for point_id in chosen:
            vector, old = self.model[point_id]
            if kind == "set":
                new = {**old, **payload}
            elif kind == "overwrite":
                new = dict(payload)
            else:
                new = {k: v for k, v in old.items() if k not in doomed}
            self.model[point_id] = (vector, new)

    @rule()
    def drop_and_recreate(self) -> None:
        schema = self.shard.collection(COLLECTION).schema
        assert self.shard.apply(DropCollection(COLLECTION)) == {"status": "ok", "dropped": True}
        assert self.shard.apply(DropCollection(COLLECTION)) == {"status": "ok", "dropped": False}
        assert self.shard.apply(CreateCollection(schema)) == {"status": "ok", "created": True}
        self.model.clear()

    # ---- physical maintenance -------------------------------------------------------------

    @rule()
    def seal(self) -> None:
        self.shard.maintain(seal=True, compact=False, force=True)

    @rule()
    def compact(self) -> None:
        self.shard.maintain(force=True)

    @rule()
    def index_all(self) -> None:
        self.shard.maintain(seal=False, compact=False)

    @rule()
    def index_one_chunk(self) -> None:
        self.shard.collection(COLLECTION).index_pending()

    @rule()
    def compaction_step(self) -> None:
        """A piece of a merge, as the indexer thread runs it: writes, reads and snapshots
        may come between two pieces."""
        self.shard.collection(COLLECTION).compact_step()

    @rule(as_file=st.booleans())
    def snapshot_and_restore(self, as_file: bool) -> None:
        self.generation += 1
        before = self.shard.digest()
        snapshot = self.root / f"snapshot-{self.generation}"
        fresh = Shard(shard_settings(self.root / f"shard-{self.generation}"))
        if as_file:
            self.shard.snapshot_to_file(snapshot)
            fresh.restore_from_file(snapshot)
            snapshot.unlink()
        else:
            self.shard.snapshot(snapshot)
            fresh.restore(snapshot)
            shutil.rmtree(snapshot)
        old, self.shard = self.shard, fresh
        old.close()
        shutil.rmtree(old.settings.data_dir)
        assert self.shard.digest() == before

    # ---- reads ----------------------------------------------------------------------------

    @invariant()
    def get_returns_every_point(self) -> None:
        absent = [i for i in ALL_IDS[::5] if i not in self.model]
        asked: list[object] = [*absent, *self.model]
        records = self.shard.get(COLLECTION, asked, with_payload=True, with_vector=True)
        assert [r.id for r in records] == list(self.model)
        for record in records:
            vector, payload = self.model[record.id]
            assert record.payload == payload, (record.id, record.payload, payload)
            assert isinstance(record.vector, list)
            assert np.allclose(record.vector, vector, rtol=0, atol=VECTOR_TOLERANCE)

    @invariant()
    def count_and_scroll_cover_the_model(self) -> None:
        assert self.shard.count(COLLECTION) == len(self.model)
        records, next_offset = self.shard.scroll(COLLECTION, limit=10_000)
        assert next_offset is None
        assert [r.id for r in records] == sorted_ids(self.model)

    @rule(json_filter=filters, limit=st.integers(1, 7), with_filter=st.booleans())
    def scroll_pages(self, json_filter: JsonFilter, limit: int, with_filter: bool) -> None:
        condition = parse_filter(json_filter) if with_filter else None
        expected = sorted_ids(self._matching(json_filter) if with_filter else self.model)
        seen: list[PointId] = []
        offset: PointId | None = None
        while True:
            page, offset = self.shard.scroll(COLLECTION, offset=offset, limit=limit, condition=condition)
            assert len(page) <= limit
            assert offset is None or len(page) == limit
            seen.extend(record.id for record in page)
            for record in page:
                assert record.payload == self.model[record.id][1]
            if offset is None:
                break
            assert point_id_sort_key(offset) > point_id_sort_key(seen[-1])
        assert seen == expected

    @rule(json_filter=filters)
    def count_filtered(self, json_filter: JsonFilter) -> None:
        expected = len(self._matching(json_filter))
        assert self.shard.count(COLLECTION, parse_filter(json_filter)) == expected, json_filter

    @rule(json_filter=filters, seed=seeds, k=st.integers(1, 12))
    def exact_search(self, json_filter: JsonFilter, seed: int, k: int) -> None:
        queries = vectors_from_seed(seed, 2, rounded=False)
        matching = {i: self.model[i] for i in self._matching(json_filter)}
        results = self.shard.search(COLLECTION, queries, k, parse_filter(json_filter), exact=True)
        assert len(results) == len(queries)
        for query, hits in zip(queries, results, strict=True):
            check_hits(self.metric, hits, matching, query, k, complete=True)
            for hit in hits:
                assert hit.payload == self.model[hit.id][1]

    @rule(seed=seeds, k=st.integers(1, 8), json_filter=filters, with_filter=st.booleans())
    def planned_search(self, seed: int, k: int, json_filter: JsonFilter, with_filter: bool) -> None:
        queries = vectors_from_seed(seed, 2, rounded=False)
        condition = parse_filter(json_filter) if with_filter else None
        ids = self._matching(json_filter) if with_filter else list(self.model)
        candidates = {i: self.model[i] for i in ids}
        plan = self.shard.explain(COLLECTION, k, condition)
        event(f"planned search: {plan.kind}, {'with' if plan.segments else 'no'} segments")
        results = self.shard.search(COLLECTION, queries, k, condition)
        # exact plans must be exact; HNSW plans widen until k pass or every point was fetched
        for query, hits in zip(queries, results, strict=True):
            check_hits(self.metric, hits, candidates, query, k, complete=plan.kind == "exact")
            assert len(hits) == min(k, len(candidates)), (plan, len(hits), len(candidates))


TestShardModel = ShardMachine.TestCase
TestShardModel.settings = settings(
    max_examples=int(os.environ.get("VECSTORE_PROPERTY_EXAMPLES", "40")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
