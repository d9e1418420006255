"""The msgpack command codec: exact round trips, and strict rejection of anything else."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest

from vecstore.cluster.codec import CODEC_VERSION, command_tag, decode_command, encode_command
from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DropCollection,
    IngestBatch,
    IngestRecord,
    OverwritePayload,
    PartitionBatch,
    PointCommand,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.errors import MalformedCommand, UnsupportedVersion
from vecstore.cluster.filters import And, Compare, CompareOp, HasId, In, IsEmpty, Not, Or, parse_filter
from vecstore.cluster.schema import CollectionSchema, HnswConfig, Metric, StorageDtype

UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"

RICH_FILTER = And(
    (
        Compare("meta.year", CompareOp.GE, 2001),
        Or((In("tag", ("a", "b")), Not(IsEmpty("author")))),
        HasId(frozenset({1, UUID_TEXT})),
    )
)

UPSERT = Upsert.build(
    "docs",
    [1, UUID_TEXT, 2**64 - 1],
    np.arange(9, dtype=np.float32).reshape(3, 3) / 7,
    [{"a": {"b": [1, "x", None, 2.5, True]}}, {}, {"big": 2**64 - 1, "neg": -(2**63)}],
)

POINT_COMMANDS: list[PointCommand] = [
    UPSERT,
    DeletePoints("docs", Selector.of_ids([3, UUID_TEXT])),
    DeletePoints("docs", Selector.of_filter(RICH_FILTER)),
    SetPayload("docs", Selector.of_ids([1]), {"x": [1, 2], "y": {"z": None}}),
    SetPayload("docs", Selector.of_filter(Compare("n", CompareOp.LT, 3)), {"x": 1}),
    OverwritePayload("docs", Selector.of_ids([UUID_TEXT]), {"only": "this"}),
    OverwritePayload("docs", Selector.of_filter(IsEmpty("gone")), {}),
    DeletePayloadKeys("docs", Selector.of_ids([1, 2]), ("x", "y")),
    DeletePayloadKeys("docs", Selector.of_filter(In("k", (1, 2), negate=True)), ()),
]

COMMANDS: list[Command] = [
    CreateCollection(CollectionSchema("docs", 3)),
    CreateCollection(CollectionSchema("img.v2", 512, Metric.L2, StorageDtype.I8, HnswConfig(32, 200, 100))),
    DropCollection("docs"),
    *POINT_COMMANDS,
    IngestBatch(()),
    IngestBatch(
        (
            PartitionBatch(
                "events",
                0,
                tuple(
                    IngestRecord(offset, command)
                    for offset, command in enumerate(POINT_COMMANDS)
                    if not isinstance(command, (CreateCollection, DropCollection, IngestBatch))
                ),
            ),
            PartitionBatch("events", 3, ()),
            PartitionBatch("other", 1, (IngestRecord(2**40, UPSERT),)),
        )
    ),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_round_trip(command: Command) -> None:
    encoded = encode_command(command)
    assert isinstance(encoded, bytes)
    decoded = decode_command(encoded)
    assert decoded == command
    assert encode_command(decoded) == encoded


def test_envelope_is_version_tag_body() -> None:
    version, tag, body = msgpack.unpackb(encode_command(DropCollection("docs")))
    assert (version, tag, body) == (CODEC_VERSION, "drop_collection", {"name": "docs"})


def test_decoded_upsert_keeps_vectors_bit_exact() -> None:
    decoded = decode_command(encode_command(UPSERT))
    assert isinstance(decoded, Upsert)
    np.testing.assert_array_equal(decoded.matrix(), UPSERT.matrix())


def envelope(tag: object, body: object, version: object = CODEC_VERSION) -> bytes:
    packed: bytes = msgpack.packb([version, tag, body], use_bin_type=True)
    return packed


def upsert_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collection": "docs",
        "ids": [1, 2],
        "dimension": 2,
        "vectors": np.zeros(4, dtype="<f4").tobytes(),
        "payloads": [{}, {}],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def ingest_body(record: object, **partition: Any) -> dict[str, Any]:
    return {"partitions": [{"topic": "t", "partition": 0, "records": [record], **partition}]}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not valid msgpack"),
        (b"\xc1", "not valid msgpack"),
        (envelope("drop_collection", {"name": "docs"})[:-2], "not valid msgpack"),
        (envelope("drop_collection", {"name": "docs"}) + b"\x00", "not valid msgpack"),
        (msgpack.packb({"version": 1}), "must be a msgpack array"),
        (msgpack.packb([1, "drop_collection"]), "must be a msgpack array"),
        (msgpack.packb([1, "drop_collection", {}, 0]), "must be a msgpack array"),
        (msgpack.packb(7), "must be a msgpack array"),
        (envelope(5, {"name": "docs"}), "tag must be a string"),
        (envelope("drop_collection", ["docs"]), "body a map"),
        (envelope("frobnicate", {}), "unknown command tag 'frobnicate'"),
        (envelope("drop_collection", {}), "missing or mistyped field"),
        (envelope("drop_collection", {"name": 5}), "field 'name' must be str"),
        (envelope("create_collection", {"schema": {"name": "c", "dimension": 0}}), "create_collection:"),
        (envelope("create_collection", {"schema": "c"}), "create_collection:"),
        (envelope("upsert", upsert_body(ids="1,2")), "field 'ids' must be list"),
        (envelope("upsert", upsert_body(ids=[1, -2])), "upsert: point id -2"),
        (envelope("upsert", upsert_body(dimension="2")), "field 'dimension' must be int"),
        (envelope("upsert", upsert_body(dimension=True)), "field 'dimension' must be int"),
        (envelope("upsert", upsert_body(vectors=[0.0] * 4)), "field 'vectors' must be bytes"),
        (envelope("upsert", upsert_body(payloads={})), "field 'payloads' must be list"),
        (envelope("upsert", upsert_body(collection=1)), "field 'collection' must be str"),
        (envelope("upsert", upsert_body(vectors=b"\x00" * 12)), "sizes disagree"),
        (envelope("upsert", upsert_body(dimension=4)), "sizes disagree"),
        (envelope("upsert", upsert_body(dimension=0, vectors=b"")), "sizes disagree"),
        (envelope("upsert", upsert_body(payloads=[{}])), "sizes disagree"),
        (envelope("upsert", upsert_body(payloads=[{}, []])), "payloads must be maps"),
        (envelope("upsert", upsert_body(dimension=None)), "missing or mistyped field"),
        (envelope("delete_points", {"collection": "docs"}), "missing or mistyped field"),
        (envelope("delete_points", {"collection": "docs", "selector": [1]}), "selector must be a map"),
        (envelope("delete_points", {"collection": "docs", "selector": {}}), "missing or mistyped field"),
        (envelope("delete_points", {"collection": "docs", "selector": {"ids": 1}}), "must be list"),
        (
            envelope("delete_points", {"collection": "docs", "selector": {"filter": {"must": [{"key": 1}]}}}),
            "delete_points: filter key 1",
        ),
        (
            envelope("set_payload", {"collection": "docs", "selector": {"ids": [1]}, "payload": [1]}),
            "field 'payload' must be dict",
        ),
        (
            envelope("delete_payload_keys", {"collection": "docs", "selector": {"ids": [1]}, "keys": [1]}),
            "keys must be strings",
        ),
        (envelope("ingest_batch", {"partitions": {}}), "field 'partitions' must be list"),
        (envelope("ingest_batch", ingest_body([0, "upsert"])), "must be [offset, tag, body]"),
        (envelope("ingest_batch", ingest_body([-1, "upsert", upsert_body()])), "non-negative integer"),
        (envelope("ingest_batch", ingest_body([True, "upsert", upsert_body()])), "non-negative integer"),
        (envelope("ingest_batch", ingest_body([1.0, "upsert", upsert_body()])), "non-negative integer"),
        (
            envelope("ingest_batch", ingest_body([0, "drop_collection", {"name": "docs"}])),
            "is not a point command",
        ),
        (envelope("ingest_batch", ingest_body([0, "upsert", []])), "is not a point command"),
        (envelope("ingest_batch", ingest_body([0, "upsert", upsert_body(dimension=3)])), "sizes disagree"),
        (envelope("ingest_batch", ingest_body([0, "upsert", upsert_body()], topic=9)), "'topic' must be str"),
        (
            envelope("ingest_batch", ingest_body([0, "upsert", upsert_body()], partition="0")),
            "'partition' must be int",
        ),
    ],
)
def test_malformed_bytes_raise_malformed_command(data: bytes, fragment: str) -> None:
    with pytest.raises(MalformedCommand) as caught:
        decode_command(data)
    assert not isinstance(caught.value, UnsupportedVersion)
    assert fragment in caught.value.message
    assert caught.value.http_status == 400


@pytest.mark.parametrize("version", [0, 2, 99, "1", None, -1])
def test_unknown_versions_raise_unsupported_version(version: object) -> None:
    with pytest.raises(UnsupportedVersion) as caught:
        decode_command(envelope("drop_collection", {"name": "docs"}, version=version))
    assert isinstance(caught.value, MalformedCommand)
    assert f"version {version!r} is not supported" in caught.value.message


def test_non_string_map_keys_are_rejected() -> None:
    data = msgpack.packb([CODEC_VERSION, "drop_collection", {1: "docs"}])
    with pytest.raises(MalformedCommand):
        decode_command(data)


def test_selector_filter_survives_the_wire_as_json() -> None:
    condition = parse_filter({"must": [{"key": "a", "range": {"gt": 1, "lt": 4}}]})
    decoded = decode_command(encode_command(DeletePoints("docs", Selector.of_filter(condition))))
    assert isinstance(decoded, DeletePoints)
    assert decoded.selector.filter == condition
    assert decoded.selector.ids is None


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_command_tag_reads_the_tag_from_the_first_bytes(command: Command) -> None:
    data = encode_command(command)
    assert command_tag(data) == msgpack.unpackb(data)[1]


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x93", msgpack.packb([1, 2, {}]), msgpack.packb({"a": 1}), b"\xc1" * 80]
)
def test_command_tag_of_bytes_that_are_no_command_is_none(data: bytes) -> None:
    assert command_tag(data) is None
