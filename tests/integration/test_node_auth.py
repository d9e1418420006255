"""The node API asks the cluster's node token: the probes of issue 14, replayed.

Before, each request below was applied with no credentials at all (bypassing the router's
API keys). Now each gets 401 and changes nothing, while the same request with the token
derived from the cluster secret works.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import SECRET
from tests.integration.test_raft_node import create, upsert, vectors_for
from vecstore.cluster.codec import encode_command
from vecstore.cluster.commands import (
    Command,
    DropCollection,
    IngestBatch,
    IngestRecord,
    InstallTopology,
    PartitionBatch,
    Upsert,
)
from vecstore.cluster.credentials import NO_ACCESS, NodeAccess, node_token
from vecstore.cluster.errors import Unauthorized
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.launcher.processes import LocalShardGroup
from vecstore.transport.node_client import NodeClient
from vecstore.transport.rpc import RPC_PATH
from vecstore.transport.wire import MSGPACK

pytestmark = pytest.mark.security

WRONG = NodeAccess.of_secret("a-different-secret-0123456789")


async def raw_apply(address: str, command: Command, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(
            f"http://{address}/v1/apply",
            data=encode_command(command),
            headers={"Content-Type": MSGPACK},
        ) as response,
    ):
        return response.status, await response.json()


def forged_batch(offset: int, point: int) -> IngestBatch:
    record = IngestRecord(offset, Upsert.build("docs", [point], vectors_for([point]), [{"id": point}]))
    return IngestBatch((PartitionBatch("events", 0, (record,)),))


@pytest.mark.parametrize("headers", [{}, WRONG.headers(), {"Authorization": "Basic dXNlcjpwYXNz"}])
async def test_writes_without_the_token_get_401_and_change_nothing(
    shard_group: LocalShardGroup, client: NodeClient, headers: dict[str, str]
) -> None:
    await create(client)
    await upsert(client, list(range(20)))
    leader = await client.find_leader()
    members = tuple(NodeSpec(n.node_id, n.raft_address, n.http_address) for n in shard_group.nodes)
    stolen = Topology(1, (ShardSpec(0, members), ShardSpec(1, members)))  # would give away half the ring
    probes: list[Command] = [
        Upsert.build("docs", [1000], vectors_for([1000]), [{"evil": True}]),
        DropCollection("docs"),
        forged_batch(10**12, 2000),
        InstallTopology(0, stolen.to_dict()),
    ]
    for command in probes:
        status, body = await raw_apply(leader, command, headers)
        assert status == 401, (type(command).__name__, body)
        assert body["code"] == "unauthorized"
        assert "node token" in body["error"]
    assert await client.count("docs", consistency="strong") == 20
    # the forged offset did not fence the partition: a real record at offset 5 is applied
    await client.apply(forged_batch(5, 3000))
    assert await client.count("docs", consistency="strong") == 21
    answer = await client.read("/v1/topology", {}, "leader")
    assert answer.get("ownership") is None  # no topology was installed


async def test_membership_change_without_the_token_is_refused(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    leader = await client.find_leader()
    peers_before = (await client.status(leader))["peers"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{leader}/v1/membership", json={"action": "add", "raft_address": "127.0.0.1:1"}
        ) as response,
    ):
        assert response.status == 401
    await asyncio.sleep(0.5)
    peers_after = (await client.status(leader))["peers"]
    assert [p["raft_address"] for p in peers_after] == [p["raft_address"] for p in peers_before]


async def test_reads_and_rpc_need_the_token_and_probes_do_not(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    await upsert(client, list(range(5)))
    leader = await client.find_leader()
    for access in (NO_ACCESS, WRONG):
        for rpc in (True, False):
            async with NodeClient([leader], access=access, rpc=rpc, deadline_seconds=3) as intruder:
                with pytest.raises(Unauthorized):
                    await intruder.count("docs")
                with pytest.raises(Unauthorized):
                    await intruder.search("docs", vectors_for([1]).tolist(), 3)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"http://{leader}{RPC_PATH}")
        assert refused.value.status == 401
        for path in ("/healthz", "/readyz", "/metrics"):
            async with session.get(f"http://{leader}{path}") as response:
                assert response.status == 200, path
    async with NodeClient([leader], access=shard_group.access, rpc=True) as member:
        assert await member.count("docs") == 5


async def test_refusals_are_logged_without_the_token(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    leader = await client.find_leader()
    node = shard_group.by_http(leader)
    presented = "Bearer vsn1." + "ab" * 32
    async with aiohttp.ClientSession(headers={"Authorization": presented}) as session:
        for _ in range(5):
            async with session.get(f"http://{leader}/v1/status") as response:
                assert response.status == 401
    await asyncio.sleep(0.5)
    log = node.log_path.read_text()
    refusals = [line for line in log.splitlines() if "refused an unauthenticated request" in line]
    assert len(refusals) == 1, refusals  # rate-limited: one line a minute per caller
    assert "127.0.0.1" in refusals[0]
    assert "ab" * 32 not in log
    assert SECRET not in log
    assert node_token(SECRET) not in log


def _status(nodes: str, cwd: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vecstore.cli.main", "status", "--nodes", nodes, "--json", *extra]
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env}
    return subprocess.run(command, check=False, capture_output=True, text=True, env=environ, cwd=cwd)


def test_cli_talks_to_nodes_with_the_secret_file(shard_group: LocalShardGroup, tmp_path: Path) -> None:
    nodes = ",".join(shard_group.http_addresses)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    ok = _status(nodes, tmp_path, "--secret-file", str(secret_file))
    assert ok.returncode == 0, ok.stderr
    assert '"unreachable"' not in ok.stdout
    with_env = _status(nodes, tmp_path, VECSTORE_CLUSTER_SECRET=SECRET)
    assert with_env.returncode == 0, with_env.stderr
    refused = _status(nodes, tmp_path)
    assert refused.returncode != 0
    assert "node token" in refused.stdout  # the error names what is missing
