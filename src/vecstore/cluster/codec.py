"""The versioned msgpack wire form of commands: `[version, tag, body]`.

Decoding is strict: unknown versions, unknown tags, missing or mistyped fields all
raise MalformedCommand (or UnsupportedVersion) with what was wrong. Nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DeleteVectors,
    DropCollection,
    FenceMoving,
    IngestBatch,
    IngestRecord,
    InstallTopology,
    MigrateIn,
    NamedMulti,
    NamedSparse,
    NamedVectors,
    OverwritePayload,
    PartitionBatch,
    PointCommand,
    PrepareMigration,
    Selector,
    SetPayload,
    SetPayloadIndex,
    UpdateAliases,
    UpdateVectors,
    Upsert,
    check_named_rows,
)
from vecstore.cluster.errors import (
    InvalidRequest,
    MalformedCommand,
    UnsupportedVersion,
)
from vecstore.cluster.filters import filter_to_json, parse_filter
from vecstore.cluster.ids import normalize_point_id
from vecstore.cluster.schema import CollectionSchema
from vecstore.cluster.topology import Topology

CODEC_VERSION = 1

Body = dict[str, Any]
T = TypeVar("T")


def encode_command(command: Command) -> bytes:
    """Encode a command to bytes."""
    tag, body = _to_body(command)
    packed: bytes = msgpack.packb([CODEC_VERSION, tag, body], use_bin_type=True)
    return packed


TAG_PREFIX_BYTES = 64
ROW_ADDING_TAGS = frozenset({"upsert", "ingest_batch", "migrate_in"})
"""Tags of the commands that may append vectors (held back by indexing backpressure)."""


def command_tag(data: bytes) -> str | None:
    """The tag of encoded command bytes, read from their first items only (None if they
    do not start like a command; `decode_command` then says what is wrong)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data[:TAG_PREFIX_BYTES])  # the array header, the version and a short tag
    try:
        if unpacker.read_array_header() != 3:
            return None
        unpacker.skip()  # the version
        tag = unpacker.unpack()
    except Exception:  # msgpack raises several unrelated exception types
        return None
    return tag if isinstance(tag, str) else None


def decode_command(data: bytes) -> Command:
    """Decode bytes from `encode_command`, or raise MalformedCommand/UnsupportedVersion."""
    try:
        envelope = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as err:  # msgpack raises several unrelated exception types
        raise MalformedCommand(f"command bytes are not valid msgpack: {err}") from None
    if not isinstance(envelope, list) or len(envelope) != 3:
        raise MalformedCommand("command must be a msgpack array [version, tag, body]")
    version, tag, body = envelope
    if isinstance(version, bool) or version != CODEC_VERSION:
        raise UnsupportedVersion(
            f"command codec version {version!r} is not supported; this build reads {CODEC_VERSION}"
        )
    if not isinstance(tag, str) or not isinstance(body, dict):
        raise MalformedCommand("command tag must be a string and body a map")
    return _from_body(tag, body)


