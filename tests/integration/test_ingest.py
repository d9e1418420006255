"""Kafka ingestion end to end: a real broker, real worker processes, a real 2 x 3 cluster.

Each test uses its own topic, group and collection on the shared cluster and broker.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.kafka.harness import (
    Workers,
    create_collection,
    ingest_totals,
    leader_statuses,
    new_topic,
    send,
    shard_clients,
    unique,
    wait_applied,
    wait_until,
)
from vecstore.cluster.commands import IngestBatch, IngestRecord, PartitionBatch, Upsert
from vecstore.cluster.hash_ring import ShardRing
from vecstore.ingest.dlq import HEADER_CODE, HEADER_ERROR, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC
from vecstore.ingest.records import encode_record
from vecstore.launcher.local_cluster import LocalCluster

DIM = 8
POINTS = int(os.environ.get("VECSTORE_TEST_INGEST_POINTS", "3000"))
"""Points of the volume test (three records each); 16667 gives the issue's 50,000 records."""


def vector(point_id: int, version: int) -> list[float]:
    """A vector that encodes the point and its version."""
    return [float(point_id), float(version), *([0.5] * (DIM - 2))]


def versioned_records(collection: str, points: int) -> list[tuple[bytes, bytes]]:
    """Three versions of every point; in the last, every tenth point is deleted and every
    tenth-plus-one only has its payload changed."""
    records = []
    for version in range(3):
        for point_id in range(points):
            if version == 2 and point_id % 10 == 0:
                records.append(encode_record(collection, "delete", point_id))
            elif version == 2 and point_id % 10 == 1:
                records.append(encode_record(collection, "set_payload", point_id, payload={"tag": "last"}))
            else:
                value_format = "json" if point_id % 2 else "msgpack"
                records.append(
                    encode_record(
                        collection,
                        "upsert",
                        point_id,
                        vector=vector(point_id, version),
                        payload={"v": version},
                        value_format=value_format,
                    )
                )
    return records


async def router_post(cluster: LocalCluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{cluster.router_url}{path}", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def test_every_record_is_applied_once_in_key_order(
    ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers
) -> None:
    topic = await new_topic(kafka_bootstrap)
    collection = unique("volume")
    await create_collection(ingest_cluster, collection, DIM)
    records = versioned_records(collection, POINTS)
    assert await send(kafka_bootstrap, topic, records) == len(records)

    worker = workers.start(topic, unique("group"))
    await wait_applied(ingest_cluster, topic, len(records), timeout=120)

    # applied == produced, per partition: offsets start at 0 and every record is valid
    status = await worker.status()
    totals = await ingest_totals(ingest_cluster, topic)
    assert sorted(totals) == [0, 1, 2, 3]
    for row in status["partitions"]:
        partition = totals[row["partition"]]
        assert partition.applied == row["highwater"], (row, partition)
        assert partition.applied_offset == row["highwater"] - 1
        assert partition.skipped == partition.rejected == 0
    await wait_until(lambda: _all_committed(worker.status), 10, "the worker to commit every offset", poll=0.2)

    # the last version of each point won
    live = [i for i in range(POINTS) if i % 10 != 0]
    count = await router_post(
        ingest_cluster, f"/v1/collections/{collection}/points/count", {"consistency": "leader"}
    )
    assert count["count"] == len(live)
    sample = list(range(0, POINTS, 7))
    got = await router_post(
        ingest_cluster,
        f"/v1/collections/{collection}/points/get",
        {"ids": sample, "with_vector": True, "consistency": "leader"},
    )
    points = {p["id"]: p for p in got["points"]}
    assert sorted(points) == [i for i in sample if i % 10 != 0]
    for point_id, point in points.items():
        if point_id % 10 == 1:
            assert point["payload"] == {"v": 1, "tag": "last"}
            assert point["vector"] == vector(point_id, 1)
        else:
            assert point["payload"] == {"v": 2}
            assert point["vector"] == vector(point_id, 2)
    assert worker.terminate() == 0


async def _all_committed(status_of: Any) -> bool:
    status = await status_of()
    return all(row["committed"] == row["highwater"] for row in status["partitions"])


