"""Network failpoints between Raft peers, through the per-node proxies' shared LinkRules.

Only Raft traffic between the nodes of a shard goes through the proxies: the router and
ingest workers still reach every node, as clients outside a partition would.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from vecstore.chaos.cluster import ChaosCluster
from vecstore.chaos.failpoint.base import FaultRecord, FaultTiming, pick_node
from vecstore.chaos.failpoint.proxy import LinkState


@dataclass(frozen=True)
class IsolateNode:
    """Cut every Raft link of one node (the leader, a follower: a minority) for a while."""

    role: str
    per_shard: bool = True

    @property
    def name(self) -> str:
        """partition-leader, partition-follower or partition-any."""
        return f"partition-{self.role}"

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        assert shard is not None
        node = await pick_node(cluster, shard, self.role, rng)
        if node is None:
            return None
        seconds = timing.draw_hold(rng)
        peers = [n.id for n in cluster.shard_nodes(shard) if n.id != node.id]
        record = FaultRecord(self.name, node.id, shard, time.monotonic(), detail=f"{seconds:.1f}s")
        cluster.rules.isolate(node.id, peers)
        try:
            await asyncio.sleep(seconds)
        finally:
            cluster.rules.heal([node.id])
        return record.heal_now()


@dataclass(frozen=True)
class AsymmetricPartition:
    """The leader can hear its peers but not reach them, or the reverse (bytes held, not lost)."""

    per_shard: bool = True
    name: str = "partition-asymmetric"

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        assert shard is not None
        leader = await cluster.leader(shard)
        if leader is None:
            return None
        outbound = rng.random() < 0.5
        seconds = timing.draw_hold(rng)
        direction = "outbound" if outbound else "inbound"
        record = FaultRecord(
            self.name, leader.id, shard, time.monotonic(), detail=f"{direction} {seconds:.1f}s"
        )
        for peer in cluster.shard_nodes(shard):
            if peer.id != leader.id:
                sender, receiver = (leader.id, peer.id) if outbound else (peer.id, leader.id)
                cluster.rules.set(sender, receiver, LinkState(stalled=True))
        try:
            await asyncio.sleep(seconds)
        finally:
            cluster.rules.heal([leader.id])
        return record.heal_now()


@dataclass(frozen=True)
class FlakyLink:
    """One link between two peers is cut, blackholed one way, or slowed, briefly."""

    per_shard: bool = True
    name: str = "flaky-link"

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        assert shard is not None
        first, second = rng.sample(cluster.shard_nodes(shard), 2)
        seconds = timing.draw_hold(rng)
        mode = rng.choice(("cut", "blackhole", "delay"))
        if mode == "cut":
            cluster.rules.cut(first.id, second.id)
            detail = "cut"
        elif mode == "blackhole":
            cluster.rules.set(first.id, second.id, LinkState(stalled=True))
            detail = "blackhole one way"
        else:
            delay = rng.uniform(0.05, 1.0)
            for sender, receiver in ((first, second), (second, first)):
                cluster.rules.set(sender.id, receiver.id, LinkState(delay=delay))
            detail = f"delay {delay * 1000:.0f}ms"
        record = FaultRecord(
            self.name, f"{first.id}<->{second.id}", shard, time.monotonic(), detail=f"{detail} {seconds:.1f}s"
        )
        try:
            await asyncio.sleep(seconds)
        finally:
            for sender, receiver in ((first, second), (second, first)):
                cluster.rules.set(sender.id, receiver.id, LinkState())
        return record.heal_now()
