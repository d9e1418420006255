"""A node's behaviour without HTTP: replicated writes, consistent reads, status.

The HTTP API (`vecstore.node.api`) is a thin adapter over this class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, TypeVar

from pysyncobj.node import TCPNode

from vecstore.cluster.codec import ROW_ADDING_TAGS, command_tag
from vecstore.cluster.errors import (
    InvalidRequest,
    NotLeader,
    PayloadTooLarge,
    Unavailable,
    error_from_dict,
)
from vecstore.cluster.profile import Profile
from vecstore.node.bridge import replicate
from vecstore.node.config import NodeConfig
from vecstore.node.dump import DumpWriter
from vecstore.node.graphs import LeaderGraphs, graph_access
from vecstore.node.indexer import start_indexer
from vecstore.node.metrics import NodeMetrics
from vecstore.node.replica import Replica, ShardMachine
from vecstore.shard.state import Shard
from vecstore.transport.coalescer import Coalescer
from vecstore.transport.wire import field_int

log = logging.getLogger(__name__)

T = TypeVar("T")
ROLES = {0: "follower", 1: "candidate", 2: "leader"}
READY_APPLY_GAP = 1_000
BACKPRESSURE_POLL_SECONDS = 0.01
READ_CATCH_UP_SECONDS = 1.0
READ_LAG_CHECK_SECONDS = 0.1
CATCH_UP_POLL_SECONDS = 0.002


def caught_up(raft: dict[str, Any], synced: bool, leader_commit: int | None) -> bool:
    """Whether a node with this pysyncobj status may call itself ready: a leader known,
    synced since it started (`Replica.synced`), and at most READY_APPLY_GAP entries between
    what it applied and what its leader last said was committed (`leader_commit`).

    A node's own commit index is bounded by its own log: a member restarted with an empty
    data folder, receiving a snapshot of the whole shard, has a commit index of 1 and has
    applied 1, a gap of 0, while its peers hold millions of rows."""
    if raft.get("leader") is None or not synced:
        return False
    committed = max(int(raft.get("commit_idx") or 0), leader_commit or 0)
    return committed - int(raft.get("last_applied") or 0) <= READY_APPLY_GAP


class Consistency(StrEnum):
    """Read consistency levels."""

    EVENTUAL = "eventual"
    LEADER = "leader"
    STRONG = "strong"


def parse_consistency(value: object) -> Consistency:
    """Parse a consistency level or raise InvalidRequest."""
    try:
        return Consistency(str(value) if value is not None else "eventual")
    except ValueError:
        raise InvalidRequest(f"consistency {value!r} is not one of eventual, leader, strong") from None


class NodeService:
    """Owns the shard, the Raft member and the read executor of one node process."""

    def __init__(self, config: NodeConfig) -> None:
        config.validate()
        self.config = config
        self.metrics = NodeMetrics()
        self.shard = Shard(config.shard_settings())
        self.indexer = start_indexer(self.shard)
        self.machine = ShardMachine(self.shard, self.metrics)
        self.dump = DumpWriter(self.shard, config.data_dir / "raft.dump")
        self.replica = Replica(config, self.machine, self.dump)
        self.graphs = LeaderGraphs(
            self.replica.is_leader,
            self.leader_http_only,
            graph_access(config),
            config.data_dir / "graphs-incoming",
        )
        self.shard.graph_source = self.graphs  # collections consult `follower_graphs` themselves
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vecstore-read")
        self.searches: Coalescer[Any, Any] = Coalescer()
        self.started = time.monotonic()
        self._read_lag: tuple[float, str | None] = (-1e9, None)
        """When `read_lag` last looked, and what it found."""
        self.node_place = f"node {config.node_id}"
        """Where a profile says this node's stages ran."""
        self.shard_place = f"shard {config.shard_id}"
        """Where a profile says the shard core's stages ran (on this node)."""

    def observe_stages(self, profile: Profile) -> None:
        """A search's stages into `vecstore_node_query_stage_seconds` (event loop only)."""
        self.metrics.query_stages.record(profile.stages)

    # ---- writes ------------------------------------------------------------------------

    def leader_http(self) -> str | None:
        """HTTP address of the known leader (or its Raft address if no HTTP one is known)."""
        raft = self.replica.leader_address()
        if raft is None:
            return None
        return self.config.http_of_raft(raft) or raft

    def leader_http_only(self) -> str | None:
        """HTTP address of the known leader; None if none is known or its address is not."""
        raft = self.replica.leader_address()
        return None if raft is None else self.config.http_of_raft(raft)

    def require_leader(self) -> None:
        """Raise NotLeader unless this node leads."""
        if not self.replica.is_leader():
            raise NotLeader(self.leader_http())

    async def submit(self, data: bytes) -> dict[str, Any]:
        """Replicate one encoded command; return its result once applied on this leader."""
        if len(data) > self.config.max_command_bytes:
            raise PayloadTooLarge(
                f"command is {len(data)} bytes; the limit is {self.config.max_command_bytes} "
                "(send smaller batches)"
            )
        self.require_leader()
        if command_tag(data) in ROW_ADDING_TAGS:
            await self.admit_rows()
        started = time.perf_counter()
        outcome = await replicate(
            self.machine.apply_command,
            data,
            wait_seconds=self.config.request_timeout,
            leader_hint=self.leader_http,
        )
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if not outcome["ok"]:
            raise error_from_dict(outcome["error"])
        result: dict[str, Any] = outcome["result"]
        return result

    async def admit_rows(self) -> None:
        """Backpressure: wait while more vectors wait for HNSW on this leader than the shard's
        `max_unindexed_bytes` (searches score those exactly, so their number bounds a
        search's cost). Unavailable (retriable) if the backlog does not shrink in time."""
        limit = self.shard.settings.max_unindexed_bytes
        if limit <= 0 or self.shard.unindexed_bytes() <= limit:
            return
        started = time.monotonic()
        deadline = started + self.config.request_timeout
        self.metrics.write_backpressure.inc()
        try:
            while (backlog := self.shard.unindexed_bytes()) > limit:
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"indexing backlog of {backlog:,} bytes of vectors (limit {limit:,}) did not "
                        f"shrink within {self.config.request_timeout:g}s; retry later"
                    )
                await asyncio.sleep(BACKPRESSURE_POLL_SECONDS)
        finally:
            self.metrics.backpressure_seconds.observe(time.monotonic() - started)

    async def change_membership(self, action: str, raft_address: str) -> None:
        """Add or remove a member through Raft's membership change."""
        self.require_leader()
        if action == "add":
            call = self.replica.addNodeToCluster
        elif action == "remove":
            call = self.replica.removeNodeFromCluster
        else:
            raise InvalidRequest(f"membership action {action!r} must be 'add' or 'remove'")
        await replicate(
            call,
            TCPNode(raft_address),
            wait_seconds=self.config.request_timeout,
            leader_hint=self.leader_http,
        )

    # ---- reads -------------------------------------------------------------------------

    async def read(self, consistency: Consistency, work: Callable[[], T]) -> T:
        """Run a read in the executor at the asked consistency level."""
        await self.check_consistency(consistency)
        return await self.run_read(work)

    async def run_read(self, work: Callable[[], T]) -> T:
        """Run a read whose consistency was already checked, in the executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, work)

    async def catch_up(self, body: dict[str, Any]) -> None:
        """Read-your-writes: a read carrying `min_applied` (the Raft index its client's last
        write was acknowledged at) waits until this replica has applied that far, for up to
        READ_CATCH_UP_SECONDS; then Unavailable (retriable: the client asks another replica)."""
        wanted = field_int(body, "min_applied", None, 0, 2**63 - 1)
        if wanted is None or self.replica.raftLastApplied >= wanted:
            return
        deadline = time.monotonic() + READ_CATCH_UP_SECONDS
        while (applied := self.replica.raftLastApplied) < wanted:
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"this replica has applied the log up to {applied}; the read needs {wanted} "
                    "(a write its client saw acknowledged): ask another replica"
                )
            await asyncio.sleep(CATCH_UP_POLL_SECONDS)

    def read_lag(self) -> str | None:
        """Why this replica must not answer eventual reads, or None: it has not synced with
        a leader since it started, or it has applied more than READY_APPLY_GAP entries less
        than its leader last reported committed (a member restarted with an empty data
        folder would otherwise answer from nothing). While no leader is known a synced
        replica answers (eventual reads survive elections). Looked up at most every
        READ_LAG_CHECK_SECONDS."""
        now = time.monotonic()
        if now - self._read_lag[0] >= READ_LAG_CHECK_SECONDS:
            lag: str | None = None
            seen = self.replica.leader_commit_seen
            if not self.replica.synced():
                lag = "not synced with a leader since it started"
            elif seen is not None and seen - int(self.replica.raftLastApplied) > READY_APPLY_GAP:
                lag = f"{seen - int(self.replica.raftLastApplied):,} log entries behind its leader"
            self._read_lag = (now, lag)
        return self._read_lag[1]

    def applied_index(self) -> int:
        """The index a client's reads must see after a write acknowledged now: the commit
        index (at least the write's own; every replica applies it eventually)."""
        return int(self.replica.raftCommitIndex)

    async def check_consistency(self, consistency: Consistency) -> None:
        """Make a read at this level valid: leader check, and a log barrier for strong; an
        eventual read is refused (retriably) by a replica that is far behind."""
        if consistency is Consistency.EVENTUAL:
            lag = self.read_lag()
            if lag is not None:
                raise Unavailable(f"this replica is catching up ({lag}); ask another replica")
        else:
            self.require_leader()
        if consistency is Consistency.STRONG:
            await replicate(
                self.machine.barrier,
                wait_seconds=self.config.request_timeout,
                leader_hint=self.leader_http,
            )
            self.require_leader()

    # ---- status ------------------------------------------------------------------------

    def raft_status(self) -> dict[str, Any]:
        """pysyncobj's status, retried if the tick thread changed it while being read."""
        for _ in range(5):
            try:
                status: dict[str, Any] = self.replica.getStatus()
                return status
            except RuntimeError:
                continue
        return {}

    def status(self) -> dict[str, Any]:
        """The node's status document (role, Raft indexes, peers, shard counts, digest)."""
        raft = self.raft_status()
        peers = []
        for key, value in sorted(raft.items()):
            if key.startswith("partner_node_status_server_"):
                address = key.removeprefix("partner_node_status_server_")
                peers.append(
                    {
                        "raft_address": address,
                        "http_address": self.config.http_of_raft(address),
                        "connected": value == 2,
                        "match_index": raft.get(f"match_idx_server_{address}"),
                    }
                )
        leader = raft.get("leader")
        shard_status = self.shard.status()
        return {
            "node_id": self.config.node_id,
            "shard_id": self.config.shard_id,
            "role": ROLES.get(int(raft.get("state", 0)), "unknown"),
            "term": raft.get("raft_term"),
            "leader": {
                "raft_address": str(leader) if leader else None,
                "http_address": self.config.http_of_raft(str(leader)) if leader else None,
            },
            "has_quorum": raft.get("has_quorum"),
            "peers": peers,
            "commit_index": raft.get("commit_idx"),
            "last_applied": raft.get("last_applied"),
            "log_entries": raft.get("log_len"),
            "dumps_written": self.dump.dumps_written,
            "dumps_loaded": self.dump.dumps_loaded,
            "ready": self.is_ready(raft),
            "digest": self.shard.digest(),
            "uptime_seconds": round(time.monotonic() - self.started, 1),
            "limits": {  # routers check each shard's part of a multi-shard write against them
                "max_command_bytes": self.config.max_command_bytes,
                "max_payload_bytes": self.shard.settings.max_payload_bytes,
            },
            **shard_status,
        }

    def is_ready(self, raft: dict[str, Any] | None = None) -> bool:
        """Ready: a leader is known and this node has applied (nearly) all the leader has
        committed; see `caught_up`."""
        raft = raft if raft is not None else self.raft_status()
        return caught_up(raft, self.replica.synced(), self.replica.leader_commit_seen)

    def refresh_metrics(self) -> None:
        """Copy status figures into the gauges before a scrape."""
        raft = self.raft_status()
        metrics = self.metrics
        metrics.raft_term.set(float(raft.get("raft_term") or 0))
        metrics.raft_is_leader.set(1.0 if raft.get("state") == 2 else 0.0)
        metrics.raft_commit_index.set(float(raft.get("commit_idx") or 0))
        metrics.raft_last_applied.set(float(raft.get("last_applied") or 0))
        metrics.raft_log_entries.set(float(raft.get("log_len") or 0))
        shard_status = self.shard.status()
        metrics.indexing_lag.set(float(shard_status["indexing_lag"]))
        for how, rows in self.shard.graph_rows().items():
            metrics.graph_rows.labels(how).set(rows)
        metrics.graph_bytes_received.set(self.graphs.shipped_bytes)
        for name, stats in shard_status["collections"].items():
            metrics.vectors.labels(name).set(stats["points"])
            metrics.segments.labels(name).set(stats["segments"])
            metrics.tombstones.labels(name).set(stats["tombstones"])

    def close(self) -> None:
        """Stop Raft, reads and the shard's indexer."""
        try:
            self.replica.destroy_synchronous()
        except Exception:
            log.exception("stopping raft failed")
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.indexer.stop()
        self.shard.close()
