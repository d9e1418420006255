"""One node's Raft member: pysyncobj configured as measured, around the shard state.

The replicated state machine is `ShardMachine`, a SyncObjConsumer whose one replicated
method takes a msgpack-encoded command (our data is never pickled; pysyncobj wraps the
bytes in its own authenticated, encrypted transport). Apply runs in the tick thread and
stays cheap: the shard buffers vectors and indexes them in the background.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pysyncobj.syncobj as syncobj_module
from pysyncobj import SyncObj, SyncObjConf, SyncObjConsumer, replicated

from vecstore.cluster.codec import decode_command
from vecstore.cluster.errors import VecStoreError
from vecstore.node.config import NodeConfig
from vecstore.node.dump import DumpWriter
from vecstore.node.journal import DiskJournal
from vecstore.node.metrics import NodeMetrics
from vecstore.node.raft_frames import (
    DUMP_CHUNK_BYTES,
    install_frame_bound,
    max_entry_bytes,
    max_frame_bytes,
    take_within,
)
from vecstore.node.raft_patches import (
    SNAPSHOT_PROGRESS,
    acknowledge_dump_chunk,
    advance_on_success,
    hold_commit_without_log_check,
    install_source_address,
    install_transport_patches,
    trim_known_entries,
)
from vecstore.shard.state import Shard

log = logging.getLogger(__name__)

ApplyOutcome = dict[str, Any]


class ShardMachine(SyncObjConsumer):  # type: ignore[misc]
    """The replicated state: applies committed commands to the shard."""

    def __init__(self, shard: Shard, metrics: NodeMetrics) -> None:
        super().__init__()
        self.shard = shard
        self.metrics = metrics

    @replicated  # type: ignore[untyped-decorator]
    def apply_command(self, data: bytes) -> ApplyOutcome:
        """Decode and apply one command; errors become values so every replica agrees."""
        started = time.perf_counter()
        try:
            result = self.shard.apply(decode_command(data))
            outcome: ApplyOutcome = {"ok": True, "result": result}
        except VecStoreError as err:
            outcome = {"ok": False, "error": err.to_dict()}
        except Exception as err:  # a bug: log it loudly, keep the node alive
            log.exception("apply failed unexpectedly")
            outcome = {"ok": False, "error": {"code": "internal", "error": f"apply failed: {err!r}"}}
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        return outcome

    @replicated  # type: ignore[untyped-decorator]
    def barrier(self) -> bool:
        """A no-op through the log: once applied here, every earlier entry is applied too."""
        return True


class Replica(SyncObj):  # type: ignore[misc]
    """pysyncobj's SyncObj with a disk-backed journal, and appends read lazily and cut by
    their cost on the wire (so that they fit the frame bound, raft_frames)."""

    def __init__(self, config: NodeConfig, machine: ShardMachine, dump: DumpWriter) -> None:
        self.config = config
        self.leader_commit_seen: int | None = None
        """The highest commit index a leader's append carried, as sent (patch 7 holds back
        the one pysyncobj keeps for a snapshot chunk)."""
        self._sync_target: int | None = None
        self._synced = False
        conf = make_conf(config, dump, on_state_changed=self._on_state_changed)
        peers = [peer.raft_address for peer in config.peers]
        install_transport_patches()
        install_frame_bound(max_frame_bytes(config.max_command_bytes, append_batch_bytes(config)))
        install_source_address(config.raft_source_host)
        with _disk_journal(config.raft.journal_fsync == "always"):
            super().__init__(config.raft_address, peers, conf=conf, consumers=[machine])

    def _SyncObj__getEntries(  # noqa: N802 - overrides pysyncobj's private reader
        self, fromIDx: int | None, count: int | None = None, maxSizeBytes: int | None = None
    ) -> list[tuple[bytes, int, int]]:
        journal = self._SyncObj__raftLog
        first = journal[0][1]
        if fromIDx is None or fromIDx < first:
            return []
        start = fromIDx - first
        if maxSizeBytes is not None:  # an append: sized by its cost on the wire (raft_frames)
            stop = len(journal) if count is None else min(len(journal), start + count)
            return take_within((journal[position] for position in range(start, stop)), maxSizeBytes)
        if isinstance(journal, DiskJournal):
            return journal.entries(start, count, None)
        return list(journal[start:][:count])

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        if isinstance(message, dict):
            if message.get("type") == SNAPSHOT_PROGRESS:
                return  # received: the connection stays alive (patch 9)
            if message.get("type") == "append_entries" and isinstance(message.get("commit_index"), int):
                self.leader_commit_seen = max(self.leader_commit_seen or 0, message["commit_index"])
            if advance_on_success(self, node, message):
                return
            message = hold_commit_without_log_check(self, trim_known_entries(self, node, message))
        super()._SyncObj__onMessageReceived(node, message)
        if isinstance(message, dict):
            acknowledge_dump_chunk(self, node, message)

    def _SyncObj__onNodeDisconnected(self, node: Any) -> None:  # noqa: N802
        super()._SyncObj__onNodeDisconnected(node)
        # a dump being sent starts over: what the dropped connection had buffered is lost
        self._SyncObj__serializer.cancelTransmisstion(node)

    def _on_state_changed(self, old: int, new: int) -> None:
        log.info("raft state changed", extra={"from": old, "to": new, "node": self.config.node_id})

    def synced(self) -> bool:
        """Whether this node has, since it started, applied everything its leader had
        committed when this node was first asked (a leader: its own commit index). Latched.

        pysyncobj's own `isReady` latches when the applied index equals the leader's commit
        index as pysyncobj keeps it, which patch 7 holds at this node's own for a snapshot
        chunk: a member restarted empty, receiving the leader's dump, then read as ready
        with nothing applied."""
        if self._synced:
            return True
        target = int(self.raftCommitIndex) if self.is_leader() else self.leader_commit_seen
        if target is None:
            return False
        if self._sync_target is None:
            self._sync_target = target
        self._synced = int(self.raftLastApplied) >= self._sync_target
        return self._synced

    def leader_address(self) -> str | None:
        """Raft address of the leader this node knows, if any."""
        leader = self._getLeader()
        return None if leader is None else str(leader.id)

    def is_leader(self) -> bool:
        """True while this node believes it leads."""
        return bool(self._isLeader())


def append_batch_bytes(config: NodeConfig) -> int:
    """pysyncobj's appendEntriesBatchSizeBytes: no log entry may reach it (pysyncobj's
    chunked path for such an entry is broken), so the largest entry (a pickled command:
    up to twice the command limit) plus headroom. Appends are cut at this wire cost."""
    return max_entry_bytes(config.max_command_bytes) + (1 << 20)


def make_conf(
    config: NodeConfig, dump: DumpWriter, on_state_changed: Callable[[int, int], None]
) -> SyncObjConf:
    """SyncObjConf with the tuning measured on this hardware (docs/raft.md says why)."""
    tuning = config.raft
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    batch_bytes = append_batch_bytes(config)
    return SyncObjConf(
        password=config.cluster_secret,
        appendEntriesUseBatch=False,
        appendEntriesBatchSizeBytes=batch_bytes,
        appendEntriesPeriod=tuning.append_entries_period,
        raftMinTimeout=tuning.min_timeout,
        raftMaxTimeout=tuning.max_timeout,
        # an isolated leader steps down instead of accepting writes it cannot commit for 30 s
        leaderFallbackTimeout=2 * tuning.max_timeout,
        connectionTimeout=max(tuning.connection_timeout, tuning.max_timeout),
        connectionRetryTime=tuning.connection_retry,
        sendBufferSize=tuning.socket_buffer_bytes,
        recvBufferSize=tuning.socket_buffer_bytes,
        commandsWaitLeader=False,
        dynamicMembershipChange=True,
        journalFile=str(data_dir / "raft.journal"),
        fullDumpFile=str(data_dir / "raft.dump"),
        serializer=dump.serialize,
        serializeChecker=dump.check,
        deserializer=dump.deserialize,
        logCompactionMinEntries=tuning.log_compaction_min_entries,
        logCompactionMinTime=tuning.log_compaction_min_seconds,
        logCompactionBatchSize=DUMP_CHUNK_BYTES,
        onStateChanged=on_state_changed,
        useFork=False,
        # pysyncobj alone would listen on every interface (0.0.0.0)
        bindAddress=config.raft_listen_address,
        dnsCacheTime=tuning.dns_cache_time,
        dnsFailCacheTime=tuning.dns_fail_cache_time,
    )


@contextlib.contextmanager
def _disk_journal(fsync: bool) -> Iterator[None]:
    """Make SyncObj.__init__ build a DiskJournal instead of its in-RAM FileJournal."""
    original = syncobj_module.createJournal

    def create(path: str | None) -> Any:
        return original(None) if path is None else DiskJournal(path, fsync=fsync)

    syncobj_module.createJournal = create
    try:
        yield
    finally:
        syncobj_module.createJournal = original