def _to_body(command: Command) -> tuple[str, Body]:
    match command:
        case CreateCollection(schema=schema):
            return "create_collection", {"schema": schema.to_dict()}
        case DropCollection(name=name):
            return "drop_collection", {"name": name}
        case UpdateAliases(actions=actions):
            return "update_aliases", {"actions": [list(action) for action in actions]}
        case SetPayloadIndex(collection=collection, key=key, schema=schema):
            return "set_payload_index", {"collection": collection, "key": key, "schema": schema}
        case Upsert():
            upsert: Body = {
                "collection": command.collection,
                "ids": list(command.ids),
                "dimension": command.dimension,
                "vectors": command.vectors,
                "payloads": list(command.payloads),
            }
            if command.named or command.dimension == 0:  # a point of named vectors may have none
                upsert["named"] = _named(command.named)
            if command.sparse:
                upsert["sparse"] = _sparse(command.sparse)
            if command.multi:
                upsert["multi"] = _multi(command.multi)
            return "upsert", upsert
        case UpdateVectors():
            update: Body = {
                "collection": command.collection,
                "ids": list(command.ids),
                "named": _named(command.named),
            }
            if command.sparse:
                update["sparse"] = _sparse(command.sparse)
            if command.multi:
                update["multi"] = _multi(command.multi)
            return "update_vectors", update
        case DeleteVectors():
            return "delete_vectors", {
                "collection": command.collection,
                "selector": _selector(command.selector),
                "names": list(command.names),
            }
        case DeletePoints(collection=collection, selector=selector):
            return "delete_points", {"collection": collection, "selector": _selector(selector)}
        case SetPayload() | OverwritePayload():
            tag = "set_payload" if isinstance(command, SetPayload) else "overwrite_payload"
            return tag, {
                "collection": command.collection,
                "selector": _selector(command.selector),
                "payload": command.payload,
            }
        case DeletePayloadKeys():
            return "delete_payload_keys", {
                "collection": command.collection,
                "selector": _selector(command.selector),
                "keys": list(command.keys),
            }
        case IngestBatch(partitions=partitions):
            return "ingest_batch", {
                "partitions": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "records": [[r.offset, *_to_body(r.command)] for r in p.records],
                    }
                    for p in partitions
                ]
            }
        case InstallTopology(shard_id=shard_id, topology=topology, inherit=inherit):
            body: Body = {"shard_id": shard_id, "topology": topology}
            if inherit:
                body["inherit"] = [list(row) for row in inherit]
            return "install_topology", body
        case PrepareMigration(shard_id=shard_id, current=current, pending=pending):
            return "prepare_migration", {"shard_id": shard_id, "current": current, "pending": pending}
        case FenceMoving(shard_id=shard_id, epoch=epoch):
            return "fence_moving", {"shard_id": shard_id, "epoch": epoch}
        case MigrateIn(command=inner):
            return "migrate_in", {"command": list(_to_body(inner))}
    raise TypeError(f"not a command: {command!r}")  # pragma: no cover - exhaustive above


def _selector(selector: Selector) -> Body:
    if selector.ids is not None:
        return {"ids": list(selector.ids)}
    assert selector.filter is not None
    return {"filter": filter_to_json(selector.filter)}


def _from_body(tag: str, body: Body) -> Command:
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise MalformedCommand(f"unknown command tag {tag!r}")
    try:
        return decoder(body)
    except MalformedCommand:
        raise
    except InvalidRequest as err:
        raise MalformedCommand(f"{tag}: {err.message}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise MalformedCommand(f"{tag}: missing or mistyped field ({err!r})") from None


def _field(body: Body, name: str, kind: type[T]) -> T:
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedCommand(f"field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _decode_selector(raw: object) -> Selector:
    if not isinstance(raw, dict):
        raise MalformedCommand("selector must be a map")
    if "ids" in raw:
        return Selector.of_ids(_field(raw, "ids", list))
    return Selector.of_filter(parse_filter(_field(raw, "filter", dict)))


def _named(parts: tuple[NamedVectors, ...]) -> list[list[Any]]:
    return [[p.name, list(p.rows), p.dimension, p.vectors] for p in parts]


def _multi(parts: tuple[NamedMulti, ...]) -> list[list[Any]]:
    return [[p.name, list(p.rows), list(p.counts), p.dimension, p.vectors] for p in parts]


def _decode_multi(raw: object, points: int) -> tuple[NamedMulti, ...]:
    if not isinstance(raw, list):
        raise MalformedCommand("multivectors must be a list")
    parts = []
    for entry in raw:
        if (
            not isinstance(entry, list)
            or len(entry) != 5
            or not isinstance(entry[0], str)
            or not all(isinstance(x, list) for x in entry[1:3])
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in [*entry[1], *entry[2]])
            or not isinstance(entry[3], int)
            or isinstance(entry[3], bool)
            or not isinstance(entry[4], bytes)
        ):
            raise MalformedCommand("a multivector is [name, rows, counts, dimension, float32 bytes]")
        parts.append(NamedMulti(entry[0], tuple(entry[1]), tuple(entry[2]), entry[3], entry[4]))
    try:
        check_named_rows(parts, points)
    except InvalidRequest as err:
        raise MalformedCommand(err.message) from None
    return tuple(parts)


def _sparse(parts: tuple[NamedSparse, ...]) -> list[list[Any]]:
    return [[p.name, list(p.rows), list(p.offsets), p.indices, p.values] for p in parts]


def _decode_sparse(raw: object, points: int) -> tuple[NamedSparse, ...]:
    if not isinstance(raw, list):
        raise MalformedCommand("sparse vectors must be a list")
    parts = []
    for entry in raw:
        if (
            not isinstance(entry, list)
            or len(entry) != 5
            or not isinstance(entry[0], str)
            or not all(isinstance(x, list) for x in entry[1:3])
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in [*entry[1], *entry[2]])
            or not all(isinstance(x, bytes) for x in entry[3:5])
        ):
            raise MalformedCommand("a sparse vector is [name, rows, offsets, uint32 bytes, float32 bytes]")
        parts.append(NamedSparse(entry[0], tuple(entry[1]), tuple(entry[2]), entry[3], entry[4]))
    try:
        check_named_rows(parts, points)
    except InvalidRequest as err:
        raise MalformedCommand(err.message) from None
    return tuple(parts)


