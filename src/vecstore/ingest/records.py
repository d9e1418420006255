"""The ingest record format: one Kafka record in, one point command (or why not) out.

Pure: encoding, decoding and validation against the schemas the caller passes. It
never talks to Kafka or to a node, and the same bytes and schemas always give the same
answer, so a replayed record is judged exactly as it was the first time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from vecstore.cluster.commands import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DeletePayloadKeys,
    DeletePoints,
    OverwritePayload,
    PointCommand,
    Selector,
    SetPayload,
    Upsert,
    as_vector_matrix,
    validate_payload,
)
from vecstore.cluster.errors import CollectionNotFound, InvalidRequest, InvalidVector, VecStoreError
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.schema import CollectionSchema
from vecstore.ingest.formats import FormatError, ValueFormat, value_format_named

OPS = ("upsert", "delete", "set_payload", "overwrite_payload", "delete_payload")
"""The `op` values a record may carry."""

_FIELDS_OF_OP: dict[str, frozenset[str]] = {
    "upsert": frozenset({"vector", "payload"}),
    "delete": frozenset(),
    "set_payload": frozenset({"payload"}),
    "overwrite_payload": frozenset({"payload"}),
    "delete_payload": frozenset({"keys"}),
}
_COMMON_FIELDS = frozenset({"collection", "op", "id"})


class MalformedRecord(InvalidRequest):
    """A record whose key or value does not decode to `{collection, op, id, ...}`."""

    code = "malformed_record"


@dataclass(frozen=True)
class RecordFields:
    """A decoded record value, before it is checked against its collection."""

    collection: str
    """The target collection's name."""
    op: str
    """One of OPS."""
    point_id: PointId
    """The normalised point id (from the value's `id`, else from the key)."""
    body: dict[str, Any]
    """The whole decoded value (op-specific fields: vector, payload, keys)."""


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused: an error code and a message saying what was expected."""

    code: str
    """The error code (`invalid_vector`, `collection_not_found`, `malformed_record`, ...)."""
    reason: str
    """What was wrong and what was expected."""
    collection: str | None = None
    """The collection the record named, when its value decoded that far."""


def decode_record(
    key: bytes | None,
    value: bytes | None,
    schemas: Mapping[str, CollectionSchema],
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    value_format: ValueFormat | None = None,
) -> PointCommand | Rejection:
    """The point command a record carries, or the Rejection that sends it to the DLQ.
    `value_format`: Avro or Protobuf values (None: JSON or msgpack, by the first byte)."""
    try:
        fields = parse_value(key, value, value_format)
    except VecStoreError as err:
        return Rejection(err.code, err.message)
    try:
        schema = schemas.get(fields.collection)
        if schema is None:
            raise CollectionNotFound(fields.collection)
        return build_command(fields, schema, max_payload_bytes=max_payload_bytes)
    except VecStoreError as err:
        return Rejection(err.code, err.message, fields.collection)


def parse_value(
    key: bytes | None, value: bytes | None, value_format: ValueFormat | None = None
) -> RecordFields:
    """Decode the key and the value (msgpack or JSON, or `value_format`); raise
    MalformedRecord (or an id error)."""
    if value_format is None:
        body = _decode_value(value)
    elif not value:
        raise MalformedRecord("record has no value")
    else:
        try:
            body = value_format.decode(value)
        except FormatError as err:
            raise MalformedRecord(str(err)) from None
    collection = body.get("collection")
    if not isinstance(collection, str) or not collection:
        raise MalformedRecord("record value needs a 'collection' string")
    op = body.get("op")
    if op not in _FIELDS_OF_OP:
        raise MalformedRecord(f"record op {op!r} is not one of {', '.join(OPS)}")
    unknown = set(body) - _COMMON_FIELDS - _FIELDS_OF_OP[op]
    if unknown:
        raise MalformedRecord(f"record fields {sorted(unknown)} are not used by op {op!r}")
    return RecordFields(collection, op, _point_id(key, body.get("id")), body)


def build_command(
    fields: RecordFields,
    schema: CollectionSchema,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> PointCommand:
    """The point command for decoded fields, validated against the collection's schema."""
    selector = Selector(ids=(fields.point_id,))
    body = fields.body
    match fields.op:
        case "upsert":
            vector = _vector(body, schema)
            payload = body.get("payload")
            return Upsert(
                schema.name,
                (fields.point_id,),
                schema.dimension,
                vector,
                (validate_payload({} if payload is None else payload, max_payload_bytes),),
            )
        case "delete":
            return DeletePoints(schema.name, selector)
        case "set_payload" | "overwrite_payload":
            if "payload" not in body:
                raise MalformedRecord(f"op {fields.op!r} needs a 'payload' object")
            payload = validate_payload(body["payload"], max_payload_bytes)
            kind = SetPayload if fields.op == "set_payload" else OverwritePayload
            return kind(schema.name, selector, payload)
        case _:
            keys = body.get("keys")
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise MalformedRecord("op 'delete_payload' needs 'keys', a list of strings")
            return DeletePayloadKeys(schema.name, selector, tuple(keys))


