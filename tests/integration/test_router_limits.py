"""Rate limits (429 with Retry-After) and the audit log, on a real router with API keys."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.router.rate_limit import key_fingerprint
from vecstore.transport.router_client import RouterClient

pytestmark = pytest.mark.security

ADMIN = "admin-key-of-the-limits-test"
READER = "reader-key-of-the-limits-test"
RATE = 5  # requests a second per key, burst 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    router_env = {
        "VECSTORE_API_KEYS": f"{ADMIN}:admin,{READER}:read",
        "VECSTORE_RATE_LIMIT_PER_KEY": str(RATE),
        "VECSTORE_RATE_BURST_PER_KEY": str(RATE),
    }
    yield from started_cluster(tmp_path_factory.mktemp("limits"), shards=1, replicas=1, router_env=router_env)


async def _post(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession(headers={"api-key": key}) as session,
        session.post(url, json=body) as response,
    ):
        await response.read()
        return response.status, dict(response.headers)


async def test_a_key_over_its_rate_gets_429_with_retry_after(cluster: LocalCluster) -> None:
    url = f"{cluster.router_url}/v1/collections"
    async with aiohttp.ClientSession(headers={"api-key": READER}) as session:
        answers = []
        for _ in range(4 * RATE):
            async with session.get(url) as response:
                answers.append((response.status, response.headers.get("Retry-After")))
                if response.status == 429:
                    body = await response.json()
                    assert body["code"] == "rate_limited"
        statuses = [status for status, _ in answers]
        assert statuses.count(200) >= RATE  # the burst
        assert statuses.count(429) >= RATE  # well past it, within a second or two
        assert all(int(after) >= 1 for status, after in answers if status == 429 and after)
        assert all(after is not None for status, after in answers if status == 429)
        await asyncio.sleep(1.5)
        async with session.get(url) as response:
            assert response.status == 200  # refilled
        async with session.get(f"{cluster.router_url}/healthz") as response:
            assert response.status == 200  # probes are never limited
    async with (
        aiohttp.ClientSession(headers={"api-key": ADMIN}) as session,
        session.get(url) as response,
    ):
        assert response.status == 200  # another key has its own bucket


async def test_writes_and_admin_operations_are_audited_reads_are_not(cluster: LocalCluster) -> None:
    await asyncio.sleep(1.5)  # buckets full again
    base = f"{cluster.router_url}/v1/collections/audited"
    async with aiohttp.ClientSession(headers={"api-key": ADMIN}) as session:
        async with session.put(base, json={"dimension": 2}) as response:
            assert response.status == 200
        async with session.post(f"{base}/points/count", json={}) as response:
            assert response.status == 200
    status, _ = await _post(f"{base}/points/delete", READER, {"ids": [1]})
    assert status == 403  # a read key may not write: the refusal is audited too
    async with RouterClient(cluster.router_url, api_key=ADMIN) as client:  # over /v1/rpc
        await client.call("PUT", "/v1/collections/audited/points", {"points": [{"id": 1, "vector": [1, 0]}]})
    await asyncio.sleep(0.5)
    path = cluster.data_dir / "logs" / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = await asyncio.to_thread(path.read_text)
    assert ADMIN not in text and READER not in text
    records = [json.loads(line) for line in text.splitlines()]
    mine = [r for r in records if r.get("collection") == "audited"]
    summary = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"], r["who"]) for r in mine]
    assert summary == [
        ("PUT", "audited", 200, f"admin:{key_fingerprint(ADMIN)}"),
        ("POST", "delete", 403, f"read:{key_fingerprint(READER)}"),
        ("PUT", "points", 200, f"admin:{key_fingerprint(ADMIN)}"),
    ]
    assert mine[1]["error"] == "forbidden"
    assert [r["points"] for r in mine] == [None, None, 1]  # the upsert's count, from its answer
    assert all(r["client"] == "127.0.0.1" and r["time"].endswith("Z") for r in mine)
