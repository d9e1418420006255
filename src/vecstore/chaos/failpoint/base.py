"""What every failpoint shares: its timing knobs, the record of one injected fault, the protocol.

A failpoint injects one fault, holds it, and undoes what it did itself (the supervisor
restarts killed processes, as `vecstore up` does). It returns None when it found nothing
to act on (no leader known yet): that counts as no fault.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vecstore.chaos.cluster import ChaosCluster, ChaosNode


@dataclass(frozen=True)
class FaultTiming:
    """How long faults last and how often they come."""

    hold: float = 1.5
    """Seconds a partition lasts (each fault draws from hold/2 .. hold*1.5)."""
    pause: float = 1.6
    """Seconds a SIGSTOPped process stays stopped, at least (longer than the election timeout)."""
    interval: float = 0.2
    """Seconds between the end of one fault and the start of the next, per stream."""
    recovery_wait: float = 10.0
    """Before the next fault, wait at most this long for the shard to be healthy again."""

    def draw_hold(self, rng: random.Random) -> float:
        """A hold time around `hold`."""
        return rng.uniform(self.hold * 0.5, self.hold * 1.5)


@dataclass
class FaultRecord:
    """One injected fault."""

    failpoint: str
    target: str
    shard: int | None
    injected: float
    healed: float | None = None
    detail: str = ""

    def heal_now(self) -> FaultRecord:
        """Mark the fault undone now; returns self."""
        self.healed = time.monotonic()
        return self


class Failpoint(Protocol):
    """One kind of fault."""

    @property
    def name(self) -> str:
        """The failpoint's name in reports."""
        ...

    @property
    def per_shard(self) -> bool:
        """True: runs in each shard's stream with a shard number; False: cluster-wide stream."""
        ...

    async def inject(
        self, cluster: ChaosCluster, shard: int | None, rng: random.Random, timing: FaultTiming
    ) -> FaultRecord | None:
        """Inject one fault, hold it, undo it; None if there was nothing to act on."""
        ...


async def pick_node(cluster: ChaosCluster, shard: int, role: str, rng: random.Random) -> ChaosNode | None:
    """A node of `shard` by role: "leader", "follower" or "any"."""
    if role == "leader":
        return await cluster.leader(shard)
    if role == "follower":
        followers = await cluster.followers(shard)
        return rng.choice(followers) if followers else None
    return rng.choice(cluster.shard_nodes(shard))
