"""When a node may call itself ready (`caught_up`), from pysyncobj's status."""

from __future__ import annotations

from typing import Any

from vecstore.node.service import READY_APPLY_GAP, caught_up

LEADER = "127.0.0.1:7000"


def status(**fields: Any) -> dict[str, Any]:
    return {"leader": LEADER, "commit_idx": 500, "last_applied": 500, "leader_commit_idx": 500, **fields}


def test_a_follower_that_applied_what_the_leader_committed_is_ready() -> None:
    assert caught_up(status(), synced=True)
    assert caught_up(status(last_applied=500 - READY_APPLY_GAP), synced=True)


def test_a_member_restarted_empty_is_not_ready_while_its_peers_hold_a_log() -> None:
    # its own log holds one entry: commit index 1, applied 1, but the leader is at 2,000,000
    empty = status(commit_idx=1, last_applied=1, leader_commit_idx=2_000_000)
    assert not caught_up(empty, synced=True)


def test_a_follower_far_behind_the_leader_is_not_ready() -> None:
    assert not caught_up(status(last_applied=500 - READY_APPLY_GAP - 1), synced=True)
    assert not caught_up(status(commit_idx=9_000, leader_commit_idx=9_000, last_applied=10), synced=True)


def test_no_leader_or_no_word_from_it_or_no_first_sync_is_not_ready() -> None:
    assert not caught_up(status(leader=None), synced=True)
    assert not caught_up(status(leader_commit_idx=None), synced=True)
    assert not caught_up(status(), synced=False)
