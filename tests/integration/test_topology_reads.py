"""Reading the newest topology with a shared session leaves no connection behind.

An ingest worker asks every shard's leader for its topology every few seconds through its
one aiohttp session. Each check's RPC connection must be closed: left open, they filled the
session's pool (100 connections) after a few minutes, and every later connection to any
node timed out, stalling ingestion for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from vecstore.cluster.topology import Topology
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.transport.topology import newest_topology

CHECKS = 150


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    directory: Path = tmp_path_factory.mktemp("topology-reads") / "cluster"
    yield from started_cluster(directory, shards=1, replicas=1)


async def test_many_checks_through_one_session_keep_working(cluster: LocalCluster) -> None:
    seed = Topology.of_spec(cluster.spec)
    connector = aiohttp.TCPConnector(limit=20)  # a small pool: a leak shows within CHECKS
    async with aiohttp.ClientSession(connector=connector) as session, asyncio.timeout(120):
        for _ in range(CHECKS):
            topology = await newest_topology(seed, cluster.access, session, deadline_seconds=5.0)
            assert [shard.id for shard in topology.shards] == [0]
        open_connections = sum(len(conns) for conns in connector._conns.values()) + len(connector._acquired)
        assert open_connections <= 2
