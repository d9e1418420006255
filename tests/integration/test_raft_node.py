"""A real 3-node shard group: replication, failover, restarts, snapshots, membership."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time

import numpy as np

from tests.integration.conftest import wait_converged
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.schema import CollectionSchema
from vecstore.launcher.processes import LocalShardGroup
from vecstore.transport.node_client import NodeClient

DIM = 16


def vectors_for(ids: list[int]) -> np.ndarray:
    """A deterministic vector per id, so any replica's copy can be checked."""
    return np.stack([np.random.default_rng(i).normal(size=DIM) for i in ids]).astype(np.float32)


async def create(client: NodeClient) -> None:
    await client.apply(CreateCollection(CollectionSchema("docs", DIM)))


async def upsert(client: NodeClient, ids: list[int], version: int = 0) -> None:
    payloads = [{"id": i, "version": version} for i in ids]
    await client.apply(Upsert.build("docs", ids, vectors_for(ids), payloads))


async def test_writes_reach_every_replica(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    for start in range(0, 1_000, 100):
        await upsert(client, list(range(start, start + 100)))
    digests = await wait_converged(client, shard_group.http_addresses)
    assert len(set(digests.values())) == 1
    query = vectors_for([7]).tolist()
    answers = []
    for address in shard_group.http_addresses:
        single = NodeClient([address], access=shard_group.access)
        try:
            answers.append(await single.search("docs", query, 5, exact=True))
            assert await single.count("docs") == 1_000
        finally:
            await single.close()
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0][0]["id"] == 7


