"""A bound on what pysyncobj buffers from a Raft peer before it authenticates anything.

pysyncobj reads a 4-byte length, then buffers the announced frame whole before decrypting
it: one unauthenticated connection announcing 2 GiB made a leader buffer hundreds of MiB
and lose its leadership. Here the announced length of every frame is checked as soon as
its header arrives, and the connection is closed when it exceeds the bound: tiny before
the peer has proved it holds the secret (its first frame is a 32-byte key), the largest
message a member can send afterwards. A connection also stops reading while its buffer
holds a whole bound's worth, until pysyncobj has consumed it. Refused peers and frames
that fail authentication are logged, rate-limited, with the peer's address.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection

from vecstore.node.caller_auth import RefusalLog

log = logging.getLogger(__name__)

HEADER = struct.Struct("i")  # pysyncobj's frame header: a native signed int
UNAUTHENTICATED_FRAME_BYTES = 64 * 1024
"""The handshake frames (a random key, a node address) are far smaller."""
FRAME_MARGIN_BYTES = 1 << 20
"""Pickling, message fields and encryption around the entries of one append."""

READ_BUFFER = "_TcpConnection__readBuffer"
PROCESS_READ = "_TcpConnection__processRead"
PARSE_MESSAGE = "_TcpConnection__processParseMessage"
SOCKET = "_TcpConnection__socket"
PRIVATE_NAMES = (READ_BUFFER, PROCESS_READ, PARSE_MESSAGE, SOCKET)
"""TcpConnection's private names this module reads or wraps (checked by raft_patches)."""


def max_frame_bytes(batch_bytes: int) -> int:
    """The largest frame a member sends: one append of up to `batch_bytes` of entries (the
    appendEntriesBatchSizeBytes VecStore gives pysyncobj) or a dump chunk, plus margin."""
    return batch_bytes + FRAME_MARGIN_BYTES


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
    """The limits of one node, and its rate-limited log of refused peers."""

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self.oversized = RefusalLog("an oversized Raft frame")
        self.unauthenticated = RefusalLog("a Raft frame that failed authentication")

    def limit(self, connection: Any) -> int:
        """The bound for a connection: small until the peer has sent its key."""
        authenticated = connection.encryptor is None or connection.sendRandKey
        return self.frame_bytes if authenticated else UNAUTHENTICATED_FRAME_BYTES


def _peer(connection: Any) -> str:
    """The peer's address, looked up once per connection (the socket is gone once closed)."""
    known: str | None = getattr(connection, "vecstore_peer", None)
    if known is None:
        try:
            host, port = getattr(connection, SOCKET).getpeername()[:2]
        except (OSError, AttributeError, ValueError):
            return "unknown peer"
        known = connection.vecstore_peer = f"{host}:{port}"
    return known


_installed: list[FrameBound] = []


def install_frame_bound(frame_bytes: int) -> None:
    """Bound every TcpConnection's frames to `frame_bytes` (idempotent; the last call's
    bound applies: one node per process)."""
    if _installed:
        _installed[0].frame_bytes = frame_bytes
        return
    bound = FrameBound(frame_bytes)
    _installed.append(bound)
    read: Callable[[Any], bool] = getattr(TcpConnection, PROCESS_READ)
    parse: Callable[[Any], Any] = getattr(TcpConnection, PARSE_MESSAGE)

    def bounded_read(connection: Any) -> bool:
        limit = bound.limit(connection)
        if len(getattr(connection, READ_BUFFER)) > limit + HEADER.size:
            return False  # let pysyncobj consume what it holds before reading more
        more = read(connection)
        announced = oversized_frame(getattr(connection, READ_BUFFER), limit)
        if announced is not None:
            bound.oversized.refused(_peer(connection), f"{announced} bytes announced, limit {limit}")
            connection.disconnect()
            return False
        return more

    def logged_parse(connection: Any) -> Any:
        peer = _peer(connection)
        message = parse(connection)
        if message is None and connection.state == CONNECTION_STATE.DISCONNECTED:
            bound.unauthenticated.refused(peer, "wrong cluster secret, or not a VecStore node")
        return message

    setattr(TcpConnection, PROCESS_READ, bounded_read)
    setattr(TcpConnection, PARSE_MESSAGE, logged_parse)
