"""RPC frames and route tables: pure logic (the transport is tested against real servers
in tests/integration/test_node_rpc.py and test_router_rpc.py)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.errors import InvalidRequest
from vecstore.transport.rpc import (
    PathTemplate,
    RouteTable,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    new_request,
)

bodies = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.integers(0, 2**63), st.sampled_from(["GET", "POST", "PUT"]), st.text(), bodies | st.binary())
def test_request_frames_round_trip(request_id: int, method: str, path: str, body: object) -> None:
    assert decode_request(encode_request(request_id, method, path, body)) == (request_id, method, path, body)


@given(st.integers(0, 2**63), st.integers(100, 599), bodies)
def test_response_frames_round_trip(request_id: int, status: int, body: object) -> None:
    assert decode_response(encode_response(request_id, status, body)) == (request_id, status, body)


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",
        msgpack.packb({"not": "a list"}),
        msgpack.packb([1, "POST", "/x"]),
        msgpack.packb(["1", "POST", "/x", None]),
        msgpack.packb([1, 2, "/x", None]),
    ],
)
def test_malformed_request_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(ValueError, match="RPC frame"):
        decode_request(frame)


def test_a_body_msgpack_cannot_carry_is_an_invalid_request_before_anything_is_sent() -> None:
    with pytest.raises(InvalidRequest, match="outside"):
        new_request("POST", "/v1/x", {"vectors": [[2**70]]})
    first, _ = new_request("GET", "/v1/status", None)
    second, _ = new_request("GET", "/v1/status", None)
    assert second > first


def test_path_templates_match_whole_paths_and_decode_parameters() -> None:
    template = PathTemplate("/v1/collections/{name}/points/get")
    assert template.match("/v1/collections/docs/points/get") == {"name": "docs"}
    assert template.match("/v1/collections/my%2Dcoll/points/get") == {"name": "my-coll"}
    assert template.match("/v1/collections/docs/points/get/extra") is None
    assert template.match("/v1/collections//points/get") is None
    assert template.match("/v1/collections/a/b/points/get") is None


def test_route_tables_find_by_method_and_path_and_label_for_metrics() -> None:
    table = RouteTable(
        [
            ("POST", "/v1/collections/{name}/search", "search"),
            ("PUT", "/v1/collections/{name}/points/payload", "overwrite"),
            ("POST", "/v1/collections/{name}/points/payload", "merge"),
        ]
    )
    for _ in range(2):  # the second lookup comes from the cache and must not share state
        found = table.find("POST", "/v1/collections/a/search")
        assert found == ("search", {"name": "a"})
        assert found is not None
        found[1]["name"] = "changed by the caller"
    assert table.find("PUT", "/v1/collections/a/points/payload") == ("overwrite", {"name": "a"})
    assert table.find("POST", "/v1/collections/a/points/payload") == ("merge", {"name": "a"})
    assert table.find("GET", "/v1/collections/a/search") is None
    assert table.find("POST", "/v1/nothing") is None
    assert table.label("/v1/collections/zz/search") == "/v1/collections/{name}/search"
    assert table.label("/v1/nothing") == "unmatched"