def _decode_named(raw: object, points: int) -> tuple[NamedVectors, ...]:
    if not isinstance(raw, list):
        raise MalformedCommand("named vectors must be a list")
    parts = []
    for entry in raw:
        if (
            not isinstance(entry, list)
            or len(entry) != 4
            or not isinstance(entry[0], str)
            or not isinstance(entry[1], list)
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in entry[1])
            or not isinstance(entry[2], int)
            or isinstance(entry[2], bool)
            or entry[2] < 0
            or not isinstance(entry[3], bytes)
        ):
            raise MalformedCommand("a named vector is [name, rows, dimension, float32 bytes]")
        parts.append(NamedVectors(entry[0], tuple(entry[1]), entry[2], entry[3]))
    try:
        check_named_rows(parts, points)
    except InvalidRequest as err:
        raise MalformedCommand(err.message) from None
    return tuple(parts)


def _decode_aliases(body: Body) -> UpdateAliases:
    actions = _field(body, "actions", list)
    if not all(isinstance(a, list) and len(a) == 3 and all(isinstance(x, str) for x in a) for a in actions):
        raise MalformedCommand("alias actions are [kind, alias, collection or new alias]")
    return UpdateAliases(tuple((a[0], a[1], a[2]) for a in actions))


def _decode_payload_index(body: Body) -> SetPayloadIndex:
    schema = body.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise MalformedCommand("set_payload_index schema must be a map or nil")
    return SetPayloadIndex(_field(body, "collection", str), _field(body, "key", str), schema)


def _decode_upsert(body: Body) -> Upsert:
    ids = tuple(normalize_point_id(i) for i in _field(body, "ids", list))
    dimension = _field(body, "dimension", int)
    vectors = _field(body, "vectors", bytes)
    payloads = _field(body, "payloads", list)
    named = _decode_named(body["named"], len(ids)) if "named" in body else ()
    sparse = _decode_sparse(body["sparse"], len(ids)) if "sparse" in body else ()
    multi = _decode_multi(body["multi"], len(ids)) if "multi" in body else ()
    if dimension < 0 or (dimension == 0 and not {"named", "sparse", "multi"} & set(body)):
        raise MalformedCommand("upsert sizes disagree: ids, vectors and payloads must match")
    if len(vectors) != len(ids) * dimension * 4 or len(payloads) != len(ids):
        raise MalformedCommand("upsert sizes disagree: ids, vectors and payloads must match")
    if not all(isinstance(p, dict) for p in payloads):
        raise MalformedCommand("upsert payloads must be maps")
    return Upsert(
        _field(body, "collection", str), ids, dimension, vectors, tuple(payloads), named, sparse, multi
    )


def _decode_update_vectors(body: Body) -> UpdateVectors:
    ids = tuple(normalize_point_id(i) for i in _field(body, "ids", list))
    sparse = _decode_sparse(body["sparse"], len(ids)) if "sparse" in body else ()
    multi = _decode_multi(body["multi"], len(ids)) if "multi" in body else ()
    named = _decode_named(body.get("named"), len(ids))
    return UpdateVectors(_field(body, "collection", str), ids, named, sparse, multi)


def _decode_delete_vectors(body: Body) -> DeleteVectors:
    names = _field(body, "names", list)
    if not all(isinstance(n, str) for n in names):
        raise MalformedCommand("delete_vectors names must be strings")
    return DeleteVectors(_field(body, "collection", str), _decode_selector(body["selector"]), tuple(names))


def _decode_payload_command(
    kind: type[SetPayload] | type[OverwritePayload],
) -> Callable[[Body], PointCommand]:
    def decode(body: Body) -> PointCommand:
        return kind(
            _field(body, "collection", str),
            _decode_selector(body["selector"]),
            _field(body, "payload", dict),
        )

    return decode


