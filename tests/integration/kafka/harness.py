"""The ingest harness: a shared 2 x 3 cluster, worker processes, and the checks the tests make.

Workers run as real `python -m vecstore.ingest run` processes with short group timeouts;
the `workers` fixture stops (or kills) every one it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from vecstore.cluster.errors import VecStoreError
from vecstore.ingest.producer import OutgoingRecord, produce
from vecstore.ingest.topics import create_topic
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready_async
from vecstore.transport.node_client import NodeClient

GROUP_TIMEOUTS = ("--session-timeout-ms", "2000", "--heartbeat-interval-ms", "300")
STOP_SECONDS = 15.0


def unique(prefix: str) -> str:
    """A fresh topic, group or collection name."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerProcess:
    """One ingest worker process."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        """Start (or restart) it, appending to its log."""
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )
        return self

    @property
    def alive(self) -> bool:
        """True while it runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self._reap()

    def terminate(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM; SIGKILL if it does not exit in time. Returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self._reap()

    def _reap(self) -> int | None:
        if self.process is None:
            return None
        code = self.process.wait()
        self.exit_codes.append(code)
        self.process = None
        return code

    async def status(self) -> dict[str, Any]:
        """The worker's /v1/status document."""
        body: dict[str, Any] = json.loads(await self._get("/v1/status"))
        return body

    async def metrics(self) -> str:
        """The worker's Prometheus text."""
        return await self._get("/metrics")

    async def _get(self, path: str, wait_seconds: float = 30.0) -> str:
        """GET from the worker's endpoint, waiting for a starting worker to serve it."""
        deadline = time.monotonic() + wait_seconds
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{self.metrics_port}{path}") as response:
                        return await response.text()
                except aiohttp.ClientConnectionError:
                    if not self.alive or time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.1)

    def log(self) -> str:
        """Everything it logged."""
        return self.log_path.read_text(errors="replace")


class Workers:
    """Starts workers against one cluster and broker; stops every one of them."""

    def __init__(self, cluster: LocalCluster, bootstrap: str, directory: Path) -> None:
        self.cluster = cluster
        self.bootstrap = bootstrap
        self.directory = directory
        self.started: list[WorkerProcess] = []

    def start(self, topic: str, group: str, *extra: str, dlq_topic: str | None = None) -> WorkerProcess:
        """Start a worker consuming `topic` in `group`."""
        port = free_ports(1)[0]
        command = [
            sys.executable,
            "-m",
            "vecstore.ingest",
            "run",
            "--bootstrap",
            self.bootstrap,
            "--topics",
            topic,
            "--group",
            group,
            "--spec",
            str(self.cluster.spec_path),
            "--metrics-port",
            str(port),
            "--batch-max-records",
            "500",
            "--max-in-flight",
            "2000",
            *GROUP_TIMEOUTS,
            *(("--dlq-topic", dlq_topic) if dlq_topic else ()),
            *extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
        env["VECSTORE_CLUSTER_SECRET_FILE"] = str(self.cluster.secret_path)
        name = f"worker-{len(self.started)}"
        worker = WorkerProcess(name, command, env, self.directory / f"{name}.log", port)
        self.started.append(worker)
        return worker.start()

    def stop_all(self) -> None:
        """SIGKILL every worker still running (tests stop theirs gracefully when it matters)."""
        for worker in self.started:
            worker.kill()


@pytest.fixture(scope="session")
def ingest_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One 2 x 3 cluster shared by the ingest tests (each uses its own topic and collection)."""
    from tests.integration.conftest import TEST_ENV  # not at the top: conftest imports this module

    cluster = LocalCluster(
        tmp_path_factory.mktemp("ingest") / "cluster", shards=2, replicas=3, port=free_ports(1)[0]
    )
    for process in cluster.processes:
        process.env.update(TEST_ENV)
    cluster.start()
    try:
        asyncio.run(wait_for_leaders(cluster))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def workers(ingest_cluster: LocalCluster, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Workers]:
    """A worker factory; every worker it started is gone after the test."""
    started = Workers(ingest_cluster, kafka_bootstrap, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


# ---- cluster side -----------------------------------------------------------------------


def shard_clients(cluster: LocalCluster, session: aiohttp.ClientSession) -> list[NodeClient]:
    """One client per shard."""
    return [
        NodeClient([n.http for n in shard.nodes], session=session, deadline_seconds=30, access=cluster.access)
        for shard in cluster.spec.shards
    ]


async def wait_for_leaders(cluster: LocalCluster) -> None:
    """Every shard has a leader."""
    async with aiohttp.ClientSession() as session:
        for client in shard_clients(cluster, session):
            await client.find_leader()


async def create_collection(cluster: LocalCluster, name: str, dimension: int) -> None:
    """Create a collection on every shard through the router (waiting for it to be ready)."""
    await wait_ready_async(readyz_url(cluster.router_url), 60)
    async with aiohttp.ClientSession() as session:
        body = {"dimension": dimension}
        async with session.put(f"{cluster.router_url}/v1/collections/{name}", json=body) as response:
            assert response.status == 200, await response.text()


async def leader_statuses(cluster: LocalCluster) -> list[dict[str, Any]]:
    """The status document of every shard's leader (waiting for one where needed)."""
    statuses = []
    async with aiohttp.ClientSession() as session:
        for client in shard_clients(cluster, session):
            for _ in range(50):
                try:
                    statuses.append(await client.status(await client.find_leader()))
                    break
                except VecStoreError:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"shard of {client.addresses} has no leader")
    return statuses


@dataclass
class PartitionTotals:
    """One topic-partition's ingest counters, summed over the shards."""

    applied: int = 0
    skipped: int = 0
    rejected: int = 0
    applied_offset: int = -1
    """The highest offset any shard applied."""


async def ingest_totals(cluster: LocalCluster, topic: str) -> dict[int, PartitionTotals]:
    """Per partition of `topic`: applied, skipped and rejected over all shards (leaders)."""
    totals: dict[int, PartitionTotals] = defaultdict(PartitionTotals)
    for status in await leader_statuses(cluster):
        for row in status["ingest"]:
            if row["topic"] != topic:
                continue
            entry = totals[row["partition"]]
            entry.applied += row["records_applied"]
            entry.skipped += row["records_skipped"]
            entry.rejected += row["records_rejected"]
            entry.applied_offset = max(entry.applied_offset, row["applied_offset"])
    return dict(totals)


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, poll: float = 0.5
) -> None:
    """Poll `check` until it is true, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def wait_applied(cluster: LocalCluster, topic: str, expected: int, timeout: float = 60.0) -> None:
    """Wait until the shards applied (or rejected) `expected` records of `topic`."""
    seen: list[int] = [0]

    async def done() -> bool:
        totals = await ingest_totals(cluster, topic)
        seen[0] = sum(t.applied + t.rejected for t in totals.values())
        return seen[0] >= expected

    with contextlib.suppress(AssertionError):
        await wait_until(done, timeout, "")
    assert seen[0] >= expected, f"only {seen[0]} of {expected} records of {topic} were applied"


# ---- broker side ------------------------------------------------------------------------


async def new_topic(bootstrap: str, prefix: str = "ingest", partitions: int = 4) -> str:
    """Create a fresh topic."""
    topic = unique(prefix)
    assert await create_topic(bootstrap, topic, partitions)
    return topic


async def send(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> int:
    """Produce (key, value) records; returns how many were acknowledged."""
    return await produce(bootstrap, topic, (OutgoingRecord(k, v) for k, v in records), progress=False)