async def test_leader_kill_loses_no_acknowledged_write(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    acknowledged: list[int] = []
    stop = asyncio.Event()

    async def writer() -> None:
        next_id = 0
        while not stop.is_set():
            batch = list(range(next_id, next_id + 20))
            next_id += 20
            with contextlib.suppress(VecStoreError):
                await upsert(client, batch)
                acknowledged.extend(batch)

    task = asyncio.create_task(writer())
    await asyncio.sleep(1.5)
    leader = shard_group.by_http(await client.find_leader())
    before_kill = len(acknowledged)
    leader.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    while len(acknowledged) <= before_kill + 100 and time.monotonic() - killed_at < 20:
        await asyncio.sleep(0.1)
    stop.set()
    await task
    assert len(acknowledged) > before_kill + 100, "writes did not resume on a new leader"

    leader.start()  # restarts from its journal and dump
    await wait_converged(client, shard_group.http_addresses, timeout=40)
    assert await client.count("docs", consistency="strong") >= len(acknowledged)
    found = await client.get("docs", acknowledged, consistency="strong")
    assert {p["id"] for p in found} == set(acknowledged)


async def test_all_nodes_killed_and_restarted_keep_acknowledged_data(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    ids = list(range(600))
    for start in range(0, len(ids), 50):
        await upsert(client, ids[start : start + 50])
    for node in shard_group.nodes:
        node.kill()
    shard_group.start()
    await client.find_leader()
    await wait_converged(client, shard_group.http_addresses, timeout=40)
    assert await client.count("docs", consistency="strong") == len(ids)
    points = await client.get("docs", [5, 599], consistency="strong", with_vector=True)
    assert np.allclose([p["vector"] for p in points], vectors_for([5, 599]), atol=1e-6)


async def test_lagging_node_installs_a_snapshot_with_sealed_segments(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    leader_address = await client.find_leader()
    lagging = next(n for n in shard_group.nodes if n.http_address != leader_address)
    lagging.kill()
    for start in range(0, 2_000, 25):  # 80 entries: more than the compaction threshold of 40
        await upsert(client, list(range(start, start + 25)))
    deadline = time.monotonic() + 60
    while (await client.status(leader_address))["collections"]["docs"]["segments"] == 0:
        assert time.monotonic() < deadline, "the leader never sealed a segment"
        await asyncio.sleep(0.2)
    dumps_before = (await client.status(leader_address))["dumps_written"]
    for extra in range(45):  # one entry each: enough to trigger another dump, with sealed data
        await upsert(client, [10_000 + extra])
    deadline = time.monotonic() + 60
    while (await client.status(leader_address))["dumps_written"] <= dumps_before:
        assert time.monotonic() < deadline, "the leader never compacted its log"
        await asyncio.sleep(0.2)
    lagging.start()
    await wait_converged(client, shard_group.http_addresses, timeout=60)
    status = await client.status(lagging.http_address)
    assert status["dumps_loaded"] >= 1
    assert status["collections"]["docs"]["points"] == 2_045
    assert status["collections"]["docs"]["segments"] >= 1


async def test_a_member_restarted_empty_is_not_ready_until_it_holds_the_data(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    """A member whose disk was lost, restarted under its old id, must not call itself ready
    (and take reads) before the snapshot of its peers is installed."""
    await create(client)
    leader_address = await client.find_leader()
    for start in range(0, 2_000, 25):  # 80 entries: the leader compacts its log (threshold 40)
        await upsert(client, list(range(start, start + 25)))
    deadline = time.monotonic() + 60
    while (await client.status(leader_address))["dumps_written"] == 0:
        assert time.monotonic() < deadline, "the leader never compacted its log"
        await asyncio.sleep(0.2)
    lost = next(n for n in shard_group.nodes if n.http_address != leader_address)
    lost.kill()
    shutil.rmtree(shard_group.base_dir / lost.name)
    lost.start()
    samples: list[tuple[bool, int | None]] = []
    answers: list[int] = []
    deadline = time.monotonic() + 60
    while not (samples and samples[-1][0]):
        assert time.monotonic() < deadline, f"never ready again: {samples[-5:]}"
        try:
            status = await client.status(lost.http_address)
        except VecStoreError:
            await asyncio.sleep(0.05)
            continue
        points = status.get("collections", {}).get("docs", {}).get("points")
        samples.append((bool(status["ready"]), points))
        try:  # an eventual read it answers must be a whole one; else it refuses, retriably
            counted = await client.call(
                lost.http_address,
                "POST",
                "/v1/collections/docs/points/count",
                body={"consistency": "eventual"},
            )
            answers.append(counted["count"])
        except VecStoreError as err:
            assert err.retriable, err
        await asyncio.sleep(0.02)
    assert all(points == 2_000 for ready, points in samples if ready), [s for s in samples if s[0]][:5]
    assert set(answers) <= {2_000}, answers


async def test_strong_read_sees_every_acknowledged_write(client: NodeClient) -> None:
    await create(client)
    for i in range(30):
        await upsert(client, [i], version=i)
        points = await client.get("docs", [i], consistency="strong")
        assert points and points[0]["payload"]["version"] == i
        assert await client.count("docs", consistency="strong") == i + 1


async def test_add_then_remove_a_member_under_writes(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    await upsert(client, list(range(200)))
    newcomer = shard_group.new_member()
    await client.change_membership("add", newcomer.raft_address)
    newcomer.start()
    for start in range(200, 600, 50):
        await upsert(client, list(range(start, start + 50)))
    addresses = shard_group.http_addresses
    await wait_converged(client, addresses, timeout=60)
    leader = await client.find_leader()
    leaving = next(n for n in shard_group.nodes[:3] if n.http_address != leader)
    await client.change_membership("remove", leaving.raft_address)
    leaving.stop()
    await upsert(client, list(range(600, 650)))
    remaining = [a for a in addresses if a != leaving.http_address]
    await wait_converged(client, remaining, timeout=60)
    status = await client.status(newcomer.http_address)
    assert status["collections"]["docs"]["points"] == 650
    peers = {p["raft_address"] for p in (await client.status(leader))["peers"]}
    assert leaving.raft_address not in peers
    assert newcomer.raft_address in peers
