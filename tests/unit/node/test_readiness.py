"""When a node may call itself ready (`caught_up`), from pysyncobj's status."""

from __future__ import annotations

from typing import Any

from vecstore.node.service import READY_APPLY_GAP, caught_up

LEADER = "127.0.0.1:7000"


def status(**fields: Any) -> dict[str, Any]:
    return {"leader": LEADER, "commit_idx": 500, "last_applied": 500, **fields}


def test_a_follower_that_applied_what_the_leader_committed_is_ready() -> None:
    assert caught_up(status(), synced=True, leader_commit=500)
    assert caught_up(status(last_applied=500 - READY_APPLY_GAP), synced=True, leader_commit=500)


def test_a_member_restarted_empty_is_not_ready_while_its_peers_hold_a_log() -> None:
    # its own log holds one entry: commit index 1, applied 1, while the leader is at 2,000,000
    empty = status(commit_idx=1, last_applied=1)
    assert not caught_up(empty, synced=True, leader_commit=2_000_000)
    # and before it has applied what the leader had committed when it came back, however little
    assert not caught_up(empty, synced=False, leader_commit=85)


def test_a_follower_far_behind_the_leader_is_not_ready() -> None:
    assert not caught_up(status(last_applied=500 - READY_APPLY_GAP - 1), synced=True, leader_commit=500)
    assert not caught_up(status(commit_idx=9_000, last_applied=10), synced=True, leader_commit=None)


def test_no_leader_or_not_synced_is_not_ready() -> None:
    assert not caught_up(status(leader=None), synced=True, leader_commit=500)
    assert not caught_up(status(), synced=False, leader_commit=500)
