"""Exactly-once ingestion under faults: killed workers, a rebalance, a killed shard leader.

After every fault the shards' counters must show each produced record applied once
(applied == produced per partition), and the collection must hold exactly the points.
"""

from __future__ import annotations

import signal

import aiohttp

from tests.integration.kafka.harness import (
    Workers,
    create_collection,
    ingest_totals,
    leader_statuses,
    new_topic,
    send,
    unique,
    wait_applied,
    wait_until,
)
from vecstore.ingest.records import encode_record
from vecstore.launcher.local_cluster import LocalCluster

DIM = 8
LEADER = {"consistency": "leader"}
RECORDS = 6_000


def upserts(collection: str, count: int) -> list[tuple[bytes, bytes]]:
    """One upsert per point id 0..count-1."""
    return [encode_record(collection, "upsert", i, vector=[float(i)] * DIM) for i in range(count)]


async def applied_so_far(cluster: LocalCluster, topic: str) -> int:
    """Records of `topic` applied over all shards."""
    return sum(t.applied for t in (await ingest_totals(cluster, topic)).values())


async def wait_progress(cluster: LocalCluster, topic: str, at_least: int) -> None:
    """Wait until at least `at_least` records are applied."""

    async def reached() -> bool:
        return await applied_so_far(cluster, topic) >= at_least

    await wait_until(reached, 60, f"{at_least} records of {topic} applied", poll=0.2)


async def assert_exactly_once(cluster: LocalCluster, topic: str, collection: str, produced: int) -> int:
    """Every record applied once, none twice; returns how many replays the shards skipped."""
    await wait_applied(cluster, topic, produced, timeout=90)
    totals = await ingest_totals(cluster, topic)
    assert sum(t.applied for t in totals.values()) == produced, totals
    assert all(t.rejected == 0 for t in totals.values())
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{cluster.router_url}/v1/collections/{collection}/points/count", json=LEADER
        ) as response,
    ):
        assert (await response.json())["count"] == produced
    return sum(t.skipped for t in totals.values())


async def test_a_stopped_or_killed_worker_loses_nothing_and_applies_nothing_twice(
    ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers
) -> None:
    topic = await new_topic(kafka_bootstrap)
    collection = unique("crash")
    await create_collection(ingest_cluster, collection, DIM)
    await send(kafka_bootstrap, topic, upserts(collection, RECORDS))
    group = unique("group")
    worker = workers.start(topic, group, "--batch-max-records", "300")
    # SIGTERM: the worker commits everything acknowledged, so its successor replays nothing
    await wait_progress(ingest_cluster, topic, RECORDS // 10)
    assert worker.terminate() == 0
    worker.start()
    await wait_progress(ingest_cluster, topic, RECORDS // 5)
    assert sum(t.skipped for t in (await ingest_totals(ingest_cluster, topic)).values()) == 0
    for fraction in (0.3, 0.5, 0.7):
        await wait_progress(ingest_cluster, topic, int(RECORDS * fraction))
        worker.kill()
        assert worker.exit_codes[-1] == -signal.SIGKILL
        worker.start()
    skipped = await assert_exactly_once(ingest_cluster, topic, collection, RECORDS)
    status = await worker.status()
    assert status["records"]["skipped"] <= skipped
    assert worker.terminate() == 0


async def test_a_rebalance_and_a_takeover_keep_exactly_once(
    ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers
) -> None:
    topic = await new_topic(kafka_bootstrap)
    collection = unique("rebalance")
    await create_collection(ingest_cluster, collection, DIM)
    records = upserts(collection, RECORDS)
    half = RECORDS // 2
    await send(kafka_bootstrap, topic, records[:half])
    group = unique("group")
    first = workers.start(topic, group, "--batch-max-records", "300")
    await wait_progress(ingest_cluster, topic, half // 4)
    second = workers.start(topic, group, "--batch-max-records", "300")  # partitions move: a rebalance

    async def owned_by_both() -> bool:
        statuses = [await first.status(), await second.status()]
        return all(s["partitions"] for s in statuses)

    await wait_until(owned_by_both, 30, "both workers to own partitions", poll=0.2)
    first.kill()  # the survivor takes over its partitions after the session timeout
    await send(kafka_bootstrap, topic, records[half:])

    async def taken_over() -> bool:
        return len((await second.status())["partitions"]) == 4

    await wait_until(taken_over, 30, "the survivor to own every partition", poll=0.2)
    await assert_exactly_once(ingest_cluster, topic, collection, RECORDS)
    assert second.terminate() == 0


async def test_a_killed_shard_leader_loses_nothing_and_applies_nothing_twice(
    ingest_cluster: LocalCluster, kafka_bootstrap: str, workers: Workers
) -> None:
    topic = await new_topic(kafka_bootstrap)
    collection = unique("leader")
    await create_collection(ingest_cluster, collection, DIM)
    await send(kafka_bootstrap, topic, upserts(collection, RECORDS))
    worker = workers.start(topic, unique("group"), "--batch-max-records", "300")
    await wait_progress(ingest_cluster, topic, RECORDS // 4)
    [status, *_] = await leader_statuses(ingest_cluster)
    [leader] = [p for p in ingest_cluster.processes if p.name == status["node_id"]]
    assert leader.process is not None
    leader.process.kill()
    leader.process.wait()
    try:
        await assert_exactly_once(ingest_cluster, topic, collection, RECORDS)
    finally:
        leader.start()
    await wait_replicas_agree(ingest_cluster, status["shard_id"])
    assert worker.terminate() == 0


async def wait_replicas_agree(cluster: LocalCluster, shard_id: int) -> None:
    """The restarted node catches up: every replica of the shard has the same digest."""
    addresses = [n.http for n in cluster.spec.shard(shard_id).nodes]

    async def agree() -> bool:
        digests = set()
        async with aiohttp.ClientSession(headers=cluster.access.headers()) as session:
            for address in addresses:
                try:
                    async with session.get(f"http://{address}/v1/status") as response:
                        digests.add((await response.json())["digest"])
                except aiohttp.ClientError:
                    return False
        return len(digests) == 1

    await wait_until(agree, 60, f"the replicas of shard {shard_id} to agree")
