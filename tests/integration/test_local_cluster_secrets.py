"""`vecstore up`'s processes: files readable by their owner only, API keys in the router only,
and the router and nodes agreeing on the node token without any extra setting."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from vecstore.launcher.local_cluster import LocalCluster

pytestmark = pytest.mark.security

ADMIN_KEY = "admin-key-for-the-file-modes-test"


@pytest.fixture
def keyed_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    """1 shard x 3 replicas whose router has API keys, given the way an operator gives them
    (in the environment `vecstore up` starts from: only the router must get them)."""
    monkeypatch.setenv("VECSTORE_API_KEYS", f"{ADMIN_KEY}:admin")
    yield from started_cluster(tmp_path / "cluster", shards=1)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


async def _write_through_router(cluster: LocalCluster) -> None:
    headers = {"api-key": ADMIN_KEY}
    async with aiohttp.ClientSession(headers=headers) as session:
        url = f"{cluster.router_url}/v1/collections/docs"
        async with session.put(url, json={"dimension": 4}) as response:
            assert response.status == 200, await response.text()
        points = [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0], "payload": {"n": i}} for i in range(10)]
        async with session.put(f"{url}/points", json={"points": points}) as response:
            assert response.status == 200, await response.text()
        async with session.post(f"{url}/points/count", json={"consistency": "strong"}) as response:
            assert (await response.json())["count"] == 10


def test_files_are_private_and_keys_stay_in_the_router(keyed_cluster: LocalCluster) -> None:
    cluster = keyed_cluster
    asyncio.run(_write_through_router(cluster))  # the router's node token was accepted
    assert _mode(cluster.data_dir) == 0o700
    assert _mode(cluster.secret_path) == 0o600
    logs = list((cluster.data_dir / "logs").iterdir())
    assert logs
    for log in logs:
        assert _mode(log) == 0o600, log
    node_dirs = [cluster.data_dir / node.id for shard in cluster.spec.shards for node in shard.nodes]
    checked = 0
    for folder in node_dirs:
        for path in [folder, *folder.rglob("*")]:
            if path.is_symlink():
                continue
            assert _mode(path) & 0o077 == 0, f"{path} is {oct(_mode(path))}"
            checked += 1
    assert checked > len(node_dirs)  # the nodes did write something
    for process in cluster.processes:
        assert process.process is not None
        env = _environ(process.process.pid)
        keys = {k for k in env if k.startswith("VECSTORE_API_KEYS")}
        if process.role == "router":
            assert keys == {"VECSTORE_API_KEYS"}
        else:
            assert not keys, f"{process.name} got the API keys"
        assert "VECSTORE_CLUSTER_SECRET" not in env  # the file's path, never the value
        assert env["VECSTORE_CLUSTER_SECRET_FILE"] == str(cluster.secret_path)
    secret = cluster.secret_path.read_text()
    for log in logs:
        assert secret not in log.read_text()
        assert ADMIN_KEY not in log.read_text()
