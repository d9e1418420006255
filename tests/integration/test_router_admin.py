"""Resharding through the router's admin endpoint only: add a started shard, remove it,
with points found exactly once after each move; scopes, bad bodies and one move at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from tests.integration.test_reshard import all_points, shard_ids, spec_of, start_group
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import LocalShardGroup

ADMIN = "admin-key-of-the-admin-test"
WRITER = "writer-key-of-the-admin-test"
READER = "reader-key-of-the-admin-test"
POINTS = 300


@pytest.fixture
def keyed_single_shard(tmp_path: Path) -> Iterator[LocalCluster]:
    """1 shard x 3 replicas whose router has an admin and a write key."""
    keys = {"VECSTORE_API_KEYS": f"{ADMIN}:admin,{WRITER}:write,{READER}:read"}
    yield from started_cluster(tmp_path / "cluster", shards=1, router_env=keys)


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, key: str = ADMIN, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with session.request(method, url, json=body, headers={"api-key": key}) as response:
        return response.status, await response.json()


async def _wait_done(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status, state = await _call(session, "GET", f"{url}/v1/admin/shards")
        assert status == 200, state
        operation = state["operation"]
        if operation is not None and operation["state"] != "running":
            assert operation["state"] == "done", operation
            return state
        await asyncio.sleep(0.5)
    raise AssertionError("the move did not finish in 180 s")


def test_add_and_remove_a_shard_through_the_router(keyed_single_shard: LocalCluster, tmp_path: Path) -> None:
    cluster = keyed_single_shard
    secret = cluster.secret_path.read_text().strip()
    group = start_group(tmp_path, 1, secret)
    try:
        asyncio.run(_scenario(cluster, group))
    finally:
        group.stop()


async def _scenario(cluster: LocalCluster, group: LocalShardGroup) -> None:
    url = cluster.router_url
    admin = f"{url}/v1/admin/shards"
    new = spec_of(group)
    members = [{"id": n.id, "raft": n.raft, "http": n.http} for n in new.nodes]
    body: dict[str, Any] = {"id": new.id, "nodes": members}
    async with aiohttp.ClientSession(headers={"api-key": ADMIN}) as session:
        status, _ = await _call(session, "PUT", f"{url}/v1/collections/docs", body={"dimension": 8})
        assert status == 200
        points = [{"id": i, "vector": [float(i % 7), 1.0, 0, 0, 0, 0, 0, 1.0]} for i in range(POINTS)]
        status, _ = await _call(session, "PUT", f"{url}/v1/collections/docs/points", body={"points": points})
        assert status == 200

        # only an admin key may look or reshard; bad bodies are 4xx and start nothing
        for key in (WRITER, READER):
            for method, path, payload in (
                ("GET", admin, None),
                ("POST", admin, body),
                ("DELETE", f"{admin}/0", None),
                ("POST", f"{admin}/resume", None),
                ("POST", f"{admin}/abort", None),
            ):
                status, answer = await _call(session, method, path, key=key, body=payload)
                assert status == 403, (key, method, path, answer)
        status, answer = await _call(session, "POST", admin, key="not-a-key", body=body)
        assert status == 401, answer
        taken = cluster.spec.shards[0].nodes[0]
        first = members[0]
        for bad in (
            {},
            [body],
            {"id": -1, "nodes": body["nodes"]},
            {"id": "1", "nodes": body["nodes"]},
            {"id": True, "nodes": body["nodes"]},
            {"id": 1, "nodes": []},
            {"id": 1, "nodes": "s1-n0"},
            {"id": 1, "nodes": [{"id": "x"}]},
            {"id": 1, "nodes": [{**first, "raft": "no-port"}]},
            {"id": 1, "nodes": [{**first, "id": taken.id}]},
            {"id": 1, "nodes": [{**first, "http": taken.http}]},
            {"id": 1, "nodes": [first, first]},
            {**body, "extra": 1},
        ):
            status, answer = await _call(session, "POST", admin, body=bad)
            assert status == 400 and answer["status"] == "error" and answer["error"], (bad, answer)
        async with session.post(admin, data=b"{not json", headers={"content-type": "application/json"}) as r:
            assert r.status == 400
        status, answer = await _call(session, "POST", admin, body={"id": 0, "nodes": body["nodes"]})
        assert status == 409, answer  # shard 0 exists
        for path in ("7", "0", "x"):  # unknown, the last one, not a number
            status, answer = await _call(session, "DELETE", f"{admin}/{path}")
            assert status == 400, (path, answer)
        status, state = await _call(session, "GET", admin)
        assert status == 200 and state["operation"] is None and state["epoch"] == 0
        assert state["moving"] is False and [s["id"] for s in state["shards"]] == [0]

        status, answer = await _call(session, "POST", admin, body=body)
        assert status == 202, answer
        assert answer["operation"]["kind"] == "add" and answer["operation"]["state"] == "running"
        # one move at a time: a second request while the first runs is refused
        status, busy = await _call(session, "POST", admin, body={**body, "id": 2})
        assert status == 409 and "already running" in busy["error"], busy
        status, busy = await _call(session, "POST", f"{admin}/resume")
        assert status == 409, busy
        state = await _wait_done(session, url)
        assert state["epoch"] == 1 and [s["id"] for s in state["shards"]] == [0, 1]
        operation = state["operation"]
        assert operation["epoch"] == 1 and operation["error"] is None
        assert operation["total"] > 0 and operation["done"] == operation["total"]
        assert state["moving"] is False and set(state["cluster"]["per_shard"]) == {"0", "1"}
        status, answer = await _call(session, "POST", admin, body=body)
        assert status == 409, answer  # shard 1 is in the topology now
        found = [int(p["id"]) for p in await all_points(session, url)]
        assert sorted(found) == list(range(POINTS))
        moved = await shard_ids(new, cluster.access)
        assert 0 < len(moved) < POINTS

        status, answer = await _call(session, "DELETE", f"{admin}/1")
        assert status == 202, answer
        state = await _wait_done(session, url)
        assert state["epoch"] == 2 and [s["id"] for s in state["shards"]] == [0]
        assert state["operation"]["kind"] == "remove" and state["operation"]["error"] is None
        found = [int(p["id"]) for p in await all_points(session, url)]
        assert sorted(found) == list(range(POINTS))
        assert await shard_ids(new, cluster.access) == set()
