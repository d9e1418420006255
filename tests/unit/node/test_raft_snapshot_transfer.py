"""Patch 9: a follower answers each chunk of the leader's dump (so the leader's connection,
which drops after `connection_timeout` without a read, survives a dump that takes longer
to send), and a follower that has loaded a dump restarts its election timer."""

from __future__ import annotations

import types
from typing import Any

from pysyncobj.monotonic import monotonic as monotonic_time
from pysyncobj.node import TCPNode

from vecstore.node.raft_patches import SNAPSHOT_PROGRESS, acknowledge_dump_chunk

LEADER = TCPNode("127.0.0.1:29984")


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, dict[str, Any]]] = []

    def send(self, node: Any, message: dict[str, Any]) -> bool:
        self.sent.append((node, message))
        return True


def _follower(deadline: float = 0.0) -> Any:
    follower = types.SimpleNamespace(conf=types.SimpleNamespace(raftMaxTimeout=1.5))
    follower._SyncObj__transport = FakeTransport()
    follower._SyncObj__raftElectionDeadline = deadline
    return follower


def _chunk(first: bool, last: bool) -> dict[str, Any]:
    return {"type": "append_entries", "term": 3, "commit_index": 9, "serialized": (b"x" * 16, first, last)}


def test_every_chunk_but_the_last_is_answered() -> None:
    follower = _follower()
    for first in (True, False, False):
        acknowledge_dump_chunk(follower, LEADER, _chunk(first, last=False))
    assert follower._SyncObj__transport.sent == [(LEADER, {"type": SNAPSHOT_PROGRESS})] * 3


def test_the_last_chunk_restarts_the_election_timer_and_is_not_answered() -> None:
    follower = _follower(deadline=monotonic_time() - 60)  # a load that took a minute
    acknowledge_dump_chunk(follower, LEADER, _chunk(first=False, last=True))
    assert follower._SyncObj__transport.sent == []
    assert follower._SyncObj__raftElectionDeadline >= monotonic_time() + 1.0
    later = monotonic_time() + 100
    follower._SyncObj__raftElectionDeadline = later
    acknowledge_dump_chunk(follower, LEADER, _chunk(first=False, last=True))
    assert follower._SyncObj__raftElectionDeadline == later  # never brought forward


def test_other_messages_are_left_alone() -> None:
    follower = _follower(deadline=5.0)
    for message in (
        {"type": "append_entries", "term": 3, "commit_index": 9, "entries": [], "prevLogIdx": 4},
        {"type": "append_entries", "term": 3, "commit_index": 9, "serialized": None},
        {"type": "next_node_idx", "next_node_idx": 4, "success": True},
        {"type": SNAPSHOT_PROGRESS},
    ):
        acknowledge_dump_chunk(follower, LEADER, message)
    assert follower._SyncObj__transport.sent == [] and follower._SyncObj__raftElectionDeadline == 5.0
