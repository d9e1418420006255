"""The leader-side pipelining patch (`advance_on_success`) and the transport patches.

pysyncobj sets a follower's next index back to the acknowledged one on every successful
append reply, so with appends in flight each one was sent again. The patch keeps the next
index monotonic on success; rejections and resets still go through pysyncobj and rewind.
"""

from __future__ import annotations

import socket
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import syncobj as syncobj_module
from pysyncobj import tcp_connection
from pysyncobj.node import TCPNode

from vecstore.node import replica as replica_module
from vecstore.node.config import NodeConfig, Peer
from vecstore.node.raft_cipher import get_encryptor
from vecstore.node.raft_patches import (
    LEADER_STATE,
    advance_on_success,
    install_source_address,
    install_transport_patches,
)
from vecstore.node.service import NodeService

FOLLOWER = TCPNode("127.0.0.1:29983")
FOLLOWER_STATE = 0


def _reply(next_node_idx: int, success: bool = True, reset: bool = False) -> dict[str, Any]:
    return {"type": "next_node_idx", "next_node_idx": next_node_idx, "success": success, "reset": reset}


def _leader(next_index: int, match_index: int, state: int = LEADER_STATE) -> Any:
    """The SyncObj state `advance_on_success` reads and writes, and nothing else."""
    return types.SimpleNamespace(
        _SyncObj__raftState=state,
        _SyncObj__raftNextIndex={FOLLOWER: next_index},
        _SyncObj__raftMatchIndex={FOLLOWER: match_index},
        _SyncObj__lastResponseTime={},
    )


def test_a_late_success_reply_does_not_rewind_entries_in_flight() -> None:
    leader = _leader(next_index=21, match_index=5)  # 6..20 sent, not yet acknowledged
    assert advance_on_success(leader, FOLLOWER, _reply(11))
    assert leader._SyncObj__raftMatchIndex[FOLLOWER] == 10
    assert leader._SyncObj__raftNextIndex[FOLLOWER] == 21, "11..20 would be sent again"
    assert FOLLOWER in leader._SyncObj__lastResponseTime


def test_success_raises_the_next_index_when_behind() -> None:
    leader = _leader(next_index=4, match_index=2)
    assert advance_on_success(leader, FOLLOWER, _reply(9))
    assert (leader._SyncObj__raftMatchIndex[FOLLOWER], leader._SyncObj__raftNextIndex[FOLLOWER]) == (8, 9)


def test_an_older_success_never_lowers_the_match_index() -> None:
    leader = _leader(next_index=21, match_index=15)
    assert advance_on_success(leader, FOLLOWER, _reply(11))  # overtaken by a newer reply
    assert (leader._SyncObj__raftMatchIndex[FOLLOWER], leader._SyncObj__raftNextIndex[FOLLOWER]) == (15, 21)


@pytest.mark.parametrize(
    "message",
    [
        _reply(7, success=False),
        _reply(7, success=False, reset=True),
        _reply(7, success=True, reset=True),
        {"type": "append_entries", "term": 1, "commit_index": 3, "entries": []},
    ],
    ids=["rejected", "reset", "success-with-reset", "not-a-reply"],
)
def test_rejections_resets_and_other_messages_are_left_to_pysyncobj(message: dict[str, Any]) -> None:
    leader = _leader(next_index=21, match_index=5)
    assert not advance_on_success(leader, FOLLOWER, message)
    assert (leader._SyncObj__raftMatchIndex[FOLLOWER], leader._SyncObj__raftNextIndex[FOLLOWER]) == (5, 21)
    assert leader._SyncObj__lastResponseTime == {}


def test_a_node_that_no_longer_leads_ignores_replies() -> None:
    leader = _leader(next_index=21, match_index=5, state=FOLLOWER_STATE)
    assert not advance_on_success(leader, FOLLOWER, _reply(11))
    assert leader._SyncObj__raftNextIndex[FOLLOWER] == 21


@pytest.fixture
def replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Replica that never ticks (no thread, no sockets): the test delivers its messages."""
    make_conf = replica_module.make_conf

    def without_ticks(*args: Any, **kwargs: Any) -> Any:
        conf = make_conf(*args, **kwargs)
        conf.autoTick = False
        return conf

    monkeypatch.setattr(replica_module, "make_conf", without_ticks)
    config = NodeConfig(
        node_id="s0-n0",
        shard_id=0,
        data_dir=tmp_path / "node",
        raft_address="127.0.0.1:29981",
        http_address="127.0.0.1:29982",
        peers=(Peer("s0-n1", "127.0.0.1:29983", "127.0.0.1:29984"),),
        cluster_secret="unit-test-secret-0123456789",
    )
    service = NodeService(config)
    try:
        yield service.replica
    finally:
        service.replica.destroy()
        service.executor.shutdown()
        service.shard.close()


def test_the_replica_routes_replies_through_the_patch(replica: Any) -> None:
    """Replica's message hook really runs the patch (a renamed hook would skip it silently)."""
    replica._SyncObj__raftState = LEADER_STATE
    replica._SyncObj__raftNextIndex[FOLLOWER] = 21
    replica._SyncObj__raftMatchIndex[FOLLOWER] = 5

    replica._SyncObj__onMessageReceived(FOLLOWER, _reply(11))
    assert (replica._SyncObj__raftMatchIndex[FOLLOWER], replica._SyncObj__raftNextIndex[FOLLOWER]) == (10, 21)

    replica._SyncObj__onMessageReceived(FOLLOWER, _reply(8, success=False, reset=True))
    assert replica._SyncObj__raftNextIndex[FOLLOWER] == 8, "pysyncobj's rewind on a reset"


def test_transport_patches_store_uncompressed_and_use_gcm() -> None:
    install_transport_patches()
    install_transport_patches()  # idempotent
    payload = bytes(range(256)) * 64
    stored = tcp_connection.zlib.compress(payload, 3)
    assert stored == zlib.compress(payload, 0)
    assert tcp_connection.zlib.decompress(stored) == payload
    assert tcp_connection.zlib.decompress(zlib.compress(payload, 3)) == payload  # older peers
    assert syncobj_module.getEncryptor is get_encryptor


def test_source_address_binds_outgoing_ipv4_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_connection, "socket", tcp_connection.socket)  # restored afterwards
    before = tcp_connection.socket
    install_source_address(None)
    assert tcp_connection.socket is before
    install_source_address("127.0.0.1")
    install_source_address("127.0.0.1")  # re-installing wraps the real module, not the wrapper
    shim = tcp_connection.socket
    assert shim._real is socket
    assert shim.SOCK_STREAM == socket.SOCK_STREAM
    with shim.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"
