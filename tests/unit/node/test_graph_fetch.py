"""The graph endpoint and the follower's fetcher over real HTTP (an in-process aiohttp server
in front of a leader shard): graphs in memory and kept files, small and spooled to disk, the
node token, and the fetcher's answer when the leader is unreachable."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.schema import CollectionSchema
from vecstore.node import graphs as node_graphs
from vecstore.node.caller_auth import caller_auth_middleware
from vecstore.node.graphs import GRAPH_PATH, LeaderGraphs, ship_graph
from vecstore.shard.graphs import GraphAsk, ShippedGraph, Verdict
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

SECRET = "graph-fetch-test-secret-0123456789"
DIM = 16


async def run_here(work: Any) -> Any:
    return work()


@pytest.fixture
def leader(tmp_path: Path) -> Shard:
    shard = Shard(ShardSettings(tmp_path / "leader", seal_threshold=300, gpu=GpuMode.OFF))
    shard.apply(CreateCollection(CollectionSchema("c", DIM)))
    vectors = np.random.default_rng(4).normal(size=(450, DIM)).astype(np.float32)
    shard.apply(Upsert.build("c", list(range(450)), vectors))
    shard.index_until_idle()  # [0, 450) sealed and kept; [450, 450) empty
    return shard


async def serve(leader: Shard) -> TestServer:
    access = NodeAccess.of_secret(SECRET)
    assert access.token is not None
    app = web.Application(middlewares=[caller_auth_middleware(access.token)])

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await ship_graph(leader, run_here, request.match_info["name"], body)

    app.router.add_post(GRAPH_PATH, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.mark.parametrize("spool_bytes", [1 << 30, 0])
async def test_a_kept_graph_travels_from_disk_and_is_spooled_when_large(
    leader: Shard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spool_bytes: int
) -> None:
    monkeypatch.setattr(node_graphs, "SPOOL_BYTES", spool_bytes)
    server = await serve(leader)
    try:
        address = f"127.0.0.1:{server.port}"
        spool = tmp_path / "incoming"
        fetch = LeaderGraphs(lambda: False, lambda: address, NodeAccess.of_secret(SECRET), spool)
        kept = leader.collection("c").sealed[0]
        ask = GraphAsk("c", kept.key_lo, kept.count, kept.key_hi)
        got = await asyncio.to_thread(fetch, ask)
        assert isinstance(got, ShippedGraph) and got.rows == kept.count
        expected = (kept.path / "index.usearch").read_bytes()
        if spool_bytes:
            assert got.data == expected and not got.temporary
        else:
            assert isinstance(got.data, Path) and got.data.parent == spool and got.temporary
            assert got.data.read_bytes() == expected
            got.release()
            assert list(spool.iterdir()) == []
        assert fetch.shipped_bytes == len(expected)
        waiting = await asyncio.to_thread(fetch, GraphAsk("c", kept.key_hi, 10))
        assert waiting is Verdict.WAIT  # nothing published past the sealed segment yet
    finally:
        await server.close()


async def test_without_the_token_or_the_leader_it_builds_here(leader: Shard, tmp_path: Path) -> None:
    server = await serve(leader)
    try:
        address = f"127.0.0.1:{server.port}"
        ask = GraphAsk("c", 0, 1, 300)
        wrong = LeaderGraphs(
            lambda: False, lambda: address, NodeAccess.of_secret("another-secret-0123456789")
        )
        assert await asyncio.to_thread(wrong, ask) is Verdict.BUILD  # 401
        leading = LeaderGraphs(lambda: True, lambda: address, NodeAccess.of_secret(SECRET))
        assert await asyncio.to_thread(leading, ask) is Verdict.BUILD  # no request made
        nobody = LeaderGraphs(lambda: False, lambda: None, NodeAccess.of_secret(SECRET))
        assert await asyncio.to_thread(nobody, ask) is Verdict.BUILD
    finally:
        await server.close()
    gone = LeaderGraphs(lambda: False, lambda: address, NodeAccess.of_secret(SECRET))
    assert await asyncio.to_thread(gone, ask) is Verdict.BUILD  # connection refused
