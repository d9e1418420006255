"""After healing, each shard's replicas must reach the same applied index and digest in time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from vecstore.chaos.cluster import ChaosCluster


@dataclass
class ShardConvergence:
    """How one shard's replicas converged (or not) after the faults stopped."""

    shard: int
    converged: bool = False
    seconds: float = 0.0
    digests: dict[str, str | None] = field(default_factory=dict)
    last_applied: dict[str, int | None] = field(default_factory=dict)


async def wait_converged(cluster: ChaosCluster, shard: int, bound: float) -> ShardConvergence:
    """Poll until every replica answers with the same last_applied == commit_index and digest."""
    result = ShardConvergence(shard)
    started = time.monotonic()
    while True:
        statuses = await cluster.statuses(shard)
        result.digests = {node: (s or {}).get("digest") for node, s in statuses.items()}
        result.last_applied = {node: (s or {}).get("last_applied") for node, s in statuses.items()}
        answered = all(s is not None for s in statuses.values())
        caught_up = answered and all(
            s is not None and s.get("last_applied") == s.get("commit_index") for s in statuses.values()
        )
        if (
            caught_up
            and len(set(result.digests.values())) == 1
            and len(set(result.last_applied.values())) == 1
        ):
            result.converged = True
            break
        if time.monotonic() - started > bound:
            break
        await asyncio.sleep(0.3)
    result.seconds = round(time.monotonic() - started, 2)
    return result
