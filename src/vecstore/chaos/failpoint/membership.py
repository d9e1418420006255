"""Membership change during traffic: remove a follower, stop it, add it back, restart it.

Every other cycle the removed node's data directory is wiped, so it comes back as a new
member that must catch up from the leader's dump. Data is wiped only after the removal
was acknowledged: wiping a member's disk is an operator error, not a test of the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from vecstore.chaos.cluster import ChaosCluster, ChaosNode
from vecstore.chaos.failpoint.base import FaultRecord, FaultTiming

log = logging.getLogger(__name__)

CHANGE_SECONDS = 30.0
READY_SECONDS = 30.0


async def change_membership(cluster: ChaosCluster, shard: int, action: str, node: ChaosNode) -> bool:
    """Ask the shard's leader to add or remove `node`, retrying until acknowledged or out of time."""
    deadline = time.monotonic() + CHANGE_SECONDS
    timeout = aiohttp.ClientTimeout(total=cluster.shape.node_request_timeout + 3)
    while time.monotonic() < deadline:
        leader = await cluster.leader(shard)
        if leader is not None and leader.id != node.id:
            body = {"action": action, "raft_address": node.raft}
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with cluster.session.post(
                    f"http://{leader.http}/v1/membership", json=body, timeout=timeout
                ) as response:
                    if response.status == 200:
                        return True
                    log.info("membership %s %s: %s", action, node.id, await response.text())
        if await is_member(cluster, shard, node) == (action == "add"):
            return True  # an earlier attempt was applied after all
        await asyncio.sleep(0.5)
    return False


async def is_member(cluster: ChaosCluster, shard: int, node: ChaosNode) -> bool | None:
    """Whether the current leader counts `node` among its peers (None: no leader known)."""
    leader = await cluster.leader(shard)
    if leader is None:
        return None
    if leader.id == node.id:
        return True
    status = await cluster.status(leader)
    if status is None:
        return None
    return any(peer.get("raft_address") == node.raft for peer in status.get("peers", []))


async def restore_members(cluster: ChaosCluster) -> list[str]:
    """Add back every node the leaders do not count as members; returns those re-added."""
    restored = []
    for node in cluster.nodes:
        if await is_member(cluster, node.shard, node) is False:
            added = await change_membership(cluster, node.shard, "add", node)
            restored += [node.id] if added else []
    return restored


@dataclass
class MembershipChange:
    """Remove a follower, stop it, (wipe it,) add it back, restart it."""

    per_shard: bool = True
    name: str = "membership"
    cycles: dict[int, int] = field(default_factory=dict)

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        assert shard is not None
        followers = await cluster.followers(shard)
        if not followers or not await cluster.shard_healthy(shard):
            return None
        node = rng.choice(followers)
        cycle = self.cycles[shard] = self.cycles.get(shard, 0) + 1
        wipe = cycle % 2 == 0
        record = FaultRecord(
            self.name, node.id, shard, time.monotonic(), detail="remove+wipe+add" if wipe else "remove+add"
        )
        if not await change_membership(cluster, shard, "remove", node):
            record.detail += ": remove not acknowledged"
            return record.heal_now()
        cluster.held.add(node.id)  # the supervisor must not restart it while it is out
        await cluster.kill(node.id)
        if wipe:
            data_dir = Path(cluster.process(node.id).env["VECSTORE_DATA_DIR"])
            await asyncio.to_thread(shutil.rmtree, data_dir, True)
        await asyncio.sleep(timing.draw_hold(rng))
        if not await change_membership(cluster, shard, "add", node):
            record.detail += ": add not acknowledged (the final heal adds it back)"
            return record.heal_now()
        cluster.held.discard(node.id)
        await cluster.start_now(node.id)
        await cluster.wait_healthy(shard, READY_SECONDS)
        return record.heal_now()
