"""The router's `/v1/rpc` WebSocket: the native API, its errors and its API-key scopes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.integration.conftest import TEST_ENV, _wait_router_ready
from vecstore.cluster.errors import (
    CollectionNotFound,
    Forbidden,
    InvalidRequest,
    Unauthorized,
)
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.transport.router_client import RouterClient
from vecstore.transport.rpc import RPC_PATH, decode_response, encode_request

DIM = 8
KEYS = "reader-key-01:read,writer-key-01:write,admin-key-001:admin"


def start(tmp_path: Path, keys: str | None) -> LocalCluster:
    cluster = LocalCluster(tmp_path / "cluster", shards=2, replicas=1, port=free_ports(1)[0])
    for process in cluster.processes:
        process.env.update(TEST_ENV)
        if process.role == "router" and keys:
            process.env["VECSTORE_API_KEYS"] = keys
    cluster.start()
    return cluster


@pytest.fixture
def open_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = start(tmp_path, None)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def keyed_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = start(tmp_path, KEYS)
    try:
        yield cluster
    finally:
        cluster.stop()


def points(ids: range) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [{"id": i, "vector": rng.normal(size=DIM).tolist(), "payload": {"even": i % 2 == 0}} for i in ids]


async def test_rpc_and_http_give_the_same_answers(open_cluster: LocalCluster) -> None:
    url = open_cluster.router_url
    await _wait_router_ready(url)
    rows = points(range(300))
    async with RouterClient(url) as rpc, RouterClient(url, rpc=False) as http:
        assert await rpc.create_collection({"name": "docs", "dimension": DIM, "metric": "l2"})
        assert await rpc.upsert("docs", rows) == 300
        query = {"vector": rows[17]["vector"], "k": 5, "consistency": "strong"}
        path = "/v1/collections/docs/search"
        by_rpc = await rpc.request("POST", path, query)
        by_http = await http.request("POST", path, query)
        assert [h["id"] for h in by_rpc["result"]] == [h["id"] for h in by_http["result"]]
        assert by_rpc["result"][0]["id"] == 17
        filtered = {**query, "filter": {"must": [{"key": "even", "match": {"value": True}}]}}
        hits = (await rpc.request("POST", path, filtered))["result"]
        assert hits and all(h["id"] % 2 == 0 for h in hits)
        for body in ({}, {"filter": {"must": [{"key": "even", "match": {"value": False}}]}}):
            count_path = "/v1/collections/docs/points/count"
            assert (await rpc.request("POST", count_path, body)) == (
                await http.request("POST", count_path, body)
            )
        got = await rpc.request("POST", "/v1/collections/docs/points/get", {"ids": [1, 2, 999]})
        assert sorted(p["id"] for p in got["points"]) == [1, 2]
        assert rpc._channel is not None and not rpc._channel.closed
        assert http._channel is None
        # the readiness probe is plain HTTP, also for a client that talks RPC
        assert await rpc.ready() is True
        await rpc.wait_ready(5)


async def test_bad_input_over_rpc_gets_the_http_errors(open_cluster: LocalCluster) -> None:
    url = open_cluster.router_url
    await _wait_router_ready(url)
    async with RouterClient(url, deadline_seconds=5) as client:
        await client.create_collection({"name": "docs", "dimension": DIM})
        await client.upsert("docs", points(range(10)))
        with pytest.raises(InvalidRequest, match="dimension"):
            await client.request("POST", "/v1/collections/docs/search", {"vector": [1.0, 2.0]})
        with pytest.raises(InvalidRequest):
            await client.request("POST", "/v1/collections/docs/search", {"vector": [float("nan")] * DIM})
        with pytest.raises(CollectionNotFound):
            await client.request("POST", "/v1/collections/nope/search", {"vector": [0.0] * DIM})
        with pytest.raises(InvalidRequest, match=r"filter|match"):
            await client.request(
                "POST",
                "/v1/collections/docs/search",
                {"vector": [0.0] * DIM, "filter": {"must": [{"key": "a"}]}},
            )
        assert (await client.request("POST", "/v1/collections/docs/points/count", {}))["count"] == 10
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}{RPC_PATH}") as ws:
        await ws.send_bytes(b"\xc1 garbage")
        await ws.send_bytes(encode_request(4, "POST", "/v1/qdrant/only", {}))
        await ws.send_bytes(encode_request(5, "POST", "/v1/collections/docs/points/count", {}))
        answers = {}
        for _ in range(3):
            request_id, status, body = decode_response((await ws.receive(timeout=10)).data)
            answers[request_id] = (status, body)
    assert answers[0][0] == 400
    assert answers[4][0] == 404 and "no native API operation" in answers[4][1]["error"]
    assert answers[5] == (200, {"status": "ok", "count": 10})


async def test_api_keys_are_checked_per_connection_and_per_operation(keyed_cluster: LocalCluster) -> None:
    url = keyed_cluster.router_url
    await _wait_router_ready(url)
    async with RouterClient(url, deadline_seconds=5) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.request("GET", "/v1/collections")
    async with RouterClient(url, api_key="wrong-key-000", deadline_seconds=5) as wrong:
        with pytest.raises(Unauthorized):
            await wrong.request("GET", "/v1/collections")
    async with RouterClient(url, api_key="admin-key-001") as admin:
        assert await admin.create_collection({"name": "docs", "dimension": DIM})
    async with RouterClient(url, api_key="reader-key-01", deadline_seconds=5) as reader:
        assert (await reader.request("POST", "/v1/collections/docs/points/count", {}))["count"] == 0
        with pytest.raises(Forbidden, match="write"):
            await reader.upsert("docs", points(range(3)))
        with pytest.raises(Forbidden, match="admin"):
            await reader.request("DELETE", "/v1/collections/docs")
        assert reader._channel is not None and not reader._channel.closed  # refusals keep the connection
    async with RouterClient(url, api_key="writer-key-01") as writer:
        assert await writer.upsert("docs", points(range(3))) == 3
        with pytest.raises(Forbidden, match="admin"):
            await writer.request("PUT", "/v1/collections/other", {"dimension": DIM})
