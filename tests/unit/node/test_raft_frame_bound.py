"""The Raft frame bound: which announced lengths close a connection, appends sized to stay
under it (checked against frames pysyncobj's own transport encodes), and the read path on
real sockets."""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pysyncobj import pickle as raft_pickle
from pysyncobj.poller import createPoller
from pysyncobj.syncobj import _COMMAND_TYPE
from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection

from vecstore.node.caller_auth import RefusalLog
from vecstore.node.config import DEFAULT_MAX_COMMAND_BYTES, NodeConfig
from vecstore.node.raft_cipher import get_encryptor
from vecstore.node.raft_frames import (
    DUMP_CHUNK_BYTES,
    UNAUTHENTICATED_FRAME_BYTES,
    Entry,
    FrameBound,
    entry_wire_bytes,
    install_frame_bound,
    max_entry_bytes,
    max_frame_bytes,
    oversized_frame,
    take_within,
)
from vecstore.node.raft_patches import install_transport_patches
from vecstore.node.replica import append_batch_bytes

SECRET = "unit-test-cluster-secret-0123"
ENCRYPTOR = get_encryptor(SECRET)
FRAME_LOGGER = "vecstore.node.caller_auth"  # RefusalLog's logger


def frame(length: int, body: bytes = b"") -> bytes:
    return struct.pack("i", length) + body


# ---- which headers close a connection --------------------------------------------------


def test_the_first_oversized_or_negative_header_is_found() -> None:
    assert oversized_frame(b"", 10) is None
    assert oversized_frame(b"\x01\x00", 10) is None  # an incomplete header
    assert oversized_frame(frame(11), 10) == 11
    assert oversized_frame(frame(-5), 10) == -5
    assert oversized_frame(frame(3, b"abc") + frame(2**31 - 1), 10) == 2**31 - 1
    assert oversized_frame(frame(10, b"x" * 10) + frame(4, b"ab"), 10) is None  # second incomplete


@given(st.lists(st.binary(max_size=20), max_size=6), st.integers(min_value=0, max_value=20))
def test_oversized_frame_agrees_with_a_model(bodies: list[bytes], limit: int) -> None:
    stream = b"".join(frame(len(body), body) for body in bodies)
    expected = next((len(body) for body in bodies if len(body) > limit), None)
    assert oversized_frame(stream, limit) == expected


# ---- appends sized by their wire cost ------------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=500), max_size=12), st.integers(0, 3000))
def test_take_within_is_the_longest_prefix_in_budget(lengths: list[int], budget: int) -> None:
    entries = [(b"x" * length, index, 1) for index, length in enumerate(lengths, 1)]
    taken = take_within(iter(entries), budget)
    assert taken == entries[: len(taken)]
    assert bool(taken) == bool(entries)  # the first entry always goes, whatever its size
    cost = sum(entry_wire_bytes(len(entry[0])) for entry in taken)
    assert len(taken) <= 1 or cost <= budget
    if len(taken) < len(entries):  # and the next one would not have fitted
        assert cost + entry_wire_bytes(len(entries[len(taken)][0])) > budget


def test_take_within_reads_nothing_past_the_first_entry_that_does_not_fit() -> None:
    read: list[int] = []

    def entries() -> Iterator[Entry]:
        for index in range(1, 1000):
            read.append(index)
            yield (b"x" * 100, index, 1)

    assert len(take_within(entries(), 3 * entry_wire_bytes(100))) == 3
    assert read == [1, 2, 3, 4]


def regular_entry(data: bytes, index: int, term: int) -> Entry:
    """A log entry exactly as pysyncobj makes one for a replicated call with `data`."""
    return bytes([_COMMAND_TYPE.REGULAR]) + raft_pickle.dumps((7, (data,))), index, term


def barrier_entry(index: int, term: int) -> Entry:
    """The smallest entry there is: a replicated call without arguments (barrier)."""
    return bytes([_COMMAND_TYPE.REGULAR]) + raft_pickle.dumps(7), index, term


def sent_frame_length(message: Any, key: bytes | None = None) -> int:
    """The length pysyncobj's transport announces for `message` on an authenticated,
    encrypted connection (keyed `key`), as a node sends it (transport patches installed)."""
    install_transport_patches()
    sender, receiver = socket.socketpair()
    with sender, receiver:
        sender.setblocking(False)
        connection = TcpConnection(createPoller("select"), socket=sender)
        connection.encryptor = ENCRYPTOR
        connection.sendRandKey = key or os.urandom(32)
        try:
            connection.send(message)
            (length,) = struct.unpack("i", receiver.recv(4, socket.MSG_WAITALL))
        finally:
            connection.disconnect()
    return int(length)


