"""Every change VecStore makes to pysyncobj 0.3.17's behaviour, in one place, with why.

1. Journal: `DiskJournal` replaces FileJournal (which keeps every entry in RAM until log
   compaction); `entries()` reads only the entries a message needs.
2. Pipelining: on a successful append reply pysyncobj sets the follower's next index
   back to the acknowledged one, so every entry still in flight is sent again (measured:
   each 256 KiB batch was compressed, encrypted and sent ~3.5 times per follower).
   `advance_on_success` keeps next index monotonic on success; rejections still rewind.
3. Source address (optional, `raft_source_host`): outgoing Raft connections are bound to
   this host's IP, for multi-homed machines, and so that a proxy can tell peers apart
   by source address (the chaos suite's network partitions rely on it).
4. Encryption: pysyncobj's Fernet (AES-CBC + HMAC + base64) costs about 8 ms per
   256 KiB message; `raft_cipher` swaps in AES-256-GCM with the same interface and
   guarantees (authenticated before anything is unpickled) at about 0.35 ms.
5. Compression: pysyncobj zlib-compresses every message at level 3 (8 ms per 256 KiB of
   float vectors, which do not compress). Level 0 keeps the wire format (peers decompress
   as before) at 0.2 ms.
6. Stale appends: a follower running pysyncobj deletes every entry after `prevLogIdx`
   before appending, even entries that match. A duplicate or stale append (resent after a
   reset reply, common with pipelining and flaky links) then cut entries the follower had
   acknowledged and applied, below the leader's match index (found by the chaos suite).
   `trim_known_entries` applies Raft's rule: skip entries already present, truncate only
   at the first conflict.
7. Snapshot chunks: an append without `prevLogIdx` (a chunk of the leader's dump) checks
   nothing in the follower's log, yet pysyncobj raised the follower's commit index to the
   end of its own log. A deposed leader receiving the new leader's dump thus committed and
   applied its own unreplicated entries, acknowledged them to clients, and lost them when
   the dump replaced its state (found by the chaos suite). `hold_commit_without_log_check`
   keeps such a message from raising the commit index.
8. Frame bound (`raft_frames`): pysyncobj buffered a frame of any announced length before
   authenticating it (2 GiB announced cost a leader 440 MiB and its leadership). Each
   frame's length is checked at its header (4 KiB until the peer's key authenticates,
   then the largest append a member sends), refusals are logged, and appends are cut by
   their wire cost so that a member never exceeds the bound. The listener binds to the
   advertised address (replica.py), not pysyncobj's 0.0.0.0.
9. Snapshot transfer: a follower receiving the leader's dump sends nothing back until the
   last chunk is loaded, and a connection that reads nothing for `connection_timeout`
   (3.5 s) is dropped with its unsent buffer. A dump that takes longer to send (a 500 MiB
   shard at a million points) was cut every time; on a quick reconnect the leader went on
   reading its dump where it was, so the follower got a file with a hole in it and failed to
   load it, forever (found by the million-vector run's `node replace`). Now the follower
   answers every chunk but the last with a `SNAPSHOT_PROGRESS` message (ignored by the
   leader; reading it keeps the connection alive: `acknowledge_dump_chunk`), the leader
   starts a transmission over from byte 0 when the connection drops
   (`Replica._SyncObj__onNodeDisconnected`), and a follower that has just spent minutes
   loading a dump restarts its election timer instead of calling an election at once.

Every one of these reaches into pysyncobj's private (often name-mangled `_SyncObj__*`) names,
which any release may rename; a renamed method would silently turn a safety fix into dead
code. So pysyncobj is pinned to exactly `PYSYNCOBJ_VERSION`, every private name the patches
(here, replica.py, journal.py, raft_cipher.py, raft_frames.py) use or replace is listed in
`PATCHED_PRIVATE_NAMES`, and `verify_pysyncobj` refuses to start (RuntimeError) on any other
version or when a listed name is missing. It runs when this module is imported and again
before the patches are installed.
"""

from __future__ import annotations

import dis
import functools
import inspect
import types
import zlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

from pysyncobj import syncobj as syncobj_module
from pysyncobj import tcp_connection
from pysyncobj.journal import Journal
from pysyncobj.monotonic import monotonic as monotonic_time
from pysyncobj.syncobj import SyncObj
from pysyncobj.tcp_connection import TcpConnection

from vecstore.node.raft_cipher import get_encryptor
from vecstore.node.raft_frames import PRIVATE_NAMES as FRAME_PRIVATE_NAMES

LEADER_STATE = 2

PYSYNCOBJ_VERSION = "0.3.17"
"""The pysyncobj release these patches were written against (pinned in pyproject.toml)."""

PrivateName = tuple[Any, str]