async def test_invalid_records_go_to_the_dead_letter_topic_and_the_partition_moves_on(
    ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers
) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=1)
    dlq_topic = await new_topic(kafka_bootstrap, "dlq", partitions=1)
    collection = unique("dlq")
    await create_collection(ingest_cluster, collection, DIM)
    good = [encode_record(collection, "upsert", i, vector=vector(i, 0)) for i in range(6)]
    bad = [
        (b"100", b"\xc1 not msgpack"),
        encode_record(collection, "upsert", 101, vector=[1.0, 2.0]),
        encode_record(collection, "upsert", 102, vector=[float("nan")] * DIM, value_format="json"),
        (b"103", b'{"collection": "%s", "op": "upsert", "id": 103}' % collection.encode()),
        encode_record("no-such-collection", "upsert", 104, vector=vector(104, 0)),
        (b"not-an-id", b'{"collection": "%s", "op": "delete"}' % collection.encode()),
    ]
    expected_codes = [
        "malformed_record",
        "invalid_vector",
        "invalid_vector",
        "malformed_record",
        "collection_not_found",
        "invalid_point_id",
    ]
    interleaved = [record for pair in zip(good, bad, strict=True) for record in pair]
    assert await send(kafka_bootstrap, topic, interleaved) == 12

    worker = workers.start(topic, unique("group"), dlq_topic=dlq_topic)
    await wait_applied(ingest_cluster, topic, len(good))
    dead = await read_topic(kafka_bootstrap, dlq_topic, len(bad))
    assert [headers[HEADER_CODE] for _, headers in dead] == expected_codes
    assert [int(headers[HEADER_OFFSET]) for _, headers in dead] == [1, 3, 5, 7, 9, 11]
    assert {headers[HEADER_TOPIC] for _, headers in dead} == {topic}
    assert {headers[HEADER_PARTITION] for _, headers in dead} == {"0"}
    assert "expects 8" in dict(dead)[bad[1][1]][HEADER_ERROR]
    assert [value for value, _ in dead] == [value for _, value in bad]

    totals = await ingest_totals(ingest_cluster, topic)
    assert totals[0].applied == len(good)
    assert totals[0].applied_offset == 10
    await wait_until(lambda: _all_committed(worker.status), 10, "the commit past the last bad record")
    status = await worker.status()
    assert status["partitions"][0]["committed"] == 12
    assert status["records"]["dead_lettered"] == len(bad)
    assert "vecstore_ingest_dead_letters_total 6.0" in await worker.metrics()
    assert worker.terminate() == 0


async def read_topic(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """The first `count` records of partition 0 of `topic`: (value, headers)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        found: list[tuple[bytes, dict[str, str]]] = []
        for _ in range(40):
            batch = await consumer.getmany(partition, timeout_ms=250)
            found.extend(
                (record.value, {k: v.decode() for k, v in record.headers})
                for record in batch.get(partition, [])
            )
            if len(found) >= count:
                break
        return found
    finally:
        await consumer.stop()


async def test_a_replayed_old_batch_changes_nothing(
    ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers
) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=1)
    collection = unique("zombie")
    await create_collection(ingest_cluster, collection, DIM)
    records = [encode_record(collection, "upsert", i, vector=vector(i, 1)) for i in range(200)]
    await send(kafka_bootstrap, topic, records)
    worker = workers.start(topic, unique("group"))
    await wait_applied(ingest_cluster, topic, len(records))
    assert worker.terminate() == 0

    # a zombie worker's batch: the same offsets with older content, arriving late
    ring = ShardRing(len(ingest_cluster.spec.shards))
    before = {s["shard_id"]: s for s in await leader_statuses(ingest_cluster)}
    async with aiohttp.ClientSession() as session:
        for shard_id, client in enumerate(shard_clients(ingest_cluster, session)):
            stale = tuple(
                IngestRecord(offset, Upsert.build(collection, [offset], [vector(offset, 0)]))
                for offset in range(200)
                if ring.shard_for(offset) == shard_id
            )
            result = await client.apply(IngestBatch((PartitionBatch(topic, 0, stale),)))
            [partition] = result["partitions"]
            assert partition["applied"] == 0
            assert partition["skipped"] == len(stale)
    after = {s["shard_id"]: s for s in await leader_statuses(ingest_cluster)}
    for shard_id, status in after.items():
        old = before[shard_id]
        assert status["digest"] == old["digest"]
        [row] = [r for r in status["ingest"] if r["topic"] == topic]
        [old_row] = [r for r in old["ingest"] if r["topic"] == topic]
        assert row["applied_offset"] == old_row["applied_offset"]
        assert row["records_applied"] == old_row["records_applied"]
        assert row["records_skipped"] == old_row["records_skipped"] + row["records_applied"]
    got = await router_post(
        ingest_cluster, f"/v1/collections/{collection}/points/get", {"ids": [5], "with_vector": True}
    )
    assert got["points"][0]["vector"] == vector(5, 1)
