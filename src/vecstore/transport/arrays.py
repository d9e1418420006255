"""Vectors as raw float32 on the msgpack wire, so no side builds a Python float per element.

A msgpack extension value of type `ARRAY_EXT` (0x56, "V") carries one C-ordered float32
array of 1 or 2 dimensions:

    ndim (1 byte: 1 or 2) | shape (ndim x uint32, little-endian) | data (little-endian float32)

It may stand wherever the native API takes a vector or a list of vectors (msgpack bodies and
`/v1/rpc` frames): a whole upsert's `vectors` is one value. Answers carry vectors this way
only when the request asks (`"binary_vectors": true`); JSON answers always carry lists.
Decoding never copies: the array is a read-only view of the received bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import numpy as np

from vecstore.cluster.errors import InvalidRequest

ARRAY_EXT = 0x56
_FLOAT32_LE = np.dtype("<f4")
_NDIM = struct.Struct("<B")
_DIMENSION = struct.Struct("<I")


def pack_array(array: np.ndarray[Any, Any]) -> msgpack.ExtType:
    """An array of 1 or 2 dimensions as an extension value (converted to float32)."""
    if array.ndim not in (1, 2):
        raise TypeError(f"only 1- or 2-dimensional arrays travel as vectors, got {array.ndim}")
    data = np.ascontiguousarray(array, dtype=_FLOAT32_LE)
    header = _NDIM.pack(data.ndim) + b"".join(_DIMENSION.pack(n) for n in data.shape)
    return msgpack.ExtType(ARRAY_EXT, header + data.tobytes())


def unpack_array(data: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The array an extension value carries (a read-only view); ValueError if malformed."""
    if not data or data[0] not in (1, 2):
        raise ValueError("a vector extension value must start with its number of dimensions, 1 or 2")
    ndim = data[0]
    start = 1 + ndim * _DIMENSION.size
    if len(data) < start:
        raise ValueError("a vector extension value is shorter than its shape")
    shape = tuple(_DIMENSION.unpack_from(data, 1 + i * _DIMENSION.size)[0] for i in range(ndim))
    expected = _FLOAT32_LE.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(data) - start != expected:
        raise ValueError(
            f"a vector extension value of shape {shape} needs {expected} bytes of data, "
            f"got {len(data) - start}"
        )
    array: np.ndarray[Any, np.dtype[np.float32]] = np.frombuffer(data, dtype=_FLOAT32_LE, offset=start)
    return array.reshape(shape)


def ext_hook(code: int, data: bytes) -> Any:
    """msgpack's `ext_hook`: vector values become arrays; any other extension is refused."""
    if code != ARRAY_EXT:
        raise ValueError(f"unknown msgpack extension type {code}")
    return unpack_array(data)


def msgpack_default(value: Any) -> Any:
    """msgpack's `default`: arrays travel as vector values, numpy scalars as numbers."""
    if isinstance(value, np.ndarray):
        return pack_array(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, int):  # msgpack asks about integers beyond 64 bits: keep its error
        raise OverflowError("integer out of range for msgpack")
    raise TypeError(f"cannot encode {type(value).__name__} as msgpack")


def json_default(value: Any) -> Any:
    """`json.dumps`'s `default`: arrays (and numpy scalars) as lists and numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def as_binary_vectors(points: list[dict[str, Any]], key: str = "vector") -> list[dict[str, Any]]:
    """Copies of answers' points (or hits) with each list `key` as a float32 array, for a
    request that asked `binary_vectors`: the encoder then sends raw float32. Copies, because
    concurrent identical searches share one answer."""
    return [
        {**point, key: np.asarray(point[key], dtype=np.float32)}
        if isinstance(point.get(key), list)
        else point
        for point in points
    ]


def binary_vectors_wanted(body: dict[str, Any]) -> bool:
    """The request's `binary_vectors` flag (default false)."""
    value = body.get("binary_vectors", False)
    if not isinstance(value, bool):
        raise InvalidRequest(f"binary_vectors must be true or false, got {value!r}")
    return value
