"""Binary vectors on the msgpack wire: round trips, and malformed values refused."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vecstore.cluster.errors import InvalidRequest
from vecstore.transport.arrays import (
    ARRAY_EXT,
    as_binary_vectors,
    binary_vectors_wanted,
    ext_hook,
    pack_array,
    unpack_array,
)
from vecstore.transport.rpc import decode_request, encode_request, encode_response
from vecstore.transport.wire import JSON, MSGPACK, decode_body, encode_body

shapes = st.one_of(
    st.tuples(st.integers(0, 64)),
    st.tuples(st.integers(0, 16), st.integers(0, 64)),
)


@given(hnp.arrays(np.float32, shapes, elements=st.floats(width=32, allow_nan=False)))
def test_arrays_round_trip_bit_for_bit(array: np.ndarray) -> None:
    packed = msgpack.packb({"v": array}, default=pack_array)
    back = msgpack.unpackb(packed, ext_hook=ext_hook)["v"]
    assert back.dtype == np.float32
    assert back.shape == array.shape
    assert back.tobytes() == array.tobytes()
    assert not back.flags.writeable


def test_other_dtypes_and_orders_travel_as_float32() -> None:
    array = np.arange(12, dtype=np.float64).reshape(3, 4).T  # Fortran order, float64
    back = unpack_array(pack_array(array).data)
    np.testing.assert_array_equal(back, array.astype(np.float32))
    with pytest.raises(TypeError, match="1- or 2-dimensional"):
        pack_array(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "number of dimensions"),
        (b"\x03", "number of dimensions"),
        (b"\x02\x01\x00\x00\x00", "shorter than its shape"),
        (b"\x01\x02\x00\x00\x00" + b"\x00" * 4, "needs 8 bytes of data, got 4"),
        (b"\x02\xff\xff\xff\xff\xff\xff\xff\xff", "needs"),  # a huge shape is not allocated
    ],
)
def test_malformed_values_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        unpack_array(data)


def test_request_bodies_with_bad_extensions_are_400s() -> None:
    bad = msgpack.packb({"vector": msgpack.ExtType(ARRAY_EXT, b"\x01\x05\x00\x00\x00")})
    with pytest.raises(InvalidRequest, match=r"not valid msgpack.*bytes of data"):
        decode_body(bad, MSGPACK)
    other = msgpack.packb({"vector": msgpack.ExtType(1, b"")})
    with pytest.raises(InvalidRequest, match="unknown msgpack extension type 1"):
        decode_body(other, MSGPACK)
    with pytest.raises(ValueError, match="extension type 1"):
        decode_request(msgpack.packb([1, "POST", "/x", {"v": msgpack.ExtType(1, b"")}]))


def test_frames_and_bodies_carry_arrays_and_json_gets_lists() -> None:
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    _, _, _, body = decode_request(encode_request(4, "POST", "/s", {"vectors": matrix}))
    np.testing.assert_array_equal(body["vectors"], matrix)
    assert decode_body(encode_body({"v": matrix}, MSGPACK), MSGPACK)["v"].shape == (2, 3)
    assert json.loads(encode_body({"v": matrix, "s": np.float32(1.5)}, JSON)) == {
        "v": [[0, 1, 2], [3, 4, 5]],
        "s": 1.5,
    }
    assert msgpack.unpackb(encode_response(1, 200, {"n": np.int64(3)})) == [1, 200, {"n": 3}]


def test_binary_vectors_copy_points_so_shared_answers_stay_lists() -> None:
    shared: list[dict[str, Any]] = [{"id": 1, "vector": [1.0, 2.0]}, {"id": 2, "vector": None}]
    converted = as_binary_vectors(shared)
    assert isinstance(converted[0]["vector"], np.ndarray)
    assert shared[0]["vector"] == [1.0, 2.0]  # the coalesced answer other requests share
    assert converted[1] is shared[1]
    assert binary_vectors_wanted({}) is False
    assert binary_vectors_wanted({"binary_vectors": True}) is True
    with pytest.raises(InvalidRequest, match="true or false"):
        binary_vectors_wanted({"binary_vectors": 1})