def append(entries: list[Entry]) -> dict[str, Any]:
    """An append_entries message as pysyncobj's leader builds it."""
    return {
        "type": "append_entries",
        "term": 2**40,
        "commit_index": 2**62,
        "entries": entries,
        "prevLogIdx": 2**62,
        "prevLogTerm": 2**40,
    }


# every byte >= 0x80: pickle protocol 2 doubles it, and doubles the entry again in an append
WORST_BYTE = b"\xc3"


@pytest.mark.parametrize("max_command", [1024, 64 * 1024, DEFAULT_MAX_COMMAND_BYTES])
def test_the_largest_entry_alone_fits_the_bound(max_command: int) -> None:
    entry = regular_entry(WORST_BYTE * max_command, 2**62, 2**40)
    assert len(entry[0]) <= max_entry_bytes(max_command)
    batch = append_batch_bytes(config_with(max_command))
    assert len(entry[0]) < batch  # never pysyncobj's (broken) chunked path
    length = sent_frame_length(append([entry]))
    assert length > 4 * max_command  # the worst case is real...
    assert length <= max_frame_bytes(max_command, batch)  # ...and bounded


@pytest.mark.parametrize("max_command", [1024, 64 * 1024])
def test_an_append_cut_by_wire_cost_fits_the_bound(max_command: int) -> None:
    """A follower far behind: a log of large and tiny entries, one append's worth taken."""
    batch = append_batch_bytes(config_with(max_command))
    log: list[Entry] = []
    raw_bytes = 0
    for index in range(2**40, 2**41):
        entry = (
            regular_entry(WORST_BYTE * max_command, index, 9) if index % 50 == 0 else barrier_entry(index, 9)
        )
        log.append(entry)
        raw_bytes += len(entry[0])
        if raw_bytes > 2 * batch:
            break
    taken = take_within(iter(log), batch)
    assert 1 < len(taken) < len(log)
    assert sent_frame_length(append(taken)) <= max_frame_bytes(max_command, batch)