PATCHED_PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # SyncObj state read or written by advance_on_success / trim_known_entries /
    # hold_commit_without_log_check (instance attributes, assigned in SyncObj's methods)
    (SyncObj, "_SyncObj__raftState"),
    (SyncObj, "_SyncObj__raftCurrentTerm"),
    (SyncObj, "_SyncObj__raftCommitIndex"),
    (SyncObj, "_SyncObj__raftMatchIndex"),
    (SyncObj, "_SyncObj__raftNextIndex"),
    (SyncObj, "_SyncObj__lastResponseTime"),
    (SyncObj, "_SyncObj__raftLog"),
    (SyncObj, "_SyncObj__transport"),
    (SyncObj, "_SyncObj__serializer"),
    (SyncObj, "_SyncObj__raftElectionDeadline"),
    # SyncObj methods called by the patches
    (SyncObj, "_SyncObj__getCurrentLogIndex"),
    (SyncObj, "_SyncObj__sendNextNodeIdx"),
    # SyncObj methods replica.Replica overrides
    (SyncObj, "_SyncObj__getEntries"),
    (SyncObj, "_SyncObj__onMessageReceived"),
    (SyncObj, "_SyncObj__onNodeDisconnected"),
    # single-underscore SyncObj methods replica.Replica calls
    (SyncObj, "_getLeader"),
    (SyncObj, "_isLeader"),
    # journal.DiskJournal: SyncObj closes its journal through this private method
    (Journal, "_destroy"),
    # module globals replaced: journal factory (replica), encryptor factory (raft_cipher),
    # and the transport's zlib and socket modules (compression level, source address)
    (syncobj_module, "createJournal"),
    (syncobj_module, "getEncryptor"),
    (tcp_connection, "zlib"),
    (tcp_connection, "socket"),
    # raft_frames: the frame bound reads the read buffer and socket, caps the receive size,
    # wraps read and parse
    *((TcpConnection, name) for name in FRAME_PRIVATE_NAMES),
)
"""(owner, name) for every private pysyncobj name VecStore's patches use or replace."""


def _code_objects(owner: type) -> Iterator[types.CodeType]:
    """Code of every function defined in `owner`'s body, nested code included."""
    pending = [
        inspect.unwrap(value).__code__
        for value in vars(owner).values()
        if inspect.isfunction(inspect.unwrap(value))
    ]
    while pending:
        code = pending.pop()
        yield code
        pending.extend(const for const in code.co_consts if isinstance(const, types.CodeType))


@functools.cache
def _assigned_attributes(owner: type) -> frozenset[str]:
    """Every attribute name a function in `owner`'s body assigns (`x.<name> = ...`)."""
    return frozenset(
        str(instruction.argval)
        for code in _code_objects(owner)
        for instruction in dis.get_instructions(code)
        if instruction.opname == "STORE_ATTR"
    )


def private_name_present(owner: Any, name: str) -> bool:
    """True if `owner` has `name`, or (for a class) one of its methods assigns `self.<name>`."""
    if hasattr(owner, name):
        return True
    return isinstance(owner, type) and name in _assigned_attributes(owner)


def _owner_name(owner: Any) -> str:
    return str(getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner)))


def check_pysyncobj(
    version: str,
    present: Callable[[Any, str], bool],
    names: tuple[PrivateName, ...] = PATCHED_PRIVATE_NAMES,
) -> None:
    """Raise RuntimeError unless `version` is PYSYNCOBJ_VERSION and every name is `present`."""
    if version != PYSYNCOBJ_VERSION:
        raise RuntimeError(
            f"pysyncobj {version} is installed, but VecStore's Raft patches were written for "
            f"pysyncobj {PYSYNCOBJ_VERSION} (they replace private methods a release may rename); "
            f"refusing to start. Install pysyncobj=={PYSYNCOBJ_VERSION}, or review every patch "
            "in vecstore.node.raft_patches against the new release and update PYSYNCOBJ_VERSION."
        )
    missing = [f"{_owner_name(owner)}.{name}" for owner, name in names if not present(owner, name)]
    if missing:
        raise RuntimeError(
            f"pysyncobj {version} lacks {', '.join(missing)}, which VecStore's Raft patches "
            f"(written for pysyncobj {PYSYNCOBJ_VERSION}) use or replace; refusing to start, "
            "since the patches would silently do nothing."
        )


def installed_pysyncobj_version() -> str:
    """The installed pysyncobj's version, from its package metadata."""
    try:
        return metadata.version("pysyncobj")
    except metadata.PackageNotFoundError:
        return "unknown (no package metadata)"


def verify_pysyncobj() -> None:
    """Refuse (RuntimeError) to run the patches on a pysyncobj they were not written for."""
    check_pysyncobj(installed_pysyncobj_version(), private_name_present)


verify_pysyncobj()
_original_compress = zlib.compress


def _stored_compress(data: bytes, level: int = 0) -> bytes:
    return _original_compress(data, 0)


def install_transport_patches() -> None:
    """Skip compression and use AES-GCM for pysyncobj's messages (idempotent)."""
    verify_pysyncobj()
    shim = types.SimpleNamespace(compress=_stored_compress, decompress=zlib.decompress)
    tcp_connection.zlib = shim
    syncobj_module.getEncryptor = get_encryptor


