"""The record format: decoding, validation against the schema, and the reasons for refusal."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgpack
import numpy as np
import pytest

from vecstore.cluster.commands import (
    DeletePayloadKeys,
    DeletePoints,
    DeleteVectors,
    OverwritePayload,
    SetPayload,
    UpdateVectors,
    Upsert,
)
from vecstore.cluster.schema import CollectionSchema
from vecstore.ingest.records import OPS, Rejection, decode_record, encode_record

SCHEMAS = {"docs": CollectionSchema("docs", 3)}


def doc(text: str) -> bytes:
    """A JSON value for collection 'docs': `text` holds the other fields."""
    return ('{"collection": "docs", ' + text + "}").encode()


def decode(key: bytes | None, value: bytes | None) -> Upsert | DeletePoints | SetPayload | Rejection:
    outcome = decode_record(key, value, SCHEMAS)
    assert isinstance(outcome, (Upsert, DeletePoints, SetPayload, Rejection))
    return outcome


@pytest.mark.parametrize("value_format", ["msgpack", "json"])
def test_an_upsert_round_trips_in_both_formats(value_format: str) -> None:
    key, value = encode_record(
        "docs", "upsert", 7, vector=[1.0, 2.0, 3.0], payload={"a": 1}, value_format=value_format
    )
    assert key == b"7"
    command = decode(key, value)
    assert isinstance(command, Upsert)
    assert command.ids == (7,)
    assert command.payloads == ({"a": 1},)
    assert command.matrix().tolist() == [[1.0, 2.0, 3.0]]


def test_every_op_decodes_to_its_point_command() -> None:
    point = str(uuid.UUID(int=5))
    cases: dict[str, tuple[dict[str, Any], type]] = {
        "upsert": ({"vector": [0.0, 0.0, 1.0]}, Upsert),
        "delete": ({}, DeletePoints),
        "set_payload": ({"payload": {"x": 1}}, SetPayload),
        "overwrite_payload": ({"payload": {"x": 2}}, OverwritePayload),
        "delete_payload": ({"keys": ["x"]}, DeletePayloadKeys),
    }
    assert set(cases) == set(OPS)
    for op, (fields, kind) in cases.items():
        value = json.dumps({"collection": "docs", "op": op, "id": point, **fields}).encode()
        command = decode_record(point.encode(), value, SCHEMAS)
        assert isinstance(command, kind), (op, command)
        assert not isinstance(command, Rejection)
        assert not isinstance(command, (UpdateVectors, DeleteVectors))
        ids = command.ids if isinstance(command, Upsert) else command.selector.ids
        assert ids == (point,)


def test_the_id_may_come_from_the_key_alone() -> None:
    value = msgpack.packb({"collection": "docs", "op": "delete"})
    command = decode(b"42", value)
    assert isinstance(command, DeletePoints)
    assert command.selector.ids == (42,)


def test_msgpack_vectors_may_be_float32_bytes() -> None:
    raw = np.array([0.5, 1.5, 2.5], dtype="<f4").tobytes()
    value = msgpack.packb({"collection": "docs", "op": "upsert", "id": 1, "vector": raw}, use_bin_type=True)
    command = decode(b"1", value)
    assert isinstance(command, Upsert)
    assert command.matrix().tolist() == [[0.5, 1.5, 2.5]]


@pytest.mark.parametrize(
    ("key", "value", "code", "words"),
    [
        (b"1", b"\xc1\xc1", "malformed_record", "msgpack"),
        (b"1", b"{not json", "malformed_record", "JSON"),
        (b"1", None, "malformed_record", "no value"),
        (b"1", msgpack.packb([1, 2]), "malformed_record", "must be a map"),
        (b"1", b'{"op": "delete", "id": 1}', "malformed_record", "collection"),
        (b"1", doc('"op": "merge", "id": 1'), "malformed_record", "merge"),
        (b"1", doc('"op": "upsert", "id": 1'), "malformed_record", "vector"),
        (
            b"1",
            doc('"op": "upsert", "id": 1, "vector": [1, 2]'),
            "invalid_vector",
            "expects 3",
        ),
        (
            b"1",
            doc('"op": "upsert", "id": 1, "vector": [1, 2, NaN]'),
            "invalid_vector",
            "NaN",
        ),
        (
            b"1",
            doc('"op": "upsert", "id": 1, "vector": "abc"'),
            "malformed_record",
            "list",
        ),
        (b"1", b'{"collection": "other", "op": "delete", "id": 1}', "collection_not_found", "other"),
        (b"x", doc('"op": "delete"'), "invalid_point_id", "UUID"),
        (None, doc('"op": "delete"'), "malformed_record", "no point id"),
        (b"1", doc('"op": "delete", "id": -1'), "invalid_point_id", "range"),
        (b"2", doc('"op": "delete", "id": 1'), "malformed_record", "key names point 2"),
        (
            b"1",
            doc('"op": "delete", "id": 1, "vector": [1]'),
            "malformed_record",
            "not used",
        ),
        (b"1", doc('"op": "set_payload", "id": 1'), "malformed_record", "payload"),
        (
            b"1",
            doc('"op": "set_payload", "id": 1, "payload": 3'),
            "invalid_request",
            "object",
        ),
        (
            b"1",
            doc('"op": "delete_payload", "id": 1, "keys": [1]'),
            "malformed_record",
            "keys",
        ),
    ],
)
def test_invalid_records_are_rejected_with_a_reason(
    key: bytes | None, value: bytes | None, code: str, words: str
) -> None:
    outcome = decode(key, value)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code == code
    assert words in outcome.reason


def test_a_rejection_names_the_collection_when_it_got_that_far() -> None:
    outcome = decode(b"1", b'{"collection": "other", "op": "delete", "id": 1}')
    assert outcome == Rejection("collection_not_found", "collection 'other' does not exist", "other")
    assert isinstance(malformed := decode(b"1", b"{"), Rejection)
    assert malformed.collection is None


def test_oversized_payloads_are_rejected() -> None:
    value = json.dumps(
        {"collection": "docs", "op": "set_payload", "id": 1, "payload": {"a": "x" * 100}}
    ).encode()
    outcome = decode_record(b"1", value, SCHEMAS, max_payload_bytes=50)
    assert isinstance(outcome, Rejection)
    assert outcome.code == "payload_too_large"


def test_encoding_refuses_unknown_ops_and_formats() -> None:
    with pytest.raises(ValueError, match="op"):
        encode_record("docs", "merge", 1)
    with pytest.raises(ValueError, match="value_format"):
        encode_record("docs", "delete", 1, value_format="xml")
