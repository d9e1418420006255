"""The Raft port: bound to the advertised address, refusing oversized and forged frames
before buffering them (issue 14's probe: 2 GiB announced, 256 MiB streamed, had pushed a
leader from 76 to 514 MiB and cost it leadership)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_raft_node import create, upsert
from vecstore.launcher.processes import LocalShardGroup
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
    taken = await asyncio.to_thread(_flood, host, int(port))
    # the node hung up at the header: what it took is socket buffers, not the frame
    assert taken < 64 * 1024 * 1024, taken
    await asyncio.to_thread(_forged, host, int(port))
    await upsert(client, list(range(50, 80)))
    assert await client.count("docs", consistency="strong") == 80
    status = await client.status(await client.find_leader())
    assert status["term"] == term  # no election: the leader never stalled
    await asyncio.sleep(0.5)
    log = await asyncio.to_thread(node.log_path.read_text)
    assert "refused an oversized Raft frame from 127.0.0.1" in log
    assert "2147483647 bytes announced" in log
    assert "refused a Raft frame that failed authentication from 127.0.0.1" in log


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
