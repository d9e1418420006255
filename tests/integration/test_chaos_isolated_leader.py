"""Reproducer (found by the chaos suite): a leader cut off from its peers kept leading for 30 s.

pysyncobj's `leaderFallbackTimeout` defaulted to 30 s, so an isolated leader went on
accepting writes it could never commit (every client waited out the request timeout) and
serving `leader` reads from a state the new majority had moved past. It now steps down
once it has not heard from a majority for two election timeouts.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from vecstore.chaos.cluster import ChaosCluster, ClusterShape

ISOLATED_SECONDS = 12.0


async def test_an_isolated_leader_steps_down(tmp_path: Path) -> None:
    shape = ClusterShape(shards=1, replicas=3)
    cluster = ChaosCluster(tmp_path / "cluster", shape, random.Random(3))
    try:
        await cluster.start()
        leader = await cluster.leader(0)
        assert leader is not None
        peers = [n.id for n in cluster.shard_nodes(0) if n.id != leader.id]
        cluster.rules.isolate(leader.id, peers)
        deadline = time.monotonic() + ISOLATED_SECONDS
        role = "leader"
        while time.monotonic() < deadline and role == "leader":
            await asyncio.sleep(0.3)
            status = await cluster.status(leader)
            role = status["role"] if status else "unreachable"
        assert role != "leader", f"{leader.id} still leads {ISOLATED_SECONDS:.0f}s after being isolated"
        cluster.rules.heal()
        assert await cluster.wait_healthy(0, 60)
    finally:
        await cluster.stop()
