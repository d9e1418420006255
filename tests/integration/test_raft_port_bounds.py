"""The Raft port: bound to the advertised address, refusing oversized and forged frames
before buffering them (issue 14's probe: 2 GiB announced, 256 MiB streamed, had pushed a
leader from 76 to 514 MiB and cost it leadership), while the largest legitimate append
still passes; and the RPC WebSockets of a node and a router, closed on an oversized frame."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.integration.conftest import started_cluster, wait_converged
from tests.integration.test_raft_node import create, upsert
from vecstore.cluster.codec import encode_command
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import LocalShardGroup
from vecstore.node.config import DEFAULT_MAX_COMMAND_BYTES
from vecstore.transport.node_client import NodeClient
from vecstore.transport.rpc import RPC_PATH

pytestmark = pytest.mark.security

STREAM_BYTES = 256 * 1024 * 1024
CHUNK = 1024 * 1024


def _listening_hosts(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp)."""
    hosts = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            hosts.add(socket.inet_ntoa(struct.pack("<I", int(address, 16))))
    return hosts


def _flood(host: str, port: int) -> int:
    """Announce a 2 GiB frame and stream up to 256 MiB of it; the bytes the node took."""
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock, contextlib.suppress(OSError):
        sock.sendall(struct.pack("i", 2**31 - 1))
        chunk = os.urandom(CHUNK)
        while sent < STREAM_BYTES:
            sock.sendall(chunk)
            sent += CHUNK
    return sent


def _forged(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=10) as sock, contextlib.suppress(OSError):
        body = os.urandom(200)
        sock.sendall(struct.pack("i", len(body)) + body)
        sock.recv(1)  # the node hangs up


async def test_raft_listens_on_the_advertised_address_only(shard_group: LocalShardGroup) -> None:
    for node in shard_group.nodes:
        port = int(node.raft_address.rsplit(":", 1)[1])
        assert _listening_hosts(port) == {"127.0.0.1"}, node.node_id


async def test_oversized_and_forged_frames_are_refused_early(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    await upsert(client, list(range(50)))
    leader = await client.find_leader()
    term = (await client.status(leader))["term"]
    node = shard_group.by_http(leader)
    host, port = node.raft_address.rsplit(":", 1)
    taken = [await asyncio.to_thread(_flood, host, int(port)) for _ in range(2)]
    # the node hung up at the header: what it took is socket buffers, not the frame
    assert max(taken) < 16 * 1024 * 1024, taken
    await asyncio.to_thread(_forged, host, int(port))
    await upsert(client, list(range(50, 80)))
    assert await client.count("docs", consistency="strong") == 80
    status = await client.status(await client.find_leader())
    assert status["term"] == term  # no election: the leader never stalled
    await asyncio.sleep(0.5)
    log = await asyncio.to_thread(node.log_path.read_text)
    # two floods from one host, so from two ports: one line a minute per host
    [oversized] = [line for line in log.splitlines() if "refused an oversized Raft frame" in line]
    assert "from 127.0.0.1: 2147483647 bytes announced" in oversized
    assert "refused a Raft frame that failed authentication from 127.0.0.1" in log


def _worst_case_vectors(rows: int, dim: int) -> np.ndarray:
    """Finite float32 vectors whose every byte is >= 0x80: pysyncobj's pickling (protocol 2)
    doubles such bytes in the log entry, and doubles the entry again in an append."""
    raw = np.random.default_rng(5).integers(0x80, 0x100, size=(rows, dim, 4), dtype=np.uint8)
    raw[:, :, 3] = 0xBF  # sign and exponent: values in (-2, -1]
    return raw.view("<f4").reshape(rows, dim)


async def test_a_command_at_the_size_limit_still_replicates(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    """The bound must not cut legitimate traffic: this 8 MiB command travels as a 32 MiB
    frame. Under a first version of the bound (one batch + 1 MiB: 18 MiB) followers hung up
    on every retry, leadership churned and the write never committed."""
    rows, dim = 500, 4096
    command = Upsert.build("big", list(range(rows)), _worst_case_vectors(rows, dim))
    assert 0.97 * DEFAULT_MAX_COMMAND_BYTES < len(encode_command(command)) <= DEFAULT_MAX_COMMAND_BYTES
    await client.apply(CreateCollection(CollectionSchema("big", dim)))
    await client.apply(command)
    await wait_converged(client, shard_group.http_addresses)
    for address in shard_group.http_addresses:
        counted = await client.call(address, "POST", "/v1/collections/big/points/count", body={})
        assert counted["count"] == rows, address
    for node in shard_group.nodes:
        assert "refused" not in await asyncio.to_thread(node.log_path.read_text), node.node_id


async def test_rpc_websocket_closes_on_a_frame_over_the_command_limit(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    leader = await client.find_leader()
    # the node reads RPC frames up to twice (8 MiB command limit + 1 MiB): node/rpc_server.py
    oversized = b"\x00" * (2 * (9 << 20) + 1)
    async with (
        aiohttp.ClientSession(headers=shard_group.access.headers()) as session,
        session.ws_connect(f"http://{leader}{RPC_PATH}", max_msg_size=0) as ws,
    ):
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(oversized)
        message = await asyncio.wait_for(ws.receive(), 30)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        # 1009, or 1006 when the node hung up while the frame was still being sent
        assert ws.close_code in (aiohttp.WSCloseCode.MESSAGE_TOO_BIG, aiohttp.WSCloseCode.ABNORMAL_CLOSURE)
    await create(client)  # the node still serves
    assert await client.count("docs", consistency="strong") == 0


@pytest.fixture
def one_node_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """One shard of one node, and a router (as `vecstore up` starts them)."""
    yield from started_cluster(tmp_path / "cluster", shards=1, replicas=1)


async def test_router_rpc_websocket_closes_on_a_frame_over_its_body_limit(
    one_node_cluster: LocalCluster,
) -> None:
    url = one_node_cluster.router_url
    oversized = b"\x00" * (32 * 1024 * 1024 + 1)  # the router's max_body_bytes, its HTTP limit too
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}{RPC_PATH}", max_msg_size=0) as ws:
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(oversized)
            message = await asyncio.wait_for(ws.receive(), 30)
            assert message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            )
            assert ws.close_code in (
                aiohttp.WSCloseCode.MESSAGE_TOO_BIG,
                aiohttp.WSCloseCode.ABNORMAL_CLOSURE,
            )
        async with session.get(f"{url}/readyz") as ready:  # the router still serves
            assert ready.status == 200
