"""The nesting bounds (cluster.nesting): payloads, request bodies and filters, native and
Qdrant. Every refusal is an InvalidRequest (400), never a RecursionError (500), however
deep the input: the checks walk iteratively or stop at the bound before recursing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster import commands
from vecstore.cluster.commands import (
    MAX_PAYLOAD_DEPTH,
    CreateCollection,
    DeletePoints,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
    canonical_payload,
    validate_payload,
)
from vecstore.cluster.errors import InvalidFilter, InvalidRequest
from vecstore.cluster.filters import MAX_FILTER_DEPTH, Compare, CompareOp, parse_filter
from vecstore.cluster.nesting import MAX_BODY_DEPTH, depth_exceeds
from vecstore.cluster.schema import CollectionSchema
from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.router.qdrant.translate import PayloadSelection
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard
from vecstore.transport.wire import JSON, MSGPACK, decode_body

documents = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@given(documents, st.integers(min_value=0, max_value=8))
def test_agrees_with_the_recursive_depth(document: Any, limit: int) -> None:
    assert depth_exceeds(document, limit) == (depth(document) > limit)


def chain(levels: int) -> dict[str, Any]:
    """An object nested `levels` deep (built iteratively: no recursion to build it either)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_a_walk_of_a_huge_chain_does_not_recurse() -> None:
    assert depth_exceeds(chain(50_000), 100)
    assert not depth_exceeds(chain(50_000), 50_000)


@pytest.mark.parametrize("levels", [MAX_PAYLOAD_DEPTH + 1, 500, 10_000])
def test_payloads_deeper_than_the_bound_are_refused(levels: int) -> None:
    assert validate_payload(chain(MAX_PAYLOAD_DEPTH)) == chain(MAX_PAYLOAD_DEPTH)
    for check in (validate_payload, canonical_payload):
        with pytest.raises(InvalidRequest, match=f"payload is nested deeper than {MAX_PAYLOAD_DEPTH}"):
            check(chain(levels))


def test_arrays_count_as_levels_in_payloads() -> None:
    deep_list: Any = 1
    for _ in range(MAX_PAYLOAD_DEPTH):  # the payload object is level 1: one list too many
        deep_list = [deep_list]
    with pytest.raises(InvalidRequest, match="nested deeper"):
        validate_payload({"a": deep_list})


def json_chain(levels: int) -> bytes:
    return b'{"x":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def msgpack_chain(levels: int) -> bytes:
    return b"\x81\xa1x" * (levels - 1) + b"\x80"  # {"x": {"x": ... {}}}


@pytest.mark.parametrize(("kind", "encode"), [(JSON, json_chain), (MSGPACK, msgpack_chain)])
def test_request_bodies_are_bounded(kind: str, encode: Any) -> None:
    assert depth(decode_body(encode(MAX_BODY_DEPTH), kind)) == MAX_BODY_DEPTH
    for levels in (MAX_BODY_DEPTH + 1, 1_000, 10_000, 100_000):
        with pytest.raises(InvalidRequest, match="nested deeper than"):
            decode_body(encode(levels), kind)


def test_a_payload_at_its_bound_fits_in_a_body() -> None:
    body = {"points": [{"id": 1, "vector": [0.0], "payload": chain(MAX_PAYLOAD_DEPTH)}]}
    assert decode_body(json.dumps(body).encode(), JSON) == body
    assert decode_body(msgpack.packb(body), MSGPACK) == body


def native_filter(levels: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"key": "a", "match": {"value": 1}}
    for _ in range(levels):
        condition = {"must": [condition]}
    return condition


@pytest.mark.parametrize("levels", [MAX_FILTER_DEPTH + 1, 400, 10_000])
def test_native_and_qdrant_filters_are_bounded(levels: int) -> None:
    assert parse_filter(native_filter(MAX_FILTER_DEPTH)) == Compare("a", CompareOp.EQ, 1)
    assert filter_from_qdrant(native_filter(MAX_FILTER_DEPTH)) == Compare("a", CompareOp.EQ, 1)
    with pytest.raises(InvalidFilter, match=f"nested deeper than {MAX_FILTER_DEPTH}"):
        parse_filter(native_filter(levels))
    with pytest.raises(InvalidFilter, match=f"nested deeper than {MAX_FILTER_DEPTH}"):
        filter_from_qdrant(native_filter(levels))


def test_a_filter_at_its_bound_fits_in_a_body() -> None:
    body = {"filter": native_filter(MAX_FILTER_DEPTH), "vector": [0.0]}
    assert decode_body(json.dumps(body).encode(), JSON) == body


def test_excluding_payload_keys_copies_only_the_path() -> None:
    payload: dict[str, Any] = {"a": {"b": 1, "c": 2}, "big": chain(5_000), "list": [{"b": 1}, {"b": 2}]}
    trimmed = PayloadSelection(True, exclude=("a.b", "list.b")).apply(payload)
    assert trimmed is not None
    assert trimmed["a"] == {"c": 2} and trimmed["list"] == [{}, {}]
    assert trimmed["big"] is payload["big"]  # shared, not deep-copied: no recursion over it
    assert payload["a"] == {"b": 1, "c": 2} and payload["list"] == [{"b": 1}, {"b": 2}]  # untouched
    assert PayloadSelection(True).apply(payload) == payload
    assert PayloadSelection(True, exclude=("missing.path",)).apply(payload) == payload


@pytest.fixture
def shard(tmp_path: Path) -> Any:
    held = Shard(ShardSettings(data_dir=tmp_path / "shard", gpu=GpuMode.OFF))
    held.apply(CreateCollection(CollectionSchema("c", 2)))
    yield held
    held.close()


def unchecked_upsert(point_id: int, payload: dict[str, Any]) -> Upsert:
    """An upsert as a node decodes it from the wire: built without Upsert.build's checks."""
    return Upsert("c", (point_id,), 2, b"\x00\x00\x80?" * 2, (payload,))


def test_nodes_refuse_deep_payloads_that_skipped_the_router(shard: Shard) -> None:
    with pytest.raises(InvalidRequest, match="nested deeper"):
        shard.apply(unchecked_upsert(1, chain(500)))
    shard.apply(unchecked_upsert(1, {"a": 1}))
    for command in (
        SetPayload("c", Selector.of_ids([1]), chain(MAX_PAYLOAD_DEPTH + 1)),
        OverwritePayload("c", Selector.of_ids([1]), chain(MAX_PAYLOAD_DEPTH + 1)),
    ):
        with pytest.raises(InvalidRequest, match="nested deeper"):
            shard.apply(command)
    assert [record.payload for record in shard.get("c", [1])] == [{"a": 1}]


def test_a_point_stored_before_the_bound_can_still_be_changed_and_deleted(
    shard: Shard, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a version without the bound stored (its apply took payloads of any depth)
    monkeypatch.setattr(commands, "MAX_PAYLOAD_DEPTH", 10_000)
    shard.apply(unchecked_upsert(1, chain(200)))
    shard.apply(unchecked_upsert(2, chain(200)))
    monkeypatch.undo()
    shard.apply(OverwritePayload("c", Selector.of_ids([1]), {"fixed": True}))
    assert [record.payload for record in shard.get("c", [1])] == [{"fixed": True}]
    shard.apply(unchecked_upsert(2, {"fixed": True}))  # replaces the deep point
    shard.apply(DeletePoints("c", Selector.of_ids([1, 2])))
    assert shard.count("c") == 0