def test_pysyncobj_own_cut_would_overflow_the_bound() -> None:
    """pysyncobj cuts an append when its entries' raw bytes reach the batch size: tiny
    entries (a barrier is 6 bytes) then cost ~8 times as much on the wire."""
    batch = append_batch_bytes(config_with(1024))
    raw = [barrier_entry(index, 9) for index in range(2**40, 2**40 + batch // 6 + 1)]
    assert sent_frame_length(append(raw)) > 2 * max_frame_bytes(1024, batch)
    taken = take_within(iter(raw), batch)
    assert sent_frame_length(append(taken)) <= max_frame_bytes(1024, batch)


def test_a_dump_chunk_fits_the_bound() -> None:
    chunk = {
        "type": "append_entries",
        "term": 2**40,
        "commit_index": 2**62,
        "serialized": (WORST_BYTE * DUMP_CHUNK_BYTES, True, False),
    }
    assert sent_frame_length(chunk) <= max_frame_bytes(1024, append_batch_bytes(config_with(1024)))


def test_the_handshake_fits_the_unauthenticated_bound() -> None:
    install_transport_patches()
    sender, receiver = socket.socketpair()
    with sender, receiver:
        sender.setblocking(False)
        connection = TcpConnection(createPoller("select"), socket=sender)
        connection.encryptor = ENCRYPTOR
        connection.send(os.urandom(32))  # what a peer sends first: its key, no key of ours yet
        (length,) = struct.unpack("i", receiver.recv(4, socket.MSG_WAITALL))
        connection.disconnect()
    assert length <= UNAUTHENTICATED_FRAME_BYTES


def config_with(max_command: int) -> NodeConfig:
    return NodeConfig(
        "n", 0, Path("/nonexistent"), "127.0.0.1:1", "127.0.0.1:2", max_command_bytes=max_command
    )


def test_the_default_bound() -> None:
    config = config_with(DEFAULT_MAX_COMMAND_BYTES)
    bound = max_frame_bytes(config.max_command_bytes, append_batch_bytes(config))
    assert bound == 4 * DEFAULT_MAX_COMMAND_BYTES + 2 * 4096 + 64 + (1 << 20)  # 33 MiB + 8 KiB
    assert config.raft_listen_address == "127.0.0.1:1"


# ---- the read path, on real TCP connections --------------------------------------------------


@pytest.fixture
def bound() -> Iterator[FrameBound]:
    """The process's frame bound, with fresh refusal logs; left at the default after."""
    installed = install_frame_bound(1 << 20)
    installed.oversized = RefusalLog("an oversized Raft frame")
    installed.unauthenticated = RefusalLog("a Raft frame that failed authentication")
    yield installed
    config = config_with(DEFAULT_MAX_COMMAND_BYTES)
    install_frame_bound(max_frame_bytes(config.max_command_bytes, append_batch_bytes(config)))


class Listener:
    """Accepted connections, each served by a pysyncobj TcpConnection on one poller."""

    def __init__(self, encrypted: bool) -> None:
        self.poller = createPoller("select")
        self.server = socket.create_server(("127.0.0.1", 0))
        self.encrypted = encrypted
        self.connections: list[TcpConnection] = []
        self.received: list[Any] = []
        self.left_after_parse: list[int] = []
        """For each message, what its connection still held once pysyncobj had parsed it."""

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.getsockname()[:2]
        return str(host), int(port)

    def accept(self) -> TcpConnection:
        accepted, _ = self.server.accept()
        accepted.setblocking(False)
        connection = TcpConnection(self.poller, socket=accepted, recvBufferSize=1 << 20)

        def received(message: Any) -> None:
            self.left_after_parse.append(len(connection._TcpConnection__readBuffer))
            self.received.append(message)

        connection.setOnMessageReceivedCallback(received)
        if self.encrypted:
            connection.encryptor = ENCRYPTOR
        self.connections.append(connection)
        return connection

    def serve_until(self, done: Callable[[], bool], seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            self.poller.poll(0.01)

    def close(self) -> None:
        for connection in self.connections:
            connection.disconnect()
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener(encrypted=True)
    yield served
    served.close()


def disconnected(connection: TcpConnection) -> Callable[[], bool]:
    return lambda: connection.state == CONNECTION_STATE.DISCONNECTED


def test_an_unauthenticated_peer_is_cut_off_at_the_header_and_logged_once(
    bound: FrameBound, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=FRAME_LOGGER):
        for _ in range(2):  # two connections, so two source ports: one line for the host
            with socket.create_connection(listener.address) as probe:
                connection = listener.accept()
                probe.sendall(frame(UNAUTHENTICATED_FRAME_BYTES + 1) + b"x" * 1000)
                listener.serve_until(disconnected(connection))
                assert connection.state == CONNECTION_STATE.DISCONNECTED
                probe.settimeout(5)
                assert probe.recv(1) == b""  # the node hung up
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines
    assert lines[0].startswith("refused an oversized Raft frame from 127.0.0.1: 4097 bytes announced")
    assert "x" * 10 not in lines[0]


def test_a_frame_that_does_not_authenticate_is_refused_and_logged(
    bound: FrameBound, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    forged = os.urandom(200)
    with (
        caplog.at_level(logging.WARNING, logger=FRAME_LOGGER),
        socket.create_connection(listener.address) as probe,
    ):
        connection = listener.accept()
        probe.sendall(frame(len(forged), forged))
        listener.serve_until(disconnected(connection))
    assert connection.state == CONNECTION_STATE.DISCONNECTED and listener.received == []
    [line] = [record.getMessage() for record in caplog.records]
    assert line.startswith("refused a Raft frame that failed authentication from 127.0.0.1")
    assert forged.hex()[:16] not in line and SECRET not in line


def test_frames_up_to_the_bound_pass_whole_and_reads_stop_at_one_bound(
    bound: FrameBound, listener: Listener
) -> None:
    key = os.urandom(32)
    messages = [{"type": "append_entries", "n": n, "data": os.urandom(12_000 + n)} for n in range(4)]
    sizes = [sent_frame_length(message, key) for message in messages]
    bound.frame_bytes = max(sizes)  # the largest fits exactly
    sender_poller = createPoller("select")
    with socket.create_connection(listener.address) as raw:
        raw.setblocking(False)
        server_side = listener.accept()
        server_side.sendRandKey = b"theirs"  # as after the key exchange
        server_side.recvRandKey = key
        sender = TcpConnection(sender_poller, socket=raw)
        sender.encryptor = ENCRYPTOR
        sender.sendRandKey = key
        for message in messages:
            sender.send(message)
        deadline = time.monotonic() + 10
        while sender.getSendBufferSize() and time.monotonic() < deadline:
            sender_poller.poll(0.01)
        assert sender.getSendBufferSize() == 0  # all four frames wait in the kernel
        listener.serve_until(lambda: len(listener.received) == len(messages))
        sender.disconnect()
    assert listener.received == messages
    assert server_side.state == CONNECTION_STATE.CONNECTED
    # a 1 MiB receive would have taken all four at once: reads stopped at one bound's worth
    held = [left + 4 + size for left, size in zip(listener.left_after_parse, sizes, strict=True)]
    assert max(held) == bound.frame_bytes + 4
