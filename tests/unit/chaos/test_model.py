"""The chaos model and checks flag what they must: a checker that never fires proves nothing."""

from __future__ import annotations

from vecstore.chaos.model.keyspace import KeyModel, Violation, vector_for
from vecstore.chaos.traffic.history import Outcome, Read, Write, WriteKind
from vecstore.chaos.validate.checks import (
    check_final_state,
    check_placement,
    check_reads,
    check_replicas_agree,
)
from vecstore.chaos.validate.replicas import ReplicaContent, StoredPoint
from vecstore.cluster.hash_ring import ShardRing

KEY = 7


def write(
    version: int, start: float, end: float | None, outcome: Outcome, kind: WriteKind = WriteKind.UPSERT
) -> Write:
    return Write(KEY, version, kind, "w1", 0, start, end, outcome)


def point(version: int) -> StoredPoint:
    return StoredPoint(version, tuple(vector_for(KEY, version)))


def kinds(violations: list[Violation]) -> list[str]:
    return [v.kind for v in violations]


def test_final_state_must_be_the_last_acknowledged_version() -> None:
    model = KeyModel([write(1, 0, 1, Outcome.OK), write(2, 1, 2, Outcome.OK)])
    assert check_final_state(model, {KEY: point(2)}) == []
    assert kinds(check_final_state(model, {KEY: point(1)})) == ["lost"]
    assert kinds(check_final_state(model, {})) == ["lost"]
    assert kinds(check_final_state(model, {KEY: point(9)})) == ["phantom"]
    assert kinds(check_final_state(model, {KEY: StoredPoint(2, (0.0, 0.0, 0.0, 0.0))})) == ["corrupt"]


def test_a_write_with_an_unknown_outcome_may_or_may_not_be_there() -> None:
    model = KeyModel(
        [
            write(1, 0, 1, Outcome.OK),
            write(2, 1, 2, Outcome.FAILED),
            write(3, 2, None, Outcome.UNKNOWN, WriteKind.DELETE),
        ]
    )
    assert check_final_state(model, {KEY: point(1)}) == []
    assert check_final_state(model, {KEY: point(2)}) == []
    assert check_final_state(model, {}) == []  # the unacknowledged delete was applied


def test_an_acknowledged_delete_must_stay_deleted() -> None:
    model = KeyModel([write(1, 0, 1, Outcome.OK), write(2, 1, 2, Outcome.OK, WriteKind.DELETE)])
    assert check_final_state(model, {}) == []
    assert kinds(check_final_state(model, {KEY: point(1)})) == ["lost"]


def test_a_strong_read_may_not_go_back_before_an_acknowledged_write() -> None:
    model = KeyModel([write(1, 0, 1, Outcome.OK), write(2, 2, 3, Outcome.OK)])

    def read(version: int | None, start: float, end: float, consistency: str = "strong") -> Read:
        return Read((KEY,), consistency, "r", start, end, Outcome.OK, {KEY: version})

    assert check_reads(model, [read(1, 1.5, 2.5)]) == []  # concurrent with v2: either is fine
    assert check_reads(model, [read(2, 2.5, 3.5)]) == []
    assert kinds(check_reads(model, [read(1, 4, 5)])) == ["stale_read"]
    assert kinds(check_reads(model, [read(None, 4, 5)])) == ["stale_read"]
    assert kinds(check_reads(model, [read(2, 0.1, 0.5)])) == ["future_read"]
    assert check_reads(model, [read(1, 4, 5, "eventual")]) == []  # eventual reads may lag
    assert kinds(check_reads(model, [read(5, 4, 5, "eventual")])) == ["phantom"]


def test_placement_and_replica_agreement() -> None:
    ring = ShardRing(2)
    owner = ring.shard_for(KEY)
    here = ReplicaContent("a", owner, {KEY: point(1)}, count=1)
    twin = ReplicaContent("b", owner, {KEY: point(1)}, count=1)
    assert check_placement([here, twin], ring) == []
    assert check_replicas_agree([here, twin]) == []
    behind = ReplicaContent("c", owner, {KEY: point(0)}, count=1)
    assert kinds(check_replicas_agree([here, behind])) == ["divergent"]
    elsewhere = ReplicaContent("d", 1 - owner, {KEY: point(1)}, count=1)
    assert kinds(check_placement([here, elsewhere], ring)) == ["duplicate"]
    assert kinds(check_placement([ReplicaContent("e", owner, {KEY: point(1)}, count=2)], ring)) == [
        "duplicate"
    ]