def advance_on_success(syncobj: Any, node: Any, message: dict[str, Any]) -> bool:
    """Handle a leader's successful `next_node_idx` reply without rewinding; True if handled."""
    if (
        message.get("type") != "next_node_idx"
        or not message.get("success")
        or message.get("reset")
        or syncobj._SyncObj__raftState != LEADER_STATE
    ):
        return False
    acknowledged = int(message["next_node_idx"])
    match_index = syncobj._SyncObj__raftMatchIndex
    next_index = syncobj._SyncObj__raftNextIndex
    if match_index.get(node, 0) < acknowledged - 1:
        match_index[node] = acknowledged - 1
    if next_index.get(node, 0) < acknowledged:
        next_index[node] = acknowledged
    syncobj._SyncObj__lastResponseTime[node] = monotonic_time()
    return True


class _SourceBoundSockets:
    """Stands in for the `socket` module inside pysyncobj.tcp_connection."""

    def __init__(self, real: Any, source_host: str) -> None:
        self._real = real
        self._source_host = source_host

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def socket(self, family: int = -1, kind: int = -1, *args: Any) -> Any:
        sock = self._real.socket(family, kind, *args)
        if family == self._real.AF_INET:
            sock.bind((self._source_host, 0))
        return sock


def install_source_address(source_host: str | None) -> None:
    """Bind pysyncobj's outgoing connections to `source_host` (no-op for None)."""
    if not source_host:
        return
    real = tcp_connection.socket
    if isinstance(real, _SourceBoundSockets):
        real = real._real
    tcp_connection.socket = _SourceBoundSockets(real, source_host)


def trim_known_entries(syncobj: Any, node: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Raft's AppendEntries rule for a follower, in front of pysyncobj's handler.

    Returns the message pysyncobj should handle: unchanged; without the entries this
    follower already has (so pysyncobj truncates only at the first conflict); or, when
    every entry is already here, as a heartbeat whose commit index stops at the last entry
    it carried, after answering for those entries here exactly as pysyncobj would.
    """
    entries = message.get("entries")
    if (
        message.get("type") != "append_entries"
        or not entries
        or "prevLogIdx" not in message
        or "transmission" in message
        or message.get("term") != syncobj._SyncObj__raftCurrentTerm
        or syncobj._SyncObj__raftState == LEADER_STATE
        or int(message["prevLogIdx"]) >= syncobj._SyncObj__getCurrentLogIndex()
    ):
        return message
    first = int(message["prevLogIdx"]) + 1
    present = {int(index): term for _, index, term in syncobj._SyncObj__getEntries(first, len(entries))}
    matched = 0
    for _, index, term in entries:
        if present.get(int(index)) != term:
            break
        matched += 1
    if matched == 0:
        return message  # a conflict right away (or entries compacted here): pysyncobj's path
    _, last_index, last_term = entries[matched - 1]
    if matched < len(entries):
        return {**message, "prevLogIdx": last_index, "prevLogTerm": last_term, "entries": entries[matched:]}
    heartbeat = {k: v for k, v in message.items() if k not in ("entries", "prevLogIdx", "prevLogTerm")}
    heartbeat["commit_index"] = min(int(message["commit_index"]), int(last_index))
    syncobj._SyncObj__sendNextNodeIdx(node, nextNodeIdx=int(last_index) + 1, success=True)
    return heartbeat


def hold_commit_without_log_check(syncobj: Any, message: dict[str, Any]) -> dict[str, Any]:
    """An append without `prevLogIdx` verified no entry here: it must not raise the commit index.

    Raft lets a follower commit only up to the last entry an append proved identical to the
    leader's. A snapshot chunk proves nothing about the follower's log (the dump, once
    installed, sets the applied index itself; the next regular append moves the commit index).
    """
    if message.get("type") != "append_entries" or "prevLogIdx" in message:
        return message
    current = int(syncobj._SyncObj__raftCommitIndex)
    if int(message.get("commit_index", 0)) <= current:
        return message
    return {**message, "commit_index": current}


SNAPSHOT_PROGRESS = "vecstore_snapshot_progress"
"""A follower's answer to a chunk of the leader's dump (patch 9); pysyncobj ignores unknown types."""


def acknowledge_dump_chunk(syncobj: Any, node: Any, message: dict[str, Any]) -> None:
    """After pysyncobj has handled `message`: answer a dump chunk that is not the last, so
    the leader's connection keeps reading; after the last one (the dump loaded, which can
    take minutes), give the leader a full election timeout before calling an election."""
    serialized = message.get("serialized")
    if message.get("type") != "append_entries" or not isinstance(serialized, tuple | list):
        return
    if len(serialized) != 3:
        return
    if serialized[2]:
        deadline = monotonic_time() + float(syncobj.conf.raftMaxTimeout)
        syncobj._SyncObj__raftElectionDeadline = max(syncobj._SyncObj__raftElectionDeadline, deadline)
    else:
        syncobj._SyncObj__transport.send(node, {"type": SNAPSHOT_PROGRESS})
