"""Resharding under faults: add the spare shard, or remove it, while traffic runs.

Each injection is one move (`vecstore.reshard.Coordinator`), with faults of its own on top
of the scenario's other streams: the target's leader may be killed during the copy, and
the coordinator itself may be killed (its task cancelled) at a random moment, after which
a new coordinator resumes the move, or aborts it when no shard has cut over yet. The
cluster ends every scenario in its original shape (`settle_topology`), so the validators
check the same shards they always do, over a history that crossed every move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from dataclasses import dataclass, field

from vecstore.chaos.cluster import ChaosCluster
from vecstore.chaos.failpoint.base import FaultRecord, FaultTiming
from vecstore.cluster.errors import Conflict, VecStoreError
from vecstore.cluster.topology import Topology
from vecstore.reshard.coordinator import ClusterState, Coordinator, wait_for_leader

log = logging.getLogger(__name__)

MOVE_SECONDS = 120.0
"""A move (or its resumption) that takes longer is reported as an error."""


def _coordinator(cluster: ChaosCluster) -> Coordinator:
    original = [s for s in cluster.spec.shards if s.id < cluster.shape.shards]  # the spare never seeds
    return Coordinator(Topology(0, tuple(original)), access=cluster.local.access, request_seconds=20.0)


async def _state(cluster: ChaosCluster) -> ClusterState:
    spare = cluster.spare_spec()
    published = any(shard.id == spare.id for shard in cluster.spec.shards)
    coordinator = _coordinator(cluster)
    try:  # a spare out of the spec is not running: nothing to ask it
        return await coordinator.state(extra=[spare] if published else [])
    finally:
        await coordinator.close()


async def _retrying_state(cluster: ChaosCluster, seconds: float = 60.0) -> ClusterState:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await _state(cluster)
        except VecStoreError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def finish_move(cluster: ChaosCluster, abort: bool = False) -> Topology:
    """Resume (or abort) whatever move is under way, retrying until it is done."""
    deadline = time.monotonic() + MOVE_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        coordinator = _coordinator(cluster)
        try:
            if abort:
                try:
                    return await coordinator.abort()
                except Conflict:  # the cutover had begun: only resuming is possible
                    abort = False
                    continue
            return await coordinator.resume()
        except VecStoreError as err:
            last = err
            log.info("finishing the move failed (%s); retrying", err.message)
            await asyncio.sleep(1.0)
        finally:
            await coordinator.close()
    raise RuntimeError(f"the move could not be finished in {MOVE_SECONDS:.0f} s: {last!r}")


async def _kill_leader_later(cluster: ChaosCluster, shard: int, delay: float) -> str | None:
    await asyncio.sleep(delay)
    leader = await cluster.leader(shard)
    if leader is None or not cluster.process(leader.id).running:
        return None
    await cluster.kill(leader.id)
    return leader.id


async def _drop_spare(cluster: ChaosCluster) -> None:
    """Take the spare out of the spec; once its nodes stopped, wipe their data. Its ingest
    counters are kept: records it applied while it owned points count in the sums."""
    statuses = await cluster.statuses(cluster.spare_spec().id)
    leader = next((s for s in statuses.values() if s is not None and s.get("role") == "leader"), None)
    counted = leader or next((s for s in statuses.values() if s is not None), None)
    if counted is not None:
        cluster.retired_ingest += counted.get("ingest", [])
    cluster.publish_spare(False)
    spare = {node.id for node in cluster.shard_nodes(cluster.spare_spec().id)}
    for _ in range(150):  # the supervisor stops them within a loop or two
        if not any(p.name in spare for p in cluster.local.processes):
            break
        await asyncio.sleep(0.2)
    for node_id in spare:
        shutil.rmtree(cluster.workdir / node_id, ignore_errors=True)


@dataclass
class Reshard:
    """Add the spare shard when it is out, remove it when it is in, with faults meanwhile."""

    per_shard: bool = False
    name: str = "reshard"
    moves: list[str] = field(default_factory=list)

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        spare = cluster.spare_spec()
        try:
            state = await _state(cluster)
            if state.moving:
                await finish_move(cluster)
                state = await _state(cluster)
        except VecStoreError as err:  # a shard without a leader right now: try again later
            log.info("cluster state unreadable (%s); no move this time", err.message)
            return None
        adding = spare.id not in state.current.ids
        record = FaultRecord(self.name, f"shard {spare.id}", None, time.monotonic())
        if adding:
            cluster.publish_spare(True)
            await wait_for_leader(spare, cluster.local.access, 60.0)
        coordinator = _coordinator(cluster)
        move = asyncio.create_task(
            coordinator.add_shard(spare) if adding else coordinator.remove_shard(spare.id)
        )
        details = ["add" if adding else "remove"]
        killer = None
        if adding and rng.random() < 0.5:
            killer = asyncio.create_task(_kill_leader_later(cluster, spare.id, rng.uniform(0.1, 1.5)))
        try:
            if rng.random() < 0.35:  # the coordinator dies mid-move
                done, _ = await asyncio.wait({move}, timeout=rng.uniform(0.1, 2.0))
                if not done:
                    move.cancel()
                    with contextlib.suppress(asyncio.CancelledError, VecStoreError):
                        await move
                    abort = rng.random() < 0.5
                    details.append(f"coordinator killed, then {'abort' if abort else 'resume'}")
                    await finish_move(cluster, abort=abort)
            if not move.cancelled():
                try:
                    await move
                except VecStoreError as err:
                    details.append(f"move failed ({err.message}), resumed")
                    await finish_move(cluster)
        finally:
            await coordinator.close()
            if killer is not None:
                victim = await killer
                if victim is not None:
                    details.append(f"target leader {victim} killed")
        for _ in range(30):
            try:
                gone = spare.id not in (await _state(cluster)).current.ids
                break
            except VecStoreError:
                await asyncio.sleep(1.0)
        else:
            gone = False
        if gone:
            await _drop_spare(cluster)  # removed, or an add rolled back
        record.detail = "; ".join(details)
        self.moves.append(record.detail)
        return record.heal_now()


async def settle_topology(cluster: ChaosCluster) -> list[str]:
    """Finish any move and take the spare shard out: the cluster's original shape again."""
    if not cluster.spare_nodes:
        return []
    try:
        state = await _retrying_state(cluster)
        if state.moving:
            await finish_move(cluster)
            state = await _retrying_state(cluster)
        if cluster.spare_spec().id in state.current.ids:
            coordinator = _coordinator(cluster)
            try:
                await coordinator.remove_shard(cluster.spare_spec().id)
            except VecStoreError:
                await finish_move(cluster)
            finally:
                await coordinator.close()
        await _drop_spare(cluster)
    except (VecStoreError, RuntimeError) as err:
        return [f"could not restore the original shape: {err}"]
    return []
