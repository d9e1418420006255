"""Avro and Protobuf record values end to end: a real broker, a real worker, a real 2 x 3
cluster. Good records are applied; records their format cannot decode, or that decode to
something invalid, go to the dead-letter topic with the same codes as JSON and msgpack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kafka.harness import Workers, create_collection, new_topic, send, unique, wait_applied
from tests.integration.test_ingest import read_topic, router_post, vector
from vecstore.ingest.dlq import HEADER_CODE
from vecstore.ingest.formats import AvroFormat, ProtobufFormat, ValueFormat, published_schema
from vecstore.ingest.records import encode_record
from vecstore.launcher.local_cluster import LocalCluster

DIM = 8


def producer_schema(directory: Path) -> Path:
    """A producer's own Avro schema: the published one plus a field the worker does not know
    (`source`), fields in another order. Avro resolves it against the published schema."""
    schema = json.loads(published_schema("record.avsc"))
    schema["fields"] = [
        *reversed(schema["fields"]),
        {"name": "source", "type": "string", "default": "app"},
    ]
    path = directory / "producer.avsc"
    path.write_text(json.dumps(schema))
    return path


@pytest.mark.parametrize("name", ["avro", "protobuf"])
async def test_records_of_the_format_are_applied_and_bad_ones_dead_lettered(
    name: str, ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers, tmp_path: Path
) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=1)
    dlq_topic = await new_topic(kafka_bootstrap, "dlq", partitions=1)
    collection = unique(name)
    await create_collection(ingest_cluster, collection, DIM)
    extra: list[str] = ["--value-format", name]
    encoding: ValueFormat
    if name == "avro":
        schema = producer_schema(tmp_path)
        extra += ["--avro-schema", str(schema)]
        encoding = AvroFormat(schema)
    else:
        encoding = ProtobufFormat()

    def record(op: str, point_id: int, **fields: Any) -> tuple[bytes, bytes]:
        return encode_record(collection, op, point_id, value_format=encoding, **fields)

    good = [record("upsert", i, vector=vector(i, 0), payload={"n": i, "big": 2**62 + i}) for i in range(20)]
    good += [
        record("set_payload", 3, payload={"tag": "x"}),
        record("delete_payload", 4, keys=["n"]),
        record("delete", 5),
    ]
    bad = [
        (b"100", b"\xff\xfe not this format"),
        record("upsert", 101, vector=[1.0, 2.0]),  # wrong dimension
        encode_record("no-such-collection", "upsert", 102, vector=vector(102, 0), value_format=encoding),
    ]
    assert await send(kafka_bootstrap, topic, good + bad) == len(good) + len(bad)
    worker = workers.start(topic, unique("group"), *extra, dlq_topic=dlq_topic)
    await wait_applied(ingest_cluster, topic, len(good))
    dead = await read_topic(kafka_bootstrap, dlq_topic, len(bad))
    assert [headers[HEADER_CODE] for _, headers in dead] == [
        "malformed_record",
        "invalid_vector",
        "collection_not_found",
    ]
    got = await router_post(
        ingest_cluster,
        f"/v1/collections/{collection}/points/get",
        {"ids": [0, 3, 4, 5, 19], "with_vector": True, "consistency": "leader"},
    )
    points = {p["id"]: p for p in got["points"]}
    assert sorted(points) == [0, 3, 4, 19]
    assert points[0]["vector"] == vector(0, 0)
    assert points[19]["payload"] == {"n": 19, "big": 2**62 + 19}  # integers exact
    assert points[3]["payload"] == {"n": 3, "big": 2**62 + 3, "tag": "x"}
    assert points[4]["payload"] == {"big": 2**62 + 4}
    assert worker.terminate() == 0
