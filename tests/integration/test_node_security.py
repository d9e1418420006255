"""The Raft port with a cluster secret: no join, no injection; no secret, no start."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.integration.conftest import SECRET, TEST_ENV, wait_converged
from tests.integration.test_raft_node import create, upsert
from vecstore.cluster.credentials import NodeAccess
from vecstore.launcher.processes import LocalShardGroup, free_ports, node_process
from vecstore.transport.node_client import NodeClient

pytestmark = pytest.mark.security

INTRUDER_SECRET = "not-the-cluster-secret-at-all"


class _Exploit:
    """Unpickling this creates a marker file: proof that a peer executed our bytes."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (Path.touch, (str(self.marker),))


def _frame(payload: bytes) -> bytes:
    return struct.pack("i", len(payload)) + payload


async def test_unauthenticated_pickle_is_never_executed(
    shard_group: LocalShardGroup, client: NodeClient, tmp_path: Path
) -> None:
    await create(client)
    await upsert(client, list(range(50)))
    marker = tmp_path / "pwned"
    message = zlib.compress(pickle.dumps(_Exploit(marker)))
    for node in shard_group.nodes:
        host, port = node.raft_address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            # as the key exchange, and as a message after it; the node may hang up at once
            with contextlib.suppress(OSError):
                for _ in range(3):
                    sock.sendall(_frame(message))
            await asyncio.sleep(0.3)
    await asyncio.sleep(1)
    assert not marker.exists(), "a node unpickled bytes from an unauthenticated peer"
    await upsert(client, list(range(50, 60)))
    await wait_converged(client, shard_group.http_addresses)
    assert await client.count("docs", consistency="strong") == 60


async def test_peer_with_wrong_secret_cannot_join(
    shard_group: LocalShardGroup, client: NodeClient, tmp_path: Path
) -> None:
    await create(client)
    raft_port, http_port = free_ports(2)
    intruder = node_process(
        node_id="intruder",
        shard_id=0,
        raft_address=f"127.0.0.1:{raft_port}",
        http_address=f"127.0.0.1:{http_port}",
        data_dir=tmp_path / "intruder",
        peers=[(n.node_id, n.raft_address, n.http_address) for n in shard_group.nodes],
        secret=INTRUDER_SECRET,
        extra_env=TEST_ENV,
    )
    intruder.start()
    try:
        # even if the real leader tried to add it, the intruder cannot decrypt anything
        await client.change_membership("add", intruder.raft_address)
        await upsert(client, list(range(100)))
        await asyncio.sleep(3)
        intruder_client = NodeClient([intruder.http_address], access=NodeAccess.of_secret(INTRUDER_SECRET))
        try:
            status = await intruder_client.status(intruder.http_address)
        finally:
            await intruder_client.close()
        assert status["leader"]["raft_address"] is None
        assert status["collections"] == {}
        assert await client.count("docs", consistency="strong") == 100
    finally:
        intruder.stop()


def test_node_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    raft_port, http_port = free_ports(2)
    env = {
        "VECSTORE_NODE_ID": "lonely",
        "VECSTORE_DATA_DIR": str(tmp_path / "lonely"),
        "VECSTORE_RAFT_ADDRESS": f"127.0.0.1:{raft_port}",
        "VECSTORE_HTTP_ADDRESS": f"127.0.0.1:{http_port}",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "vecstore.node"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"no cluster secret" in result.stderr
    assert b"--insecure-no-cluster-secret" in result.stderr


def test_secret_is_never_logged(shard_group: LocalShardGroup) -> None:
    for node in shard_group.nodes:
        for _ in range(600):  # up to a minute on a loaded machine
            if node.log_path.exists() and b"node serving" in node.log_path.read_bytes():
                break
            subprocess.run(["sleep", "0.1"], check=True)
        text = node.log_path.read_bytes()
        assert b"node serving" in text
        assert SECRET.encode() not in text
