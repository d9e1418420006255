"""The admin CLI against a running shard group, as an operator would use it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.integration.conftest import SECRET, wait_converged
from tests.integration.test_raft_node import create, upsert
from vecstore.launcher.processes import LocalShardGroup
from vecstore.transport.node_client import NodeClient


def vecstore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vecstore.cli.main", *args],
        env={**os.environ, "VECSTORE_CLUSTER_SECRET": SECRET},  # the shard_group fixture's
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_status_and_membership_commands(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    await upsert(client, list(range(40)))
    await wait_converged(client, shard_group.http_addresses)
    nodes = ",".join(shard_group.http_addresses)

    result = await asyncio.to_thread(vecstore, "status", "--nodes", nodes, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted(r["role"] for r in rows) == ["follower", "follower", "leader"]
    assert {r["points"] for r in rows} == {40}
    assert len({r["digest"] for r in rows}) == 1

    table = await asyncio.to_thread(vecstore, "status", "--nodes", nodes)
    assert table.returncode == 0
    assert "ROLE" in table.stdout and "leader" in table.stdout

    newcomer = shard_group.new_member()
    added = await asyncio.to_thread(
        vecstore, "node", "add", "--nodes", nodes, "--raft-address", newcomer.raft_address
    )
    assert added.returncode == 0, added.stderr
    newcomer.start()
    await wait_converged(client, shard_group.http_addresses, timeout=60)
    removed = await asyncio.to_thread(
        vecstore, "node", "remove", "--nodes", nodes, "--raft-address", newcomer.raft_address
    )
    assert removed.returncode == 0, removed.stderr
    leader = await client.find_leader()
    peers = {p["raft_address"] for p in (await client.status(leader))["peers"]}
    assert newcomer.raft_address not in peers


async def test_status_reports_unreachable_nodes() -> None:
    result = await asyncio.to_thread(vecstore, "status", "--nodes", "127.0.0.1:1", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)[0]["role"] == "unreachable"
