"""Resharding a loaded cluster while a writer and a reader run: 1 -> 2 -> 3 -> 2 shards.

Real processes: a `vecstore up`-style cluster (1 shard x 3 replicas and a router), new
shard groups started beside it, the coordinator moving points, and a router that learns
each topology from the shards. Checked: every acknowledged point is present exactly once
with its last acknowledged payload, every search answer is free of duplicates, and each
shard holds exactly the points it owns. A collection of named vectors (points lacking some)
moves with the rest: every point and each of its vectors arrive where they belong.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from tests.integration.conftest import NODE_READY_SECONDS, TEST_ENV
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import LocalShardGroup
from vecstore.launcher.readiness import readyz_url, wait_ready
from vecstore.reshard.coordinator import Coordinator
from vecstore.transport.node_client import NodeClient

DIM = 8
LOADED = 600


def start_group(tmp_path: Path, shard_id: int, secret: str) -> LocalShardGroup:
    group = LocalShardGroup(
        tmp_path / f"shard-{shard_id}", replicas=3, shard_id=shard_id, secret=secret, extra_env=TEST_ENV
    )
    group.start()
    for address in group.http_addresses:
        wait_ready(readyz_url(address), NODE_READY_SECONDS)
    return group


def spec_of(group: LocalShardGroup) -> ShardSpec:
    return ShardSpec(
        group.shard_id, tuple(NodeSpec(n.node_id, n.raft_address, n.http_address) for n in group.nodes)
    )


def vector(point_id: int, version: int) -> list[float]:
    rng = random.Random(point_id * 1_000 + version)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


class Workload:
    """A writer (new points and overwrites) and a reader (searches), through the router."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: dict[int, int] = {}  # point id -> version last acknowledged
        self.duplicates: list[list[Any]] = []
        self.searches = 0
        self.write_errors: list[str] = []
        self.stop = asyncio.Event()

    async def write(self, session: aiohttp.ClientSession, ids: list[int], version: int) -> bool:
        body = {"points": [{"id": i, "vector": vector(i, version), "payload": {"v": version}} for i in ids]}
        async with session.put(f"{self.url}/v1/collections/docs/points", json=body) as response:
            if response.status != 200:
                self.write_errors.append(f"{response.status}: {await response.text()}")
                return False
        for i in ids:
            self.acknowledged[i] = version
        return True

    async def writer(self, session: aiohttp.ClientSession) -> None:
        next_id, version = LOADED, 1
        rng = random.Random(7)
        while not self.stop.is_set():
            ids = [next_id, next_id + 1, *rng.sample(range(next_id), 3)]
            if await self.write(session, ids, version):
                next_id += 2
            version += 1
            await asyncio.sleep(0.02)

    async def reader(self, session: aiohttp.ClientSession) -> None:
        rng = random.Random(11)
        while not self.stop.is_set():
            body = {"vector": [rng.uniform(-1, 1) for _ in range(DIM)], "k": 20}
            async with session.post(f"{self.url}/v1/collections/docs/search", json=body) as response:
                if response.status == 200:
                    hits = (await response.json())["result"]
                    ids = [hit["id"] for hit in hits]
                    if len(ids) != len(set(ids)):
                        self.duplicates.append(ids)
                    self.searches += 1
            await asyncio.sleep(0.01)


