"""Avro and Protobuf record values: the same commands as msgpack, bad values rejected,
the Protobuf message built in code equal to the published record.proto."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.commands import DEFAULT_MAX_PAYLOAD_BYTES
from vecstore.cluster.schema import CollectionSchema
from vecstore.ingest.formats import (
    AvroFormat,
    ProtobufFormat,
    ValueFormat,
    published_schema,
    record_descriptor,
    value_format_named,
)
from vecstore.ingest.records import Rejection, decode_record, encode_record, parse_value
from vecstore.ingest.settings import SettingsError, WorkerSettings

DIM = 4
SCHEMAS = {"docs": CollectionSchema("docs", DIM)}
FORMATS: dict[str, ValueFormat] = {"avro": AvroFormat(), "protobuf": ProtobufFormat()}

ids = st.one_of(st.integers(0, 2**64 - 1), st.uuids().map(str))
payloads = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.booleans(), st.none()),
    max_size=4,
)
records = st.one_of(
    st.tuples(
        st.just("upsert"),
        ids,
        st.lists(st.floats(-1e6, 1e6, width=32), min_size=DIM, max_size=DIM),
        payloads,
        st.none(),
    ),
    st.tuples(st.just("delete"), ids, st.none(), st.none(), st.none()),
    st.tuples(st.sampled_from(["set_payload", "overwrite_payload"]), ids, st.none(), payloads, st.none()),
    st.tuples(
        st.just("delete_payload"), ids, st.none(), st.none(), st.lists(st.text(max_size=5), max_size=3)
    ),
)


@pytest.mark.parametrize("name", sorted(FORMATS))
@given(record=records)
def test_every_record_decodes_to_the_same_command_as_msgpack(name: str, record: tuple[Any, ...]) -> None:
    op, point_id, vector, payload, keys = record
    fields = {"vector": vector, "payload": payload, "keys": keys}
    expected = decode_record(*encode_record("docs", op, point_id, **fields), SCHEMAS)
    key, value = encode_record("docs", op, point_id, value_format=name, **fields)
    assert decode_record(key, value, SCHEMAS, value_format=FORMATS[name]) == expected
    assert not isinstance(expected, Rejection)


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("value", [b"\x00", b"\xff" * 9, b"\x02\x06abc\x99"])
def test_undecodable_values_are_malformed_records(name: str, value: bytes) -> None:
    outcome = decode_record(b"1", value, SCHEMAS, value_format=FORMATS[name])
    assert isinstance(outcome, Rejection)
    assert outcome.code == "malformed_record"


def test_empty_values_and_bad_payload_text_are_rejected() -> None:
    for fmt in FORMATS.values():
        outcome = decode_record(b"1", b"", SCHEMAS, value_format=fmt)
        assert isinstance(outcome, Rejection) and "no value" in outcome.reason
    record: Any = ProtobufFormat().Record()
    record.collection, record.op, record.num_id, record.payload = "docs", 3, 1, "[1, 2]"
    outcome = decode_record(b"1", record.SerializeToString(), SCHEMAS, value_format=FORMATS["protobuf"])
    assert isinstance(outcome, Rejection) and "must be a JSON object" in outcome.reason
    record.op = 0  # OP_UNSPECIFIED: what a producer that forgot the op sends
    outcome = decode_record(b"1", record.SerializeToString(), SCHEMAS, value_format=FORMATS["protobuf"])
    assert isinstance(outcome, Rejection) and "op 0" in outcome.reason


def test_a_wrong_dimension_is_an_invalid_vector_as_in_every_format() -> None:
    for name, fmt in FORMATS.items():
        key, value = encode_record("docs", "upsert", 1, vector=[1.0, 2.0], value_format=name)
        outcome = decode_record(key, value, SCHEMAS, value_format=fmt)
        assert isinstance(outcome, Rejection) and outcome.code == "invalid_vector"


def test_avro_with_a_writer_schema_of_ones_own(tmp_path: Path) -> None:
    schema = json.loads(published_schema("record.avsc"))
    schema["fields"].insert(0, {"name": "trace", "type": "string"})
    path = tmp_path / "mine.avsc"
    path.write_text(json.dumps(schema))
    mine = AvroFormat(path)
    raw = mine.encode({"collection": "docs", "op": "delete", "id": 7, "trace": "t-1"})
    assert parse_value(b"7", raw, mine).body == {"collection": "docs", "op": "delete", "id": 7}
    # read with the published schema, these bytes mean something else: rejected, not misapplied
    assert isinstance(decode_record(b"7", raw, SCHEMAS, value_format=FORMATS["avro"]), Rejection)
    path.write_text("{not json")
    with pytest.raises(Exception, match="Avro schema"):
        AvroFormat(path)


def test_protobuf_descriptor_matches_the_published_proto(tmp_path: Path) -> None:
    proto = tmp_path / "vecstore" / "ingest" / "v1" / "record.proto"
    proto.parent.mkdir(parents=True)
    proto.write_text(published_schema("record.proto"))
    out = tmp_path / "record.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{tmp_path}",
            f"--descriptor_set_out={out}",
            str(proto),
        ],
        check=True,
    )
    compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    built = record_descriptor()
    for descriptor in (compiled, built):
        for field in descriptor.message_type[0].field:
            field.ClearField("json_name")  # protoc fills it only with --include_source_info
    assert built == compiled


def test_settings_and_names() -> None:
    base = {"bootstrap": "b:9092", "topics": "t", "group": "g"}
    assert WorkerSettings.from_sources({**base, "value_format": "avro"}, {}).value_format == "avro"
    with pytest.raises(SettingsError, match="value_format must be one of"):
        WorkerSettings.from_sources({**base, "value_format": "xml"}, {})
    with pytest.raises(SettingsError, match="avro_schema is for value_format avro"):
        WorkerSettings.from_sources({**base, "avro_schema": "s.avsc"}, {})
    assert value_format_named("auto") is None
    with pytest.raises(ValueError, match="must be msgpack, json, avro or protobuf"):
        encode_record("docs", "delete", 1, value_format="xml")
    assert DEFAULT_MAX_PAYLOAD_BYTES > 0


def test_protobuf_vectors_are_float32() -> None:
    vector = np.array([0.1, 0.2, 0.3, 0.4])
    key, value = encode_record("docs", "upsert", 1, vector=vector, value_format="protobuf")
    body = parse_value(key, value, FORMATS["protobuf"]).body
    assert np.frombuffer(body["vector"], dtype="<f4").tolist() == vector.astype(np.float32).tolist()
