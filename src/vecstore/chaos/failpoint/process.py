"""Process failpoints: SIGKILL or SIGSTOP a node, kill the router, kill the ingest worker.

Killed processes are restarted by the cluster's supervisor (as `vecstore up` would), so a
kill is healed when the process runs again; a pause is healed by SIGCONT.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass

from vecstore.chaos.cluster import ChaosCluster
from vecstore.chaos.failpoint.base import FaultRecord, FaultTiming, pick_node

RESTART_WAIT_SECONDS = 20.0


async def wait_running(cluster: ChaosCluster, name: str, within: float = RESTART_WAIT_SECONDS) -> bool:
    """Wait until the supervisor has restarted `name`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cluster.process(name).running:
            return True
        await asyncio.sleep(0.1)
    return False


@dataclass(frozen=True)
class KillNode:
    """SIGKILL the leader, a follower or any node of a shard."""

    role: str
    per_shard: bool = True

    @property
    def name(self) -> str:
        """kill-leader, kill-follower or kill-any."""
        return f"kill-{self.role}"

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        assert shard is not None
        node = await pick_node(cluster, shard, self.role, rng)
        if node is None or not cluster.process(node.id).running:
            return None
        record = FaultRecord(self.name, node.id, shard, time.monotonic())
        if not await cluster.kill(node.id):
            return None
        await wait_running(cluster, node.id)
        return record.heal_now()


@dataclass(frozen=True)
class PauseNode:
    """SIGSTOP a node for longer than the election timeout, then SIGCONT."""

    role: str
    per_shard: bool = True

    @property
    def name(self) -> str:
        """pause-leader, pause-follower or pause-any."""
        return f"pause-{self.role}"

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        assert shard is not None
        node = await pick_node(cluster, shard, self.role, rng)
        if node is None:
            return None
        seconds = rng.uniform(timing.pause, timing.pause * 1.5)
        record = FaultRecord(self.name, node.id, shard, time.monotonic(), detail=f"{seconds:.1f}s")
        if not cluster.signal(node.id, signal.SIGSTOP):
            return None
        try:
            await asyncio.sleep(seconds)
        finally:
            cluster.signal(node.id, signal.SIGCONT)
        return record.heal_now()


@dataclass(frozen=True)
class KillRole:
    """SIGKILL every process of a role that is not a node (the router, the ingest worker)."""

    role: str
    per_shard: bool = False

    @property
    def name(self) -> str:
        """kill-router or kill-ingest."""
        return f"kill-{self.role}"

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        candidates = [p for p in cluster.processes(self.role) if p.running]
        if not candidates:
            return None
        process = rng.choice(candidates)
        record = FaultRecord(self.name, process.name, None, time.monotonic())
        if not await cluster.kill(process.name):
            return None
        await wait_running(cluster, process.name)
        await cluster.wait_ready(process.name, RESTART_WAIT_SECONDS)
        return record.heal_now()
