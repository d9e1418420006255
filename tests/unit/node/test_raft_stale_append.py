"""Reproducer (found by the chaos suite): a stale AppendEntries truncated entries a follower had
acknowledged and applied.

pysyncobj deleted every entry after `prevLogIdx` before appending, even matching ones. With
pipelined appends, a resend after a reset reply arrives after newer entries: the follower's
log shrank below the leader's match index (logged as CRITICAL "truncating already-applied log
entries"). Raft's rule, now applied in front of pysyncobj: skip entries already present,
truncate only at the first conflict.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pysyncobj.node import TCPNode

from vecstore.node import replica as replica_module
from vecstore.node.config import NodeConfig, Peer
from vecstore.node.service import NodeService

NO_OP = b"\x01"  # pysyncobj's no-op command: harmless to apply
LEADER = TCPNode("127.0.0.1:29993")


class Follower:
    """A node whose Raft member never ticks: the test feeds it the leader's messages."""

    def __init__(self, service: NodeService) -> None:
        self.service = service
        self.raft = service.replica
        self.replies: list[dict[str, Any]] = []
        self.raft._SyncObj__transport.send = self._record

    def _record(self, _node: object, message: dict[str, Any]) -> bool:
        self.replies.append(message)
        return True

    def append(self, prev: int, entries: list[tuple[int, int]], commit: int, term: int = 1) -> None:
        """Deliver an append_entries message with (index, term) entries."""
        prev_term = self.raft._SyncObj__getEntries(prev)[0][2]
        self.raft._SyncObj__onMessageReceived(
            LEADER,
            {
                "type": "append_entries",
                "term": term,
                "commit_index": commit,
                "entries": [(NO_OP, index, entry_term) for index, entry_term in entries],
                "prevLogIdx": prev,
                "prevLogTerm": prev_term,
            },
        )
        self.raft._SyncObj__applyLogEntries()

    @property
    def log(self) -> list[tuple[int, int]]:
        """(index, term) of every entry in the log."""
        last = self.raft._SyncObj__getCurrentLogIndex()
        return [(index, term) for _, index, term in self.raft._SyncObj__getEntries(1, last)]

    @property
    def commit_index(self) -> int:
        return int(self.raft._SyncObj__raftCommitIndex)

    @property
    def last_applied(self) -> int:
        return int(self.raft._SyncObj__raftLastApplied)


@pytest.fixture
def follower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Follower]:
    make_conf = replica_module.make_conf

    def without_ticks(*args: Any, **kwargs: Any) -> Any:
        conf = make_conf(*args, **kwargs)
        conf.autoTick = False  # no thread, no sockets: messages are delivered by the test
        return conf

    monkeypatch.setattr(replica_module, "make_conf", without_ticks)
    config = NodeConfig(
        node_id="s0-n1",
        shard_id=0,
        data_dir=tmp_path / "node",
        raft_address="127.0.0.1:29991",
        http_address="127.0.0.1:29992",
        peers=(Peer("s0-n0", "127.0.0.1:29993", "127.0.0.1:29994"),),
        cluster_secret="unit-test-secret-0123456789",
    )
    service = NodeService(config)
    try:
        yield Follower(service)
    finally:
        service.replica.destroy()
        service.executor.shutdown()
        service.shard.close()


def test_stale_append_never_truncates_acknowledged_entries(follower: Follower) -> None:
    follower.append(1, [(i, 1) for i in range(2, 6)], commit=1)
    follower.append(5, [(i, 1) for i in range(6, 11)], commit=8)
    assert follower.replies[-1]["success"] and follower.replies[-1]["next_node_idx"] == 11
    assert follower.last_applied == 8

    follower.append(2, [(3, 1), (4, 1), (5, 1)], commit=8)  # the same entries again, late

    assert follower.log[-1] == (10, 1), "acknowledged entries 6..10 were cut"
    assert follower.commit_index == 8
    assert follower.last_applied == 8
    assert follower.replies[-1]["success"] and follower.replies[-1]["next_node_idx"] == 6


def test_a_partly_known_append_adds_only_the_new_entries(follower: Follower) -> None:
    follower.append(1, [(i, 1) for i in range(2, 8)], commit=3)
    follower.append(4, [(i, 1) for i in range(5, 11)], commit=3)
    assert follower.log == [(1, 0), *((i, 1) for i in range(2, 11))]
    assert follower.replies[-1]["next_node_idx"] == 11


def test_a_conflicting_entry_still_truncates_from_the_conflict(follower: Follower) -> None:
    follower.append(1, [(i, 1) for i in range(2, 11)], commit=3)
    follower.append(10, [], commit=3, term=2)  # a new leader's heartbeat: term 2
    follower.append(5, [(6, 1), (7, 2)], commit=3, term=2)
    assert follower.log == [(1, 0), *((i, 1) for i in range(2, 7)), (7, 2)]
    assert follower.replies[-1]["next_node_idx"] == 8


def test_a_snapshot_chunk_never_commits_the_followers_own_entries(follower: Follower) -> None:
    """Reproducer: a deposed leader's unreplicated entries were committed by a snapshot chunk.

    Found by the chaos suite (partition-leader): an isolated leader kept appending client
    writes it could not commit. When the partition healed, the new leader sent it a snapshot;
    the first chunk carried the new leader's commit index, and pysyncobj raised the follower's
    commit index to the end of its own log, applying (and acknowledging to clients) entries
    the new leader never had. The snapshot then replaced them: acknowledged writes lost.
    """
    follower.append(1, [(i, 1) for i in range(2, 11)], commit=3)  # 4..10: never committed
    acknowledged: list[int] = []
    follower.raft._SyncObj__commandsWaitingCommit[8].append(
        (1, lambda _result, reason: acknowledged.append(reason))
    )

    follower.raft._SyncObj__onMessageReceived(
        LEADER,
        {"type": "append_entries", "term": 2, "commit_index": 50, "serialized": (b"dump-part", True, False)},
    )
    follower.raft._SyncObj__applyLogEntries()

    try:
        assert follower.commit_index == 3
        assert follower.last_applied == 3
        assert acknowledged == []
    finally:
        follower.raft._SyncObj__serializer._Serializer__incomingTransmissionFile.close()
