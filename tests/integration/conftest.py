"""Fixtures that start real node processes on 127.0.0.1 and always stop them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import LocalShardGroup, free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready, wait_ready_async
from vecstore.transport.node_client import NodeClient

SECRET = "integration-test-secret-0123456789"
NODE_READY_SECONDS = 60.0

# fast compaction and sealing so the tests exercise dumps and sealed segments
TEST_ENV = {
    "VECSTORE_RAFT_MIN_TIMEOUT": "0.6",
    "VECSTORE_RAFT_MAX_TIMEOUT": "1.2",
    "VECSTORE_RAFT_LOG_COMPACTION_MIN_ENTRIES": "40",
    "VECSTORE_RAFT_LOG_COMPACTION_MIN_SECONDS": "600",
    "VECSTORE_SEAL_THRESHOLD": "300",
    "VECSTORE_LOG_LEVEL": "INFO",
}


@pytest.fixture
def shard_group(tmp_path: Path) -> Iterator[LocalShardGroup]:
    """A started 3-node shard group, every node ready; stopped (and reaped) after the test."""
    group = LocalShardGroup(tmp_path / "group", replicas=3, secret=SECRET, extra_env=TEST_ENV)
    group.start()
    try:
        for address in group.http_addresses:  # a leader known and caught up, on every node
            wait_ready(readyz_url(address), NODE_READY_SECONDS)
        yield group
    finally:
        group.stop()


@pytest.fixture
async def client(shard_group: LocalShardGroup) -> AsyncIterator[NodeClient]:
    """A client of the group, with a leader already elected."""
    async with NodeClient(
        shard_group.http_addresses, deadline_seconds=30, access=shard_group.access
    ) as node_client:
        await node_client.find_leader()
        yield node_client


async def wait_converged(client: NodeClient, addresses: list[str], timeout: float = 30.0) -> dict[str, str]:
    """Wait until every node has applied everything committed and digests agree."""
    deadline = time.monotonic() + timeout
    digests: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            statuses = [await client.status(a) for a in addresses]
        except Exception:
            await asyncio.sleep(0.2)
            continue
        digests = {a: s["digest"] for a, s in zip(addresses, statuses, strict=True)}
        applied = {s["last_applied"] for s in statuses}
        if len(set(digests.values())) == 1 and len(applied) == 1:
            return digests
        await asyncio.sleep(0.2)
    raise AssertionError(f"replicas did not converge: {digests}")


def started_cluster(
    directory: Path,
    shards: int,
    replicas: int = 3,
    router_env: dict[str, str] | None = None,
    node_env: dict[str, str] | None = None,
    ready: Callable[[LocalCluster], Coroutine[Any, Any, None]] | None = None,
    tls: bool = False,
) -> Generator[LocalCluster]:
    """`shards` x `replicas` plus a router, with `router_env` added to the router's
    environment and `node_env` to the nodes', started as `vecstore up` starts it, waited
    for (`ready`, by default the router's /readyz over plain HTTP); stopped after."""
    cluster = LocalCluster(directory, shards=shards, replicas=replicas, port=free_ports(1)[0], tls=tls)
    for process in cluster.processes:
        process.env.update(TEST_ENV)
        if process.role == "router":
            process.env.update(router_env or {})
        if process.role == "node":
            process.env.update(node_env or {})
    cluster.start()
    try:
        asyncio.run(ready(cluster) if ready is not None else _wait_router_ready(cluster.router_url))
        yield cluster
    finally:
        cluster.stop()


def join_version_checks() -> None:
    """Wait for the version checks qdrant-client runs in background threads at construction,
    so none of them finds the router already stopped (it would warn from its thread)."""
    for thread in threading.enumerate():
        if "_check_compatibility" in thread.name:
            thread.join(timeout=10)


def qdrant_test_cluster(directory: Path) -> Iterator[LocalCluster]:
    """A 2 x 3 cluster and its router for tests through qdrant-client; its background
    version checks are waited for before the router stops."""
    clusters = started_cluster(directory, shards=2)
    cluster = next(clusters)
    try:
        yield cluster
    finally:
        join_version_checks()
        clusters.close()


def another_router(cluster: LocalCluster, log_name: str) -> Iterator[str]:
    """Another router process of the same cluster (as behind a load balancer), ready; its
    URL, until the generator is closed. It has not seen the first router's writes."""
    listen = f"127.0.0.1:{free_ports(1)[0]}"
    log = (cluster.data_dir / "logs" / f"{log_name}.log").open("ab")
    router = subprocess.Popen(
        [sys.executable, "-m", "vecstore.router", "--listen", listen],
        env=cluster._router_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        asyncio.run(_wait_router_ready(f"http://{listen}"))
        yield f"http://{listen}"
    finally:
        router.terminate()
        router.wait(timeout=30)
        log.close()


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A 2 shards x 3 replicas cluster plus a router."""
    yield from started_cluster(tmp_path / "cluster", shards=2)


@pytest.fixture
def single_shard(tmp_path: Path) -> Iterator[LocalCluster]:
    """1 shard x 3 replicas plus a router (the resharding tests grow it)."""
    yield from started_cluster(tmp_path / "cluster", shards=1)


async def _wait_router_ready(url: str, timeout: float = 180.0) -> None:
    """Wait until the router at `url` (http://host:port) answers /readyz with 200."""
    await wait_ready_async(readyz_url(url), timeout)


# Kafka: the session broker and the ingest harness (tests/integration/kafka/)
from tests.integration.kafka.broker import kafka_bootstrap  # noqa: E402, F401
from tests.integration.kafka.harness import ingest_cluster, workers  # noqa: E402, F401
