"""The router in front of a 2 x 3 cluster: failover, recall, auth, and bad input."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from usearch.index import Index

from tests.integration.conftest import TEST_ENV, _wait_router_ready
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json()


def clustered(rows: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim)).astype(np.float32)
    labels = rng.integers(0, len(centres), size=rows)
    return (centres[labels] + 0.35 * rng.normal(size=(rows, dim))).astype(np.float32)


async def load(session: aiohttp.ClientSession, url: str, vectors: np.ndarray, dim: int) -> None:
    status, body = await call(session, "PUT", f"{url}/v1/collections/docs", json={"dimension": dim})
    assert status == 200, body
    for start in range(0, len(vectors), 500):
        points = [
            {"id": i, "vector": vectors[i].tolist(), "payload": {"group": i % 10}}
            for i in range(start, min(start + 500, len(vectors)))
        ]
        status, body = await call(
            session, "PUT", f"{url}/v1/collections/docs/points", json={"points": points}
        )
        assert status == 200, body


async def test_recall_through_the_cluster_matches_a_single_index(local_cluster: LocalCluster) -> None:
    dim, rows = 32, 4_000
    vectors = clustered(rows, dim, seed=1)
    queries = clustered(100, dim, seed=2)
    normalized = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(normalized_queries @ normalized.T), axis=1)[:, :10]

    single = Index(ndim=dim, metric="cos", connectivity=16, expansion_add=128, expansion_search=64)
    single.add(np.arange(rows, dtype=np.uint64), vectors)
    single_found = single.search(queries, 10).keys
    single_recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(single_found, truth, strict=True)])

    url = local_cluster.router_url
    async with aiohttp.ClientSession() as session:
        await load(session, url, vectors, dim)
        status, body = await call(
            session,
            "POST",
            f"{url}/v1/collections/docs/search",
            json={"vectors": queries.tolist(), "k": 10, "with_payload": False, "consistency": "strong"},
        )
    assert status == 200, body
    found = [[hit["id"] for hit in row] for row in body["results"]]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert recall >= single_recall - 0.01, (recall, single_recall)
    assert recall >= 0.9


async def test_shard_leader_kill_mid_traffic_loses_no_acknowledged_write(
    local_cluster: LocalCluster,
) -> None:
    url = local_cluster.router_url
    dim = 8
    acknowledged: list[int] = []
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        await call(session, "PUT", f"{url}/v1/collections/docs", json={"dimension": dim})

        async def writer(worker: int) -> None:
            batch_number = 0
            while not stop.is_set():
                ids = [worker * 1_000_000 + batch_number * 10 + j for j in range(10)]
                batch_number += 1
                points = [{"id": i, "vector": [float(i % 7 + 1)] * dim} for i in ids]
                with contextlib.suppress(aiohttp.ClientError):
                    status, _ = await call(
                        session, "PUT", f"{url}/v1/collections/docs/points", json={"points": points}
                    )
                    if status == 200:
                        acknowledged.extend(ids)

        tasks = [asyncio.create_task(writer(w)) for w in range(4)]
        await asyncio.sleep(1.5)
        status, body = await call(session, "GET", f"{url}/v1/status")
        leader = next(n for n in body["nodes"] if n.get("role") == "leader" and n["shard_id"] == 0)
        victim = next(p for p in local_cluster.processes if p.http == leader["http_address"])
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        killed_at = len(acknowledged)
        deadline = time.monotonic() + 20
        while len(acknowledged) < killed_at + 400 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
        assert len(acknowledged) >= killed_at + 400, "writes did not resume after the leader kill"

        victim.process.wait(timeout=10)
        assert local_cluster.supervise_once() == [victim.name]  # what `vecstore up` does
        deadline = time.monotonic() + 40
        while True:
            status, body = await call(session, "GET", f"{url}/v1/status")
            node = next(n for n in body["nodes"] if n["http_address"] == victim.http)
            if node.get("role") in ("follower", "leader") and node.get("ready"):
                break
            assert time.monotonic() < deadline, node
            await asyncio.sleep(0.3)

        status, body = await call(
            session, "POST", f"{url}/v1/collections/docs/points/count", json={"consistency": "strong"}
        )
        assert body["count"] >= len(set(acknowledged))
        for start in range(0, len(acknowledged), 1000):
            chunk = acknowledged[start : start + 1000]
            status, body = await call(
                session,
                "POST",
                f"{url}/v1/collections/docs/points/get",
                json={"ids": chunk, "consistency": "strong", "with_payload": False},
            )
            assert status == 200
            assert {p["id"] for p in body["points"]} == set(chunk)


@pytest.fixture
def secured_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "secured", shards=1, replicas=1, port=free_ports(1)[0])
    for process in cluster.processes:
        process.env.update(TEST_ENV)
        if process.role == "router":
            process.env["VECSTORE_API_KEYS"] = "reader-key-01:read,writer-key-01:write,admin-key-001:admin"
    cluster.start()
    try:
        asyncio.run(_wait_router_ready(cluster.router_url))
        yield cluster
    finally:
        cluster.stop()


async def test_api_keys_and_scopes(secured_cluster: LocalCluster) -> None:
    url = secured_cluster.router_url
    create = {"dimension": 4}
    points = {"points": [{"id": 1, "vector": [1, 0, 0, 0]}]}
    async with aiohttp.ClientSession() as session:
        status, body = await call(session, "PUT", f"{url}/v1/collections/docs", json=create)
        assert status == 401 and "api-key" in body["error"]
        status, _ = await call(
            session, "PUT", f"{url}/v1/collections/docs", json=create, headers={"api-key": "wrong-key-000"}
        )
        assert status == 401
        status, body = await call(
            session, "PUT", f"{url}/v1/collections/docs", json=create, headers={"api-key": "writer-key-01"}
        )
        assert status == 403 and "admin" in body["error"]
        status, _ = await call(
            session,
            "PUT",
            f"{url}/v1/collections/docs",
            json=create,
            headers={"Authorization": "Bearer admin-key-001"},
        )
        assert status == 200
        status, _ = await call(
            session,
            "PUT",
            f"{url}/v1/collections/docs/points",
            json=points,
            headers={"api-key": "reader-key-01"},
        )
        assert status == 403
        status, _ = await call(
            session,
            "PUT",
            f"{url}/v1/collections/docs/points",
            json=points,
            headers={"api-key": "writer-key-01"},
        )
        assert status == 200
        status, body = await call(
            session,
            "POST",
            f"{url}/v1/collections/docs/points/count",
            json={},
            headers={"api-key": "reader-key-01"},
        )
        assert status == 200 and body["count"] == 1
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200  # probes need no key


async def test_bad_input_gets_4xx_and_leaves_data_unchanged(local_cluster: LocalCluster) -> None:
    url = local_cluster.router_url
    dim = 4
    async with aiohttp.ClientSession() as session:
        await call(session, "PUT", f"{url}/v1/collections/docs", json={"dimension": dim})
        good = {
            "points": [{"id": i, "vector": [1.0, float(i), 0.0, 0.0], "payload": {"i": i}} for i in range(20)]
        }
        status, _ = await call(session, "PUT", f"{url}/v1/collections/docs/points", json=good)
        assert status == 200
        before = await call(
            session,
            "POST",
            f"{url}/v1/collections/docs/points/scroll",
            json={"limit": 100, "with_vector": True, "consistency": "strong"},
        )

        points = f"{url}/v1/collections/docs/points"
        search = f"{url}/v1/collections/docs/search"
        json_headers = {"Content-Type": "application/json"}
        cases: list[tuple[str, str, dict[str, Any], int, str]] = [
            ("PUT", points, {"json": {"points": [{"id": 1, "vector": [1.0, 2.0]}]}}, 400, "dimensions"),
            (
                "PUT",
                points,
                {"data": '{"points": [{"id": 1, "vector": [NaN, 1, 1, 1]}]}', "headers": json_headers},
                400,
                "finite",
            ),
            ("PUT", points, {"data": "{broken", "headers": json_headers}, 400, "JSON"),
            ("PUT", f"{url}/v1/collections/nope/points", {"json": good}, 404, "does not exist"),
            ("POST", search, {"json": {"vector": [1, 0, 0, 0], "k": 10**9}}, 400, "k must be"),
            (
                "POST",
                search,
                {"json": {"vector": [1, 0, 0, 0], "filter": {"must": [{"key": "i", "range": {"lt": "x"}}]}}},
                400,
                "number",
            ),
            ("POST", search, {"json": {"vector": [1, 0, 0]}}, 400, "dimensions"),
            (
                "PUT",
                points,
                {"data": io.BytesIO(b"x" * (33 * 1024 * 1024)), "headers": json_headers},
                413,
                "too large",
            ),
            ("PUT", points, {"json": {"points": [{"id": -1, "vector": [1, 0, 0, 0]}]}}, 400, "unsigned"),
            ("PUT", points, {"json": {"points": [{"id": 1}]}}, 400, "vector"),
        ]
        for method, target, kwargs, expected, fragment in cases:
            status, body = await call(session, method, target, **kwargs)
            assert status == expected, (target, kwargs.get("json"), body)
            assert body["status"] == "error" and fragment in body["error"], body

        after = await call(
            session,
            "POST",
            f"{url}/v1/collections/docs/points/scroll",
            json={"limit": 100, "with_vector": True, "consistency": "strong"},
        )
        assert after == before
