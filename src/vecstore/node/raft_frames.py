"""A bound on what pysyncobj buffers from a Raft peer, and appends sized to fit under it.

pysyncobj reads a 4-byte length, then buffers the announced frame whole before decrypting
it: one unauthenticated connection announcing 2 GiB made a leader buffer hundreds of MiB
and lose its leadership. Here each frame's announced length is checked as soon as its
header arrives and the connection is closed when it exceeds the bound: tiny until the
peer has proved it holds the secret (its first frame is an encrypted 32-byte key), then
the largest message a member sends. Reads never take more than one bound's worth (plus
the header) into a connection's buffer. Refused peers and frames that fail
authentication are logged, rate-limited per peer host; never the frame's bytes.

The member bound holds because appends are sized by what their entries cost on the wire
(`take_within`): pysyncobj pickles with protocol 2, which writes bytes as latin-1 text in
UTF-8, so a byte can take two; an entry, itself a pickled call holding the command, can
take four times the command's size in an append.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable
from typing import Any

from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection

from vecstore.node.caller_auth import RefusalLog

log = logging.getLogger(__name__)

Entry = tuple[bytes, int, int]
"""A Raft log entry as pysyncobj holds it: (command, index, term)."""

HEADER = struct.Struct("i")  # pysyncobj's frame header: a native signed int
UNAUTHENTICATED_FRAME_BYTES = 4096
"""A peer's first frame is its encrypted random key (142 bytes measured)."""
ENTRY_HEADER_BYTES = 4096
"""A log entry beyond the command it carries: the type byte and the pickled call around
the command (56 bytes measured); membership and version entries are smaller (~260)."""
ENTRY_WIRE_OVERHEAD = 64
"""What an entry adds to a pickled append beyond twice its length (at most 46 measured:
the bytes' wrapping, index, term, tuple and memo opcodes)."""
DUMP_CHUNK_BYTES = 1 << 20
"""Dump chunk size (pysyncobj's logCompactionBatchSize): one chunk per message."""
FRAME_MARGIN_BYTES = 1 << 20
"""Message fields, the connection key, zlib's stored-block headers (5 bytes per 64 KiB)
and the cipher's header, nonce and tag around one append or dump chunk."""

READ_BUFFER = "_TcpConnection__readBuffer"
RECV_SIZE = "_TcpConnection__recvBufferSize"
PROCESS_READ = "_TcpConnection__processRead"
PARSE_MESSAGE = "_TcpConnection__processParseMessage"
SOCKET = "_TcpConnection__socket"
PRIVATE_NAMES = (READ_BUFFER, RECV_SIZE, PROCESS_READ, PARSE_MESSAGE, SOCKET)
"""TcpConnection's private names this module reads, sets or wraps (checked by raft_patches)."""


def max_entry_bytes(max_command_bytes: int) -> int:
    """The largest Raft log entry: a command of `max_command_bytes`, pickled (up to twice
    its size), plus the entry's header."""
    return 2 * max_command_bytes + ENTRY_HEADER_BYTES


def entry_wire_bytes(length: int) -> int:
    """An upper bound on what an entry of `length` bytes adds to a pickled append."""
    return 2 * length + ENTRY_WIRE_OVERHEAD


def take_within(entries: Iterable[Entry], budget: int) -> list[Entry]:
    """The leading entries whose wire cost stays within `budget` bytes, and always the
    first (alone, it is within the frame bound by `max_frame_bytes`). `entries` is read
    lazily: nothing after the first entry that does not fit."""
    taken: list[Entry] = []
    spent = 0
    for entry in entries:
        cost = entry_wire_bytes(len(entry[0]))
        if taken and spent + cost > budget:
            break
        taken.append(entry)
        spent += cost
    return taken


def max_frame_bytes(max_command_bytes: int, batch_bytes: int) -> int:
    """The largest frame a member sends: an append of entries costing at most `batch_bytes`
    (pysyncobj's appendEntriesBatchSizeBytes, given to `take_within`) or of one entry of
    any allowed size, or a dump chunk; plus margin."""
    largest = max(
        batch_bytes,
        entry_wire_bytes(max_entry_bytes(max_command_bytes)),
        entry_wire_bytes(DUMP_CHUNK_BYTES),
    )
    return largest + FRAME_MARGIN_BYTES


def oversized_frame(buffer: bytes, limit: int) -> int | None:
    """The announced length of the first frame in `buffer` over `limit` (or negative), if
    any; frames are walked header to header, stopping at the first incomplete one."""
    offset = 0
    while offset + HEADER.size <= len(buffer):
        (length,) = HEADER.unpack_from(buffer, offset)
        if length < 0 or length > limit:
            return int(length)
        offset += HEADER.size + length
    return None


class FrameBound:
    """The limits of one node, and its rate-limited logs of refused peers."""

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self.oversized = RefusalLog("an oversized Raft frame")
        self.unauthenticated = RefusalLog("a Raft frame that failed authentication")

    def limit(self, connection: Any) -> int:
        """The bound for a connection: small until the peer's key has authenticated."""
        authenticated = connection.encryptor is None or connection.sendRandKey
        return self.frame_bytes if authenticated else UNAUTHENTICATED_FRAME_BYTES


def _peer(connection: Any) -> tuple[str, str]:
    """(host, port) of the peer, looked up once per connection (the socket is gone once
    closed). Refusals are rate-limited per host: each connection has a new port."""
    known: tuple[str, str] | None = getattr(connection, "vecstore_peer", None)
    if known is None:
        try:
            host, port = getattr(connection, SOCKET).getpeername()[:2]
        except (OSError, AttributeError, ValueError, TypeError):
            return "unknown peer", "?"
        known = connection.vecstore_peer = (str(host), str(port))
    return known


_installed: list[FrameBound] = []


def install_frame_bound(frame_bytes: int) -> FrameBound:
    """Bound every TcpConnection's frames to `frame_bytes` (idempotent; the last call's
    bound applies: one node per process). Returns the process's bound."""
    if _installed:
        _installed[0].frame_bytes = frame_bytes
        return _installed[0]
    bound = FrameBound(frame_bytes)
    _installed.append(bound)
    read: Callable[[Any], bool] = getattr(TcpConnection, PROCESS_READ)
    parse: Callable[[Any], Any] = getattr(TcpConnection, PARSE_MESSAGE)

    def bounded_read(connection: Any) -> bool:
        limit = bound.limit(connection)
        room = limit + HEADER.size - len(getattr(connection, READ_BUFFER))
        if room <= 0:
            return False  # a whole frame is buffered: pysyncobj consumes it before more is read
        chunk = getattr(connection, RECV_SIZE)
        setattr(connection, RECV_SIZE, min(chunk, room))
        try:
            more = read(connection)
        finally:
            setattr(connection, RECV_SIZE, chunk)
        announced = oversized_frame(getattr(connection, READ_BUFFER), limit)
        if announced is not None:
            host, port = _peer(connection)
            bound.oversized.refused(host, f"{announced} bytes announced (port {port}), limit {limit}")
            connection.disconnect()
            return False
        return more

    def logged_parse(connection: Any) -> Any:
        host, port = _peer(connection)
        message = parse(connection)
        if message is None and connection.state == CONNECTION_STATE.DISCONNECTED:
            bound.unauthenticated.refused(host, f"wrong cluster secret, or not a VecStore node (port {port})")
        return message

    setattr(TcpConnection, PROCESS_READ, bounded_read)
    setattr(TcpConnection, PARSE_MESSAGE, logged_parse)
    return bound