async def all_points(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    offset = None
    while True:
        body = {"limit": 500, "offset": offset, "with_payload": True, "consistency": "strong"}
        async with session.post(f"{url}/v1/collections/docs/points/scroll", json=body) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        points += answer["points"]
        offset = answer.get("next_offset")
        if offset is None:
            return points


async def shard_ids(shard: ShardSpec, access: NodeAccess) -> set[int]:
    async with NodeClient([n.http for n in shard.nodes], deadline_seconds=30, access=access) as client:
        found: set[int] = set()
        offset = None
        while True:
            body = {"limit": 1_000, "offset": offset, "with_payload": False}
            answer = await client.read("/v1/collections/docs/points/scroll", body, "leader")
            found |= {int(p["id"]) for p in answer["points"]}
            offset = answer.get("next_offset")
            if offset is None:
                return found


def test_grow_to_three_shards_and_back_to_two_under_load(single_shard: LocalCluster, tmp_path: Path) -> None:
    secret = single_shard.secret_path.read_text().strip()
    groups: list[LocalShardGroup] = []
    try:
        asyncio.run(_scenario(single_shard, tmp_path, secret, groups))
    finally:
        for group in groups:
            group.stop()


async def _scenario(
    cluster: LocalCluster, tmp_path: Path, secret: str, groups: list[LocalShardGroup]
) -> None:
    url = cluster.router_url
    work = Workload(url)
    async with aiohttp.ClientSession() as session:
        schema = {"dimension": DIM, "metric": "cosine"}
        async with session.put(f"{url}/v1/collections/docs", json=schema) as response:
            assert response.status == 200, await response.text()
        for start in range(0, LOADED, 200):
            assert await work.write(session, list(range(start, start + 200)), 0)
        named = await _load_named(session, url)
        tasks = [asyncio.create_task(work.writer(session)), asyncio.create_task(work.reader(session))]
        coordinator = Coordinator(Topology.of_spec(cluster.spec), access=cluster.access)
        try:
            groups.append(await asyncio.to_thread(start_group, tmp_path, 1, secret))
            two = await coordinator.add_shard(spec_of(groups[0]))
            assert two.ids == (0, 1) and two.epoch == 1
            await asyncio.sleep(1.0)
            groups.append(await asyncio.to_thread(start_group, tmp_path, 2, secret))
            three = await coordinator.add_shard(spec_of(groups[1]))
            assert three.ids == (0, 1, 2) and three.epoch == 2
            await asyncio.sleep(1.0)
            back = await coordinator.remove_shard(2)
            assert back.ids == (0, 1) and back.epoch == 3
            await asyncio.sleep(1.0)
        finally:
            work.stop.set()
            await asyncio.gather(*tasks)
            await coordinator.close()

        assert not work.write_errors, work.write_errors[:5]
        assert work.searches > 20
        assert not work.duplicates, work.duplicates[:3]
        points = await all_points(session, url)
        ids = [int(p["id"]) for p in points]
        assert len(ids) == len(set(ids)), "a point is stored twice"
        assert set(ids) == set(work.acknowledged), "an acknowledged point is missing (or one appeared)"
        stale = {int(p["id"]) for p in points if p["payload"]["v"] != work.acknowledged[int(p["id"])]}
        assert not stale, f"{len(stale)} points lost their last acknowledged write"

        final = back
        held = {shard.id: await shard_ids(shard, cluster.access) for shard in final.shards}
        for shard_id, owned_here in held.items():
            assert all(final.owner(i) == shard_id for i in owned_here)
        assert sum(len(h) for h in held.values()) == len(ids)
        assert 0.2 < len(held[1]) / len(ids) < 0.8  # shard 1 took about half
        assert await shard_ids(spec_of(groups[1]), cluster.access) == set()  # the removed shard was drained
        await _check_named(session, url, named, final, cluster.access)


NAMED_POINTS = 300


def _named_vectors(point_id: int) -> dict[str, list[float]]:
    vectors = {"a": vector(point_id, 0)[:4]}
    if point_id % 3:
        vectors["b"] = vector(point_id, 1)[:3]
    return vectors


async def _load_named(session: aiohttp.ClientSession, url: str) -> dict[int, dict[str, list[float]]]:
    schema = {"vectors": {"a": {"dimension": 4, "metric": "dot"}, "b": {"dimension": 3, "metric": "l2"}}}
    async with session.put(f"{url}/v1/collections/named", json=schema) as response:
        assert response.status == 200, await response.text()
    written = {i: _named_vectors(i) for i in range(NAMED_POINTS)}
    body = {"points": [{"id": i, "vector": v, "payload": {"i": i}} for i, v in written.items()]}
    async with session.put(f"{url}/v1/collections/named/points", json=body) as response:
        assert response.status == 200, await response.text()
    return written


async def _check_named(
    session: aiohttp.ClientSession,
    url: str,
    written: dict[int, dict[str, list[float]]],
    final: Topology,
    access: NodeAccess,
) -> None:
    body = {"ids": list(written), "with_vector": True, "consistency": "strong"}
    async with session.post(f"{url}/v1/collections/named/points/get", json=body) as response:
        assert response.status == 200, await response.text()
        points = (await response.json())["points"]
    assert sorted(p["id"] for p in points) == sorted(written)
    for point in points:
        stored = point["vector"]
        assert sorted(stored) == sorted(written[point["id"]]), point["id"]
        for name, values in written[point["id"]].items():
            assert stored[name] == np.asarray(values, dtype=np.float32).tolist(), (point["id"], name)
    for shard in final.shards:  # each shard holds exactly its own points, in its rows and spaces
        async with NodeClient([n.http for n in shard.nodes], deadline_seconds=30, access=access) as client:
            answer = await client.read(
                "/v1/collections/named/points/scroll", {"limit": 1_000, "with_vector": True}, "leader"
            )
        held = answer["points"]
        assert all(final.owner(int(p["id"])) == shard.id for p in held)
        assert all(sorted(p["vector"]) == sorted(written[int(p["id"])]) for p in held)
