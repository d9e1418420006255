"""A local cluster wired for fault injection: `vecstore up` plus a Raft proxy per node.

Every node gets its own loopback IP (Linux routes all of 127/8 to `lo`). The spec
advertises the proxy's address as the node's Raft address; the node binds its real Raft
port with VECSTORE_RAFT_BIND and its outgoing connections with VECSTORE_RAFT_SOURCE_HOST,
so each proxy knows which peer is talking. This module starts and stops processes and
proxies; it never decides which fault to inject.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from vecstore.chaos.failpoint.proxy import LinkRules, ProxyServer
from vecstore.cluster.spec import ClusterSpec, NodeSpec, RouterSpec, ShardSpec, write_spec
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import ManagedProcess, free_ports
from vecstore.launcher.readiness import NotReady, probe, readyz_url, wait_ready_async

log = logging.getLogger(__name__)

SUPERVISE_SECONDS = 0.3
STATUS_SECONDS = 2.0


@dataclass(frozen=True)
class ClusterShape:
    """The cluster a scenario runs against, and the settings its processes get."""

    shards: int = 2
    replicas: int = 3
    raft_min_timeout: float = 0.6
    raft_max_timeout: float = 1.2
    node_request_timeout: float = 5.0
    router_request_timeout: float = 8.0
    log_compaction_entries: int = 300
    seal_threshold: int = 300
    with_kafka: bool = False
    spare_shards: int = 0
    """Shards planned (addresses, proxies) but not started: resharding scenarios add them."""

    def node_env(self) -> dict[str, str]:
        """Environment shared by every node process."""
        return {
            "VECSTORE_RAFT_MIN_TIMEOUT": str(self.raft_min_timeout),
            "VECSTORE_RAFT_MAX_TIMEOUT": str(self.raft_max_timeout),
            "VECSTORE_RAFT_LOG_COMPACTION_MIN_ENTRIES": str(self.log_compaction_entries),
            "VECSTORE_RAFT_LOG_COMPACTION_MIN_SECONDS": "600",
            "VECSTORE_REQUEST_TIMEOUT": str(self.node_request_timeout),
            "VECSTORE_SEAL_THRESHOLD": str(self.seal_threshold),
            "VECSTORE_LOG_LEVEL": "INFO",
        }


@dataclass(frozen=True)
class ChaosNode:
    """One node: its loopback IP, advertised (proxy) and real Raft addresses, HTTP address."""

    id: str
    shard: int
    ip: str
    raft: str
    raft_bind: str
    http: str


def loopback_subnet(rng: random.Random) -> str:
    """A random 127.a.b prefix, so concurrent chaos runs on one machine do not share IPs."""
    return f"127.{rng.randrange(100, 250)}.{rng.randrange(1, 250)}"


def plan_nodes(shape: ClusterShape, subnet: str, shards: range | None = None) -> list[ChaosNode]:
    """Addresses for every node: its own IP, a proxy port, a real Raft port, an HTTP port."""
    nodes = []
    for shard in shards if shards is not None else range(shape.shards):
        for replica in range(shape.replicas):
            ip = f"{subnet}.{2 + shard * shape.replicas + replica}"
            proxy, raft, http = free_ports(3, host=ip)
            nodes.append(
                ChaosNode(f"s{shard}-n{replica}", shard, ip, f"{ip}:{proxy}", f"{ip}:{raft}", f"{ip}:{http}")
            )
    return nodes


def build_spec(shape: ClusterShape, nodes: Sequence[ChaosNode], router_listen: str) -> ClusterSpec:
    """The cluster spec: every node advertises its proxy as its Raft address."""
    return ClusterSpec(
        shards=tuple(
            ShardSpec(shard, tuple(NodeSpec(n.id, n.raft, n.http) for n in nodes if n.shard == shard))
            for shard in range(shape.shards)
        ),
        router=RouterSpec(
            listen=router_listen,
            request_timeout=shape.router_request_timeout,
            shard_timeout=min(5.0, shape.router_request_timeout),
        ),
    )


class ChaosCluster:
    """Processes, proxies and a supervisor; the handle every failpoint works through."""

    def __init__(self, workdir: Path, shape: ClusterShape, rng: random.Random) -> None:
        self.workdir = workdir
        self.shape = shape
        self.rules = LinkRules()
        subnet = loopback_subnet(rng)
        self.nodes = plan_nodes(shape, subnet)
        self.spare_nodes = plan_nodes(shape, subnet, range(shape.shards, shape.shards + shape.spare_shards))
        """Nodes of the spare shards: not in `nodes` (what validators and per-shard faults see)."""
        self.by_id = {node.id: node for node in (*self.nodes, *self.spare_nodes)}
        router_listen = f"127.0.0.1:{free_ports(1)[0]}"
        self.spec = build_spec(shape, self.nodes, router_listen)
        workdir.mkdir(parents=True, exist_ok=True)
        write_spec(self.spec, workdir / "spec.json")  # LocalCluster reuses an existing spec
        self.local = _local_cluster(workdir, shape)
        node_of_ip = {node.ip: node.id for node in (*self.nodes, *self.spare_nodes)}
        for node in self.spare_nodes:
            self.local.extra_node_env[node.id] = {
                **shape.node_env(),
                "VECSTORE_RAFT_BIND": node.raft_bind,
                "VECSTORE_RAFT_SOURCE_HOST": node.ip,
            }
        for process in self.local.processes:
            if process.role == "node":
                node = self.by_id[process.name]
                process.env.update(shape.node_env())
                process.env["VECSTORE_RAFT_BIND"] = node.raft_bind
                process.env["VECSTORE_RAFT_SOURCE_HOST"] = node.ip
        self.proxies = [
            ProxyServer(node.id, _split(node.raft), _split(node.raft_bind), self.rules, node_of_ip)
            for node in (*self.nodes, *self.spare_nodes)
        ]
        self.held: set[str] = set()
        """Processes the supervisor must leave down (a removed member, a paused test)."""
        self.restarts: dict[str, int] = {}
        self.broker_died = False
        self.retired_ingest: list[dict[str, Any]] = []
        """Ingest counters of spare shards taken out of the cluster (still part of the sums)."""
        self._supervisor: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def router_url(self) -> str:
        """The router's base URL."""
        return self.local.router_url

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session used for status and admin calls."""
        assert self._session is not None, "start() the cluster first"
        return self._session

    async def start(self, ready_seconds: float = 90.0) -> None:
        """Start proxies, then processes; wait for the router and a leader in every shard."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=STATUS_SECONDS), headers=self.local.access.headers()
        )
        for proxy in self.proxies:
            await proxy.start()
        self.local.start()
        self._supervisor = asyncio.create_task(self._supervise())
        deadline = time.monotonic() + ready_seconds
        try:
            await wait_ready_async(readyz_url(self.router_url), ready_seconds, 0.3)
        except NotReady as error:
            raise RuntimeError(f"the chaos cluster in {self.workdir} did not become ready: {error}") from None
        while time.monotonic() < deadline:
            if await self._router_ready() and all(
                [await self.leader(shard) for shard in range(self.shape.shards)]
            ):
                return
            await asyncio.sleep(0.3)
        raise RuntimeError(f"the chaos cluster in {self.workdir} did not become ready in {ready_seconds}s")

    async def stop(self) -> None:
        """Stop the supervisor, every process (SIGCONT first) and every proxy."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for process in self.local.processes:
            self.signal(process.name, signal.SIGCONT)
        await asyncio.to_thread(self.local.stop)
        for proxy in self.proxies:
            await proxy.stop()
        if self._session is not None:
            await self._session.close()

    async def _supervise(self) -> None:
        """Restart exited processes that are not held down, like `vecstore up` does; start
        and stop the nodes of shards added to or removed from spec.json."""
        while True:
            await asyncio.to_thread(self.local.follow_spec)
            for process in self.local.processes:
                if process.name in self.held or process.process is None or process.running:
                    continue
                if process.role == "broker":
                    # the development broker keeps its log in memory: a restarted one is a new,
                    # empty Kafka, and the ingest checks would be meaningless. Chaos never kills it.
                    self.broker_died = True
                    continue
                log.info("restarting %s (exit %s)", process.name, process.process.returncode)
                self.restarts[process.name] = self.restarts.get(process.name, 0) + 1
                process.restarts += 1
                process.start()
            await asyncio.sleep(SUPERVISE_SECONDS)

    # ---- processes -----------------------------------------------------------------------

    def process(self, name: str) -> ManagedProcess:
        """A managed process by name (node id, "router-0", "ingest-0", ...)."""
        return next(p for p in self.local.processes if p.name == name)

    def processes(self, role: str) -> list[ManagedProcess]:
        """Every managed process with this role."""
        return [p for p in self.local.processes if p.role == role]

    def signal(self, name: str, signum: int) -> bool:
        """Send a signal to a running process; False if it is not running."""
        return self.process(name).signal(signum)

    async def kill(self, name: str) -> bool:
        """SIGKILL a process and reap it (the supervisor restarts it unless held)."""
        process = self.process(name)
        if not process.running:
            return False
        await asyncio.to_thread(process.kill, 10)
        return True

    async def start_now(self, name: str) -> None:
        """Start a stopped process at once (without waiting for the supervisor)."""
        process = self.process(name)
        if not process.running:
            process.start()

    # ---- status --------------------------------------------------------------------------

    def shard_nodes(self, shard: int) -> list[ChaosNode]:
        """The nodes of one shard (a spare one too)."""
        return [node for node in (*self.nodes, *self.spare_nodes) if node.shard == shard]

    def spare_spec(self, index: int = 0) -> ShardSpec:
        """A spare shard as the spec and the coordinator name it."""
        shard = self.shape.shards + index
        return ShardSpec(shard, tuple(NodeSpec(n.id, n.raft, n.http) for n in self.shard_nodes(shard)))

    def publish_spare(self, running: bool, index: int = 0) -> None:
        """Add the spare shard to spec.json (the supervisor starts its nodes) or take it out
        (they stop; their data is wiped, so a later add starts a fresh group)."""
        spare = self.spare_spec(index)
        shards = tuple(s for s in self.spec.shards if s.id != spare.id)
        spec = ClusterSpec((*shards, spare) if running else shards, self.spec.router)
        partial = self.workdir / "spec.partial.json"
        write_spec(spec, partial)
        partial.replace(self.workdir / "spec.json")
        self.spec = spec

    async def status(self, node: ChaosNode) -> dict[str, Any] | None:
        """A node's /v1/status document, or None if it does not answer."""
        try:
            async with self.session.get(f"http://{node.http}/v1/status") as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def statuses(self, shard: int) -> dict[str, dict[str, Any] | None]:
        """Status of every node of a shard, by node id."""
        nodes = self.shard_nodes(shard)
        answers = await asyncio.gather(*(self.status(node) for node in nodes))
        return {node.id: answer for node, answer in zip(nodes, answers, strict=True)}

    async def leader(self, shard: int) -> ChaosNode | None:
        """The node that leads `shard` at the highest term, or None."""
        best: tuple[int, ChaosNode] | None = None
        for node_id, status in (await self.statuses(shard)).items():
            if status is not None and status.get("role") == "leader":
                term = int(status.get("term") or 0)
                if best is None or term > best[0]:
                    best = (term, self.by_id[node_id])
        return None if best is None else best[1]

    async def followers(self, shard: int) -> list[ChaosNode]:
        """Nodes of `shard` that answer as followers."""
        statuses = await self.statuses(shard)
        return [
            self.by_id[node_id]
            for node_id, status in statuses.items()
            if status is not None and status.get("role") == "follower"
        ]

    async def shard_healthy(self, shard: int) -> bool:
        """Every node answers and is ready, and exactly one leads."""
        statuses = await self.statuses(shard)
        if any(status is None or not status.get("ready") for status in statuses.values()):
            return False
        return sum(1 for status in statuses.values() if status and status.get("role") == "leader") == 1

    async def wait_healthy(self, shard: int, within: float) -> bool:
        """Wait until `shard` is healthy; False if it is not within `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await self.shard_healthy(shard):
                return True
            await asyncio.sleep(0.3)
        return False

    async def _router_ready(self) -> bool:
        answer = await asyncio.to_thread(probe, readyz_url(self.router_url), STATUS_SECONDS)
        return answer.ready

    async def wait_ready(self, name: str, within: float) -> bool:
        """Wait until a process with an HTTP endpoint answers /readyz (True at once without one)."""
        address = self.process(name).http
        if address is None:
            return True
        return await _wait_ready(readyz_url(address), within)

    async def wait_router(self, within: float) -> bool:
        """Wait until the router answers /readyz."""
        return await _wait_ready(readyz_url(self.router_url), within)


async def _wait_ready(url: str, within: float) -> bool:
    try:
        await wait_ready_async(url, within, 0.2)
    except NotReady as error:
        log.info("%s", error)
        return False
    return True


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _local_cluster(workdir: Path, shape: ClusterShape) -> LocalCluster:
    """`vecstore up`'s LocalCluster over the spec already written in `workdir`."""
    options: dict[str, Any] = {}
    if shape.with_kafka:
        if "with_kafka" not in inspect.signature(LocalCluster).parameters:
            raise RuntimeError("this LocalCluster cannot start Kafka (ingestion has not landed)")
        options["with_kafka"] = True
    return LocalCluster(workdir, shards=shape.shards, replicas=shape.replicas, **options)
