"""The safety checks: lost or resurrected writes, stale strong reads, duplicates, divergence.

Pure functions from (model, history, what was read back) to violations; no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from vecstore.chaos.model.keyspace import KeyModel, Violation, vector_for
from vecstore.chaos.traffic.history import Outcome, Read
from vecstore.chaos.validate.replicas import ReplicaContent, StoredPoint
from vecstore.cluster.hash_ring import ShardRing


def check_final_state(model: KeyModel, found: dict[int, StoredPoint]) -> list[Violation]:
    """Every acknowledged write is present at its last acknowledged version (or deleted)."""
    violations = []
    for key in sorted(set(model.keys) | set(found)):
        point = found.get(key)
        violation = model.check_final(key, point.version if point is not None else None)
        if violation is not None:
            violations.append(violation)
        elif point is not None and point.version is not None and point.vector is not None:
            expected = tuple(vector_for(key, point.version))
            if point.vector != expected:
                violations.append(
                    Violation(
                        "corrupt", key, f"v{point.version} has vector {point.vector}, expected {expected}"
                    )
                )
    return violations


def check_reads(model: KeyModel, reads: Iterable[Read]) -> list[Violation]:
    """Strong reads are never older than a write acknowledged before they began; no read
    of any level returns a version nobody wrote."""
    violations = []
    for read in reads:
        if read.outcome is not Outcome.OK or read.completed is None:
            continue
        for key, version in read.found.items():
            if read.consistency == "strong":
                violation = model.check_strong_read(key, version, read.invoked, read.completed)
            elif version is not None:
                violation = model.check_final(key, version)
                violation = violation if violation is not None and violation.kind == "phantom" else None
            else:
                violation = None
            if violation is not None:
                violations.append(violation._replace(detail=f"{read.client}: {violation.detail}"))
    return violations


def check_placement(replicas: Sequence[ReplicaContent], ring: ShardRing) -> list[Violation]:
    """Each point lives in exactly one shard (the ring's), once; counts agree with contents."""
    violations = []
    shards_of: dict[int, set[int]] = defaultdict(set)
    for replica in replicas:
        if replica.error and "twice" in replica.error:
            violations.append(Violation("duplicate", None, f"{replica.node}:{replica.error}"))
        if replica.count is not None and replica.count != len(replica.points):
            violations.append(
                Violation(
                    "duplicate",
                    None,
                    f"{replica.node} counts {replica.count} points but holds {len(replica.points)}",
                )
            )
        for key in replica.points:
            shards_of[key].add(replica.shard)
    for key, shards in sorted(shards_of.items()):
        owner = ring.shard_for(key)
        if len(shards) > 1:
            violations.append(Violation("duplicate", key, f"stored in shards {sorted(shards)}"))
        elif owner not in shards:
            violations.append(Violation("misplaced", key, f"stored in shard {min(shards)}, owned by {owner}"))
    return violations


def check_replicas_agree(replicas: Sequence[ReplicaContent]) -> list[Violation]:
    """The replicas of a shard hold exactly the same points at the same versions."""
    violations = []
    by_shard: dict[int, list[ReplicaContent]] = defaultdict(list)
    for replica in replicas:
        if replica.error and "twice" not in replica.error:
            violations.append(
                Violation("divergent", None, f"{replica.node} could not be read:{replica.error}")
            )
            continue
        by_shard[replica.shard].append(replica)
    for group in by_shard.values():
        reference = group[0]
        for other in group[1:]:
            for key in sorted(set(reference.points) | set(other.points)):
                mine, theirs = reference.points.get(key), other.points.get(key)
                if mine != theirs:
                    violations.append(
                        Violation(
                            "divergent",
                            key,
                            f"{reference.node} has {_describe(mine)}, {other.node} has {_describe(theirs)}",
                        )
                    )
    return violations


def _describe(point: StoredPoint | None) -> str:
    return "nothing" if point is None else f"v{point.version}"
