"""The nesting bound: an iterative walk agreeing with the obvious recursive definition."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.commands import validate_payload
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.nesting import MAX_PAYLOAD_DEPTH, depth_exceeds
from vecstore.cluster.spec import SpecError, parse_spec
from vecstore.transport.wire import decode_body

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
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_payloads_at_the_bound_pass_and_deeper_ones_are_refused() -> None:
    assert validate_payload(chain(MAX_PAYLOAD_DEPTH)) == chain(MAX_PAYLOAD_DEPTH)
    with pytest.raises(InvalidRequest, match="nested deeper than 32"):
        validate_payload(chain(MAX_PAYLOAD_DEPTH + 1))


def test_a_walk_of_a_huge_chain_does_not_recurse() -> None:
    assert depth_exceeds(chain(50_000), 100)


@pytest.mark.parametrize("kind", ["application/json", "application/msgpack"])
def test_deep_bodies_are_invalid_requests(kind: str) -> None:
    deep = b"[" * 5_000 + b"]" * 5_000 if kind == "application/json" else b"\x91" * 5_000 + b"\xc0"
    with pytest.raises(InvalidRequest):
        decode_body(b'{"a":' + deep + b"}" if kind == "application/json" else b"\x81\xa1a" + deep, kind)


def test_cors_origins_parse_as_a_list_of_strings() -> None:
    shards = [{"id": 0, "nodes": [{"id": "n", "raft": "127.0.0.1:1", "http": "127.0.0.1:2"}]}]
    spec = parse_spec({"shards": shards, "router": {"cors_origins": ["https://a.example"]}})
    assert spec.router.cors_origins == ("https://a.example",)
    assert parse_spec(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="list of strings"):
        parse_spec({"shards": shards, "router": {"cors_origins": "https://a.example"}})
