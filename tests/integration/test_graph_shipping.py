"""Graphs built once, on a real 3-node shard group: the leader builds every HNSW graph, the
followers adopt them (`vecstore_graph_rows{how="adopted"}`) instead of building their own,
and answer searches as the leader does. The graph endpoint needs the node token."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import numpy as np

from tests.integration.conftest import wait_converged
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema
from vecstore.launcher.processes import LocalShardGroup
from vecstore.transport.node_client import NodeClient

DIM = 32
POINTS = 3_000  # ten memtables of TEST_ENV's seal threshold (300): frozen, sealed, shipped
BATCH = 150


async def graph_rows(session: aiohttp.ClientSession, address: str) -> dict[str, float]:
    async with session.get(f"http://{address}/metrics") as response:
        text = await response.text()
    found = dict(re.findall(r'^vecstore_graph_rows\{how="(\w+)"\} (\S+)$', text, re.MULTILINE))
    return {how: float(value) for how, value in found.items()}


async def test_followers_adopt_the_leaders_graphs(shard_group: LocalShardGroup, client: NodeClient) -> None:
    vectors = np.random.default_rng(11).normal(size=(POINTS, DIM)).astype(np.float32)
    leader = await client.find_leader()
    await client.apply(CreateCollection(CollectionSchema("docs", DIM)))
    for start in range(0, POINTS, BATCH):
        ids = list(range(start, start + BATCH))
        await client.apply(Upsert.build("docs", ids, vectors[start : start + BATCH]))
    addresses = shard_group.http_addresses
    await wait_converged(client, addresses)
    followers = [a for a in addresses if a != leader]

    # every node indexes everything: the leader by building, the followers mostly by adopting
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            lags = [(await client.status(a))["indexing_lag"] for a in addresses]
            rows = {a: await graph_rows(session, a) for a in addresses}
            if not any(lags) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert lags == [0, 0, 0], f"indexing lag per node: {lags}"
    assert rows[leader].get("built", 0) >= POINTS
    assert rows[leader].get("adopted", 0) == 0
    for follower in followers:
        adopted, built = rows[follower].get("adopted", 0), rows[follower].get("built", 0)
        assert adopted + built >= POINTS
        assert adopted >= 0.8 * POINTS, f"follower {follower} adopted {adopted} rows, built {built}"

    # a follower's graphs answer as the leader's
    queries = vectors[::250] + 0.05
    for query in queries:
        body = {"vectors": [query.tolist()], "k": 10, "consistency": "eventual"}
        expected = await client.call(leader, "POST", "/v1/collections/docs/search", body)
        for follower in followers:
            answer = await client.call(follower, "POST", "/v1/collections/docs/search", body)
            assert [h["id"] for h in answer["results"][0]] == [h["id"] for h in expected["results"][0]]


async def test_the_graph_endpoint_needs_the_node_token(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    leader = await client.find_leader()
    await client.apply(CreateCollection(CollectionSchema("docs", DIM)))
    url = f"http://{leader}/v1/collections/docs/graph"
    ask = {"key_lo": 0, "min_rows": 1, "key_hi": None}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=ask) as response:
            assert response.status == 401
        headers = shard_group.access.headers()
        async with session.post(url, json={"key_lo": -1, "min_rows": 1}, headers=headers) as response:
            assert response.status == 400
            assert "key_lo" in (await response.json())["error"]
        async with session.post(url, json=ask, headers=headers) as response:
            assert response.status == 204  # nothing published yet: "wait"
            assert response.headers["X-Vecstore-Graph"] == "wait"
