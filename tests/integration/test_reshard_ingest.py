"""Kafka ingestion stays exactly-once while the cluster grows from 1 to 2 shards.

Real broker, real worker process (restarted, as `vecstore up` would, when it stops on a
`wrong_shard` refusal), real shard groups. Records keep arriving during the move; at the
end every produced record is applied exactly once over all shards (applied == produced,
counted by the shards' own fences), and the collection holds exactly the produced points.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.conftest import NODE_READY_SECONDS, TEST_ENV
from tests.integration.kafka.harness import WorkerProcess, Workers, new_topic, send, unique, wait_until
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.ingest.records import encode_record
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import LocalShardGroup
from vecstore.launcher.readiness import readyz_url, wait_ready
from vecstore.reshard.coordinator import Coordinator
from vecstore.transport.node_client import NodeClient

DIM = 8
FIRST = 2_000
SLICE = 100


def records(collection: str, start: int, stop: int) -> list[tuple[bytes, bytes]]:
    return [encode_record(collection, "upsert", i, vector=[float(i % 97)] * DIM) for i in range(start, stop)]


async def totals(shards: list[ShardSpec], topic: str, access: NodeAccess) -> tuple[int, int, int]:
    """(applied, skipped, rejected) of `topic` over every shard's leader."""
    applied = skipped = rejected = 0
    for shard in shards:
        async with NodeClient([n.http for n in shard.nodes], deadline_seconds=30, access=access) as client:
            status = await client.status(await client.find_leader())
        for row in status["ingest"]:
            if row["topic"] == topic:
                applied += row["records_applied"]
                skipped += row["records_skipped"]
                rejected += row["records_rejected"]
    return applied, skipped, rejected


async def keep_running(worker: WorkerProcess, stop: asyncio.Event, restarts: list[int]) -> None:
    """What a supervisor does: restart the worker whenever it exits."""
    while not stop.is_set():
        if not worker.alive:
            code = worker.terminate()
            restarts.append(code if code is not None else -1)
            worker.start()
        await asyncio.sleep(0.2)


def test_ingestion_is_exactly_once_across_adding_a_shard(
    single_shard: LocalCluster, kafka_bootstrap: str, tmp_path: Path
) -> None:
    group = LocalShardGroup(
        tmp_path / "shard-1",
        replicas=3,
        shard_id=1,
        secret=single_shard.secret_path.read_text().strip(),
        extra_env=TEST_ENV,
    )
    workers = Workers(single_shard, kafka_bootstrap, tmp_path)
    try:
        asyncio.run(_scenario(single_shard, kafka_bootstrap, group, workers))
    finally:
        workers.stop_all()
        group.stop()


async def _scenario(cluster: LocalCluster, bootstrap: str, group: LocalShardGroup, workers: Workers) -> None:
    collection = unique("moving")
    async with aiohttp.ClientSession() as session:
        body = {"dimension": DIM}
        async with session.put(f"{cluster.router_url}/v1/collections/{collection}", json=body) as response:
            assert response.status == 200, await response.text()
    topic = await new_topic(bootstrap, "reshard", partitions=4)
    worker = workers.start(topic, unique("group"))
    stop, restarts = asyncio.Event(), list[int]()
    keeper = asyncio.create_task(keep_running(worker, stop, restarts))
    try:
        await send(bootstrap, topic, records(collection, 0, FIRST))
        moved = asyncio.Event()
        producing = asyncio.create_task(_trickle(bootstrap, topic, collection, moved))
        group.start()
        for address in group.http_addresses:
            await asyncio.to_thread(wait_ready, readyz_url(address), NODE_READY_SECONDS)
        new = ShardSpec(1, tuple(NodeSpec(n.node_id, n.raft_address, n.http_address) for n in group.nodes))
        coordinator = Coordinator(Topology.of_spec(cluster.spec), access=cluster.access)
        try:
            two = await coordinator.add_shard(new)
        finally:
            await coordinator.close()
        assert two.ids == (0, 1)
        moved.set()
        produced = await producing
        shards = list(two.shards)

        async def all_applied() -> bool:
            applied, _, rejected = await totals(shards, topic, cluster.access)
            return applied + rejected >= produced

        await wait_until(all_applied, 120, f"{produced} records applied")
        await asyncio.sleep(2.0)  # anything applied twice would show up by now
        applied, skipped, rejected = await totals(shards, topic, cluster.access)
        assert (applied, rejected) == (produced, 0), (applied, skipped, rejected, worker.log()[-3000:])
        # records for moved points kept coming after the cutover: the worker was refused
        # (wrong_shard), stopped, and was restarted with the new topology
        assert restarts, "the worker never met the new topology"
        assert "resharded" in worker.log()
        async with aiohttp.ClientSession() as session:
            url = f"{cluster.router_url}/v1/collections/{collection}/points/count"
            async with session.post(url, json={"consistency": "leader"}) as response:
                answer: dict[str, Any] = await response.json()
        assert answer["count"] == produced
        held = []
        for shard in shards:
            async with NodeClient(
                [n.http for n in shard.nodes], deadline_seconds=30, access=cluster.access
            ) as client:
                path = f"/v1/collections/{collection}/points/count"
                held.append(int((await client.read(path, {}, "leader"))["count"]))
        assert sum(held) == produced and min(held) > produced // 5
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _trickle(bootstrap: str, topic: str, collection: str, moved: asyncio.Event) -> int:
    """More records, a slice at a time, while the shard is added and for a while after;
    returns how many records were produced in all."""
    start, after = FIRST, 0
    while after < 10:
        await send(bootstrap, topic, records(collection, start, start + SLICE))
        start += SLICE
        after += moved.is_set()
        await asyncio.sleep(0.15)
    return start