def _decode_delete_keys(body: Body) -> DeletePayloadKeys:
    keys = _field(body, "keys", list)
    if not all(isinstance(k, str) for k in keys):
        raise MalformedCommand("delete_payload_keys keys must be strings")
    return DeletePayloadKeys(_field(body, "collection", str), _decode_selector(body["selector"]), tuple(keys))


def _decode_ingest(body: Body) -> IngestBatch:
    partitions = []
    for raw in _field(body, "partitions", list):
        records = []
        for record in _field(raw, "records", list):
            if not isinstance(record, list) or len(record) != 3:
                raise MalformedCommand("ingest record must be [offset, tag, body]")
            offset, tag, inner = record
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise MalformedCommand(f"ingest offset {offset!r} must be a non-negative integer")
            if tag not in _POINT_TAGS or not isinstance(inner, dict):
                raise MalformedCommand(f"ingest record tag {tag!r} is not a point command")
            command = _from_body(tag, inner)
            assert isinstance(
                command, (Upsert, DeletePoints, SetPayload, OverwritePayload, DeletePayloadKeys)
            )
            records.append(IngestRecord(offset, command))
        partitions.append(
            PartitionBatch(_field(raw, "topic", str), _field(raw, "partition", int), tuple(records))
        )
    return IngestBatch(tuple(partitions))


_POINT_TAGS = {"upsert", "delete_points", "set_payload", "overwrite_payload", "delete_payload_keys"}


def _topology_field(body: Body, name: str) -> dict[str, Any]:
    raw = _field(body, name, dict)
    Topology.from_dict(raw)  # validated here, so a shard never applies a malformed one
    return raw


def _decode_inherit(raw: object) -> tuple[tuple[int, str, int, int], ...]:
    if not isinstance(raw, list):
        raise MalformedCommand("inherit must be a list of [origin, topic, partition, offset]")
    rows = []
    for row in raw:
        if not isinstance(row, list) or len(row) != 4:
            raise MalformedCommand("inherit rows are [origin, topic, partition, offset]")
        origin, topic, partition, offset = row
        if not isinstance(topic, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (origin, partition, offset)
        ):
            raise MalformedCommand("inherit rows are [origin, topic, partition, offset]: ints and a str")
        rows.append((origin, topic, partition, offset))
    return tuple(rows)


def _decode_migrate_in(body: Body) -> MigrateIn:
    inner = _field(body, "command", list)
    if len(inner) != 2 or inner[0] not in ("upsert", "delete_points") or not isinstance(inner[1], dict):
        raise MalformedCommand('migrate_in carries ["upsert" | "delete_points", body]')
    command = _from_body(inner[0], inner[1])
    assert isinstance(command, (Upsert, DeletePoints))
    if isinstance(command, DeletePoints) and command.selector.ids is None:
        raise MalformedCommand("migrate_in deletes name their point ids")
    return MigrateIn(command)


_DECODERS: dict[str, Callable[[Body], Command]] = {
    "create_collection": lambda b: CreateCollection(CollectionSchema.from_dict(b["schema"])),
    "drop_collection": lambda b: DropCollection(_field(b, "name", str)),
    "set_payload_index": _decode_payload_index,
    "update_aliases": _decode_aliases,
    "upsert": _decode_upsert,
    "delete_points": lambda b: DeletePoints(_field(b, "collection", str), _decode_selector(b["selector"])),
    "set_payload": _decode_payload_command(SetPayload),
    "overwrite_payload": _decode_payload_command(OverwritePayload),
    "delete_payload_keys": _decode_delete_keys,
    "update_vectors": _decode_update_vectors,
    "delete_vectors": _decode_delete_vectors,
    "ingest_batch": _decode_ingest,
    "install_topology": lambda b: InstallTopology(
        _field(b, "shard_id", int), _topology_field(b, "topology"), _decode_inherit(b.get("inherit", []))
    ),
    "prepare_migration": lambda b: PrepareMigration(
        _field(b, "shard_id", int), _topology_field(b, "current"), _topology_field(b, "pending")
    ),
    "fence_moving": lambda b: FenceMoving(_field(b, "shard_id", int), _field(b, "epoch", int)),
    "migrate_in": _decode_migrate_in,
}
