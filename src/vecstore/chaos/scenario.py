"""The scenarios `make chaos` runs: which failpoints, at what cadence, with which traffic."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vecstore.chaos.failpoint.base import Failpoint, FaultTiming
from vecstore.chaos.failpoint.membership import MembershipChange
from vecstore.chaos.failpoint.network import AsymmetricPartition, FlakyLink, IsolateNode
from vecstore.chaos.failpoint.process import KillNode, KillRole, PauseNode
from vecstore.chaos.failpoint.reshard import Reshard


@dataclass(frozen=True)
class Scenario:
    """One row of the report: a set of failpoints injected under traffic, then validation."""

    name: str
    description: str
    failpoints: tuple[Failpoint, ...]
    timing: FaultTiming = field(default_factory=FaultTiming)
    kafka: bool = False
    """Runs Kafka producers too (a broker and an ingest worker), when ingestion is available."""
    weight: float = 1.0
    """Share of the total duration, relative to the other scenarios."""
    spare_shards: int = 0
    """Shards planned but not started, for the resharding failpoint to add and remove."""


def all_scenarios(election_timeout: float = 1.2) -> list[Scenario]:
    """Every scenario, in the order they run, with weights that favour cheap, frequent faults.

    `election_timeout` is the nodes' maximum: pauses last longer, so a paused leader is
    always replaced.
    """
    pause = FaultTiming(pause=election_timeout + 0.4)
    return [
        Scenario(
            "kill-leader",
            "SIGKILL a shard's leader; the supervisor restarts it",
            (KillNode("leader"),),
            kafka=True,
        ),
        Scenario("kill-follower", "SIGKILL a follower; it restarts and catches up", (KillNode("follower"),)),
        Scenario("kill-any", "SIGKILL a node chosen at random", (KillNode("any"),)),
        Scenario(
            "pause",
            "SIGSTOP the leader or any node longer than the election timeout, then SIGCONT",
            (PauseNode("leader"), PauseNode("any")),
            timing=pause,
        ),
        Scenario(
            "partition-leader",
            "cut every Raft link of the leader, then heal",
            (IsolateNode("leader"),),
            kafka=True,
        ),
        Scenario(
            "partition-minority",
            "cut every Raft link of a follower (a minority), then heal",
            (IsolateNode("follower"),),
        ),
        Scenario(
            "partition-asymmetric",
            "the leader's outbound or inbound Raft traffic is blackholed, then released",
            (AsymmetricPartition(),),
        ),
        Scenario(
            "flaky-network",
            "single links cut, blackholed one way, or delayed 50-1000 ms, briefly and often",
            (FlakyLink(),),
            timing=FaultTiming(hold=0.8, interval=0.1),
            weight=2.0,
        ),
        Scenario(
            "kill-router", "SIGKILL the router; the supervisor restarts it", (KillRole("router"),), weight=0.8
        ),
        Scenario(
            "membership",
            "remove a follower, stop it (wiping its data every other time), add it back, restart it",
            (MembershipChange(),),
            timing=FaultTiming(hold=1.0),
            weight=0.7,
        ),
        Scenario(
            "kill-ingest",
            "SIGKILL the Kafka ingest worker; it restarts, rejoins its group and replays",
            (KillRole("ingest"),),
            kafka=True,
            weight=0.7,
        ),
        Scenario(
            "reshard",
            "add and remove a shard again and again under traffic and Kafka ingestion, killing "
            "shard leaders, the new shard's leader, and the coordinator mid-move (then resumed "
            "or aborted)",
            (Reshard(), KillNode("leader")),
            timing=FaultTiming(interval=0.5),
            kafka=True,
            weight=1.5,
            spare_shards=1,
        ),
        Scenario(
            "reshard-partition",
            "add and remove a shard while shard leaders are cut off from their followers",
            (Reshard(), IsolateNode("leader")),
            timing=FaultTiming(interval=0.5),
            weight=1.0,
            spare_shards=1,
        ),
        Scenario(
            "mixed",
            "every failpoint but membership, at random, in every shard at once, plus router and ingest kills",
            (
                KillNode("leader"),
                KillNode("any"),
                PauseNode("any"),
                IsolateNode("leader"),
                IsolateNode("follower"),
                AsymmetricPartition(),
                FlakyLink(),
                KillRole("router"),
                KillRole("ingest"),
            ),
            timing=pause,
            kafka=True,
            weight=1.5,
        ),
    ]


def without_kafka(scenario: Scenario) -> Scenario | None:
    """The scenario as it runs where ingestion is unavailable (None: nothing left to run)."""
    failpoints = tuple(f for f in scenario.failpoints if f.name != "kill-ingest")
    return replace(scenario, failpoints=failpoints, kafka=False) if failpoints else None