def encode_record(
    collection: str,
    op: str,
    point_id: PointId,
    *,
    vector: Sequence[float] | npt.NDArray[np.floating[Any]] | None = None,
    payload: Mapping[str, Any] | None = None,
    keys: Sequence[str] | None = None,
    value_format: str | ValueFormat = "msgpack",
) -> tuple[bytes, bytes]:
    """The (key, value) of one record: `value_format` msgpack (the vector as float32 bytes),
    json, avro, protobuf, or a ValueFormat (Avro with a schema of one's own)."""
    if op not in _FIELDS_OF_OP:
        raise ValueError(f"op {op!r} is not one of {', '.join(OPS)}")
    body: dict[str, Any] = {"collection": collection, "op": op, "id": point_id}
    if vector is not None:
        array = np.asarray(vector, dtype="<f4").reshape(-1)
        body["vector"] = array.tolist() if value_format == "json" else array.tobytes()
    if payload is not None:
        body["payload"] = dict(payload)
    if keys is not None:
        body["keys"] = list(keys)
    if value_format == "msgpack":
        value: bytes = msgpack.packb(body, use_bin_type=True)
    elif value_format == "json":
        value = json.dumps(body, separators=(",", ":")).encode()
    elif isinstance(value_format, str):
        value = _published_format(value_format).encode(body)
    else:
        value = value_format.encode(body)
    return str(point_id).encode(), value


@functools.cache
def _published_format(name: str) -> ValueFormat:
    if name not in ("avro", "protobuf"):
        raise ValueError(f"value_format {name!r} must be msgpack, json, avro or protobuf")
    chosen = value_format_named(name)
    assert chosen is not None
    return chosen


def _decode_value(value: bytes | None) -> dict[str, Any]:
    if not value:
        raise MalformedRecord("record has no value")
    # a JSON object starts with '{' (0x7b); in msgpack that byte is the integer 123, never a map
    first = value[:1]
    is_json = first == b"{" or (first.isspace() and value.lstrip()[:1] == b"{")
    try:
        body = json.loads(value) if is_json else msgpack.unpackb(value, raw=False, strict_map_key=True)
    except Exception as err:  # json and msgpack raise several unrelated exception types
        kind = "JSON" if is_json else "msgpack"
        raise MalformedRecord(f"record value is neither a JSON object nor valid {kind}: {err}") from None
    if not isinstance(body, dict):
        raise MalformedRecord(f"record value must be a map, got {type(body).__name__}")
    return body


def _point_id(key: bytes | None, value_id: object) -> PointId:
    from_key = _id_of_key(key) if key else None
    if value_id is None:
        if from_key is None:
            raise MalformedRecord("record has no point id: set the key or the value's 'id'")
        return from_key
    point_id = normalize_point_id(value_id)
    if from_key is not None and from_key != point_id:
        raise MalformedRecord(f"record key names point {from_key!r} but its value names {point_id!r}")
    return point_id


def _id_of_key(key: bytes) -> PointId:
    try:
        text = key.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedRecord("record key must be a point id in ASCII (digits or a UUID)") from None
    return normalize_point_id(int(text) if text.isdigit() else text)


def _vector(body: dict[str, Any], schema: CollectionSchema) -> bytes:
    raw = body.get("vector")
    if raw is None:
        raise MalformedRecord("op 'upsert' needs a 'vector'")
    if isinstance(raw, bytes):
        # msgpack producers may send the vector as little-endian float32 bytes
        if len(raw) % 4:
            raise MalformedRecord(f"vector bytes must be float32 values, got {len(raw)} bytes")
        matrix = as_vector_matrix(np.frombuffer(raw, dtype="<f4"), expected_rows=1)
    elif isinstance(raw, list):
        matrix = as_vector_matrix(raw, expected_rows=1)
    else:
        raise MalformedRecord(f"vector must be a list of numbers, got {type(raw).__name__}")
    if matrix.shape[1] != schema.dimension:
        raise InvalidVector(
            f"vector has {matrix.shape[1]} dimensions, collection {schema.name!r} expects {schema.dimension}"
        )
    return matrix.astype("<f4", copy=False).tobytes()
