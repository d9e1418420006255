"""Record value formats beyond JSON and msgpack: Avro and Protobuf.

A format turns a record value into the same map JSON and msgpack values decode to
(`{"collection", "op", "id", "vector", "payload", "keys"}`, absent fields left out), so
everything after decoding (validation, routing, the dead-letter topic) is shared. The
published schemas are beside this file: `record.avsc` (Avro; a producer may write with
its own schema as long as Avro can resolve it against this one) and `record.proto`
(Protobuf; the worker builds the same message in code, checked against the file by a test).
"""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import fastavro
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from vecstore.cluster.errors import InvalidRequest

FORMATS = ("auto", "avro", "protobuf")
"""`auto`: JSON or msgpack, told apart by the first byte."""
OPS = ("upsert", "delete", "set_payload", "overwrite_payload", "delete_payload")


class FormatError(ValueError):
    """A value that its format cannot decode (the caller sends the record to the dead-letter
    topic as a malformed record)."""


class ValueFormat(Protocol):
    """Decodes a record value to its field map, or raises FormatError."""

    name: str

    def decode(self, value: bytes) -> dict[str, Any]: ...

    def encode(self, body: dict[str, Any]) -> bytes: ...


def published_schema(filename: str) -> str:
    """The text of a published schema file (`record.avsc`, `record.proto`)."""
    return resources.files(__package__).joinpath(filename).read_text()


def _payload_of(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(f"record payload is not JSON text: {err}") from None
    if not isinstance(payload, dict):
        raise FormatError(f"record payload must be a JSON object, got {type(payload).__name__}")
    return payload


def _id_of(value: object) -> object:
    """Digits in a string id are a number (ids beyond a signed 64-bit long travel as text)."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


class AvroFormat:
    """Avro binary values (no container header, no registry prefix), written with
    `writer_schema` (default: the published one) and read as the published schema."""

    name = "avro"

    def __init__(self, writer_schema: Path | None = None) -> None:
        reader = json.loads(published_schema("record.avsc"))
        try:
            writer = reader if writer_schema is None else json.loads(Path(writer_schema).read_text())
            self._writer = fastavro.parse_schema(writer)
        except (OSError, ValueError, fastavro.schema.SchemaParseException) as err:
            raise InvalidRequest(f"Avro schema {writer_schema}: {err}") from None
        self._reader = fastavro.parse_schema(reader)

    def decode(self, value: bytes) -> dict[str, Any]:
        try:
            record = fastavro.schemaless_reader(io.BytesIO(value), self._writer, self._reader)
        except Exception as err:  # fastavro raises many unrelated types on bad input
            raise FormatError(f"record value is not Avro of the configured schema: {err!r}") from None
        if not isinstance(record, dict):
            raise FormatError("record value must be an Avro record")
        body = {k: v for k, v in record.items() if v is not None}
        if "payload" in body:
            body["payload"] = _payload_of(body["payload"])
        if "id" in body:
            body["id"] = _id_of(body["id"])
        return body

    def encode(self, body: dict[str, Any]) -> bytes:
        record = dict(body)
        if record.get("payload") is not None:
            record["payload"] = json.dumps(record["payload"], separators=(",", ":"))
        point_id = record.get("id")
        if isinstance(point_id, int) and point_id >= 2**63:
            record["id"] = str(point_id)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self._writer, record)
        return out.getvalue()


def record_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """`record.proto` as a descriptor, built in code (no protoc needed at run time)."""
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="vecstore/ingest/v1/record.proto", package="vecstore.ingest.v1", syntax="proto3"
    )
    op = file.enum_type.add(name="Op")
    for number, symbol in enumerate(("OP_UNSPECIFIED", *(o.upper() for o in OPS))):
        op.value.add(name=symbol, number=number)
    record = file.message_type.add(name="Record")
    record.oneof_decl.add(name="id")
    record.oneof_decl.add(name="_payload")
    fields: tuple[tuple[str, int, int, int, dict[str, Any]], ...] = (
        ("collection", 1, field.TYPE_STRING, field.LABEL_OPTIONAL, {}),
        ("op", 2, field.TYPE_ENUM, field.LABEL_OPTIONAL, {"type_name": ".vecstore.ingest.v1.Op"}),
        ("num_id", 3, field.TYPE_UINT64, field.LABEL_OPTIONAL, {"oneof_index": 0}),
        ("uuid_id", 4, field.TYPE_STRING, field.LABEL_OPTIONAL, {"oneof_index": 0}),
        ("vector", 5, field.TYPE_FLOAT, field.LABEL_REPEATED, {}),
        ("payload", 6, field.TYPE_STRING, field.LABEL_OPTIONAL, {"oneof_index": 1, "proto3_optional": True}),
        ("keys", 7, field.TYPE_STRING, field.LABEL_REPEATED, {}),
    )
    for name, number, kind, label, extra in fields:
        json_name = "".join(part if i == 0 else part.title() for i, part in enumerate(name.split("_")))
        record.field.add(name=name, number=number, type=kind, label=label, json_name=json_name, **extra)
    return file


def _record_class() -> type[message.Message]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(record_descriptor())
    record: type[message.Message] = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("vecstore.ingest.v1.Record")
    )
    return record


class ProtobufFormat:
    """Protobuf values of `vecstore.ingest.v1.Record` (`record.proto`)."""

    name = "protobuf"

    def __init__(self) -> None:
        self.Record: Any = _record_class()

    def decode(self, value: bytes) -> dict[str, Any]:
        record: Any = self.Record()
        try:
            record.ParseFromString(value)
        except message.DecodeError as err:
            raise FormatError(f"record value is not a Protobuf vecstore.ingest.v1.Record: {err}") from None
        if not 0 < record.op <= len(OPS):
            raise FormatError(f"record op {record.op} is not one of 1..{len(OPS)} ({', '.join(OPS)})")
        body: dict[str, Any] = {"collection": record.collection, "op": OPS[record.op - 1]}
        which = record.WhichOneof("id")
        if which is not None:
            body["id"] = getattr(record, which)
        if len(record.vector):
            body["vector"] = np.asarray(record.vector, dtype="<f4").tobytes()
        if record.HasField("payload"):
            body["payload"] = _payload_of(record.payload)
        if len(record.keys) or body["op"] == "delete_payload":  # an empty repeated field is absent
            body["keys"] = list(record.keys)
        return body

    def encode(self, body: dict[str, Any]) -> bytes:
        record: Any = self.Record()
        record.collection = body["collection"]
        record.op = OPS.index(body["op"]) + 1
        point_id = body.get("id")
        if isinstance(point_id, int):
            record.num_id = point_id
        elif point_id is not None:
            record.uuid_id = str(point_id)
        vector = body.get("vector")
        if vector is not None:
            floats = np.frombuffer(vector, dtype="<f4") if isinstance(vector, bytes) else vector
            record.vector.extend(np.asarray(floats, dtype=np.float32).tolist())
        if body.get("payload") is not None:
            record.payload = json.dumps(body["payload"], separators=(",", ":"))
        if body.get("keys") is not None:
            record.keys.extend(body["keys"])
        encoded: bytes = record.SerializeToString()
        return encoded


def value_format_named(name: str, avro_schema: Path | None = None) -> ValueFormat | None:
    """The format called `name` (None for `auto`: JSON or msgpack)."""
    if name == "auto":
        return None
    if name == "avro":
        return AvroFormat(avro_schema)
    if name == "protobuf":
        return ProtobufFormat()
    raise InvalidRequest(f"value format {name!r} is not one of {', '.join(FORMATS)}")
