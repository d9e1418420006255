"""Local child processes: the one supervised-process class, and the shard groups of tests.

`ManagedProcess` is every process the launcher runs (nodes, router, broker, ingest worker):
started with its own environment, appending to its own log file, stopped with SIGTERM and
then SIGKILL after a grace period. `LocalShardGroup` runs the R nodes of one shard, each a
real `python -m vecstore.node` process with its own data directory and free ports on
127.0.0.1; `LocalCluster` (local_cluster.py) runs a whole cluster with the same class.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecstore.cluster.credentials import NodeAccess

STOP_GRACE_SECONDS = 10.0


_handed_out: set[int] = set()
PORT_RANGE = (20_000, 32_000)
"""Below Linux's default ephemeral range (32768+), so outgoing connections of other
processes never take a port between the moment it is chosen and the moment it is bound."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports that are free right now, outside the ephemeral range, distinct within this process."""
    chosen: list[int] = []
    rng = random.Random()  # noqa: S311 - spreading test ports, not security
    while len(chosen) < count:
        port = rng.randrange(*PORT_RANGE)
        if port in _handed_out or port in chosen:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
    _handed_out.update(chosen)
    return chosen


@dataclass
class ManagedProcess:
    """One supervised child process: its command, environment and log, and how to stop it."""

    role: str
    """"node", "router", "broker", "ingest", ..."""
    name: str
    """Unique within its cluster; a node's name is its node id."""
    command: list[str]
    env: dict[str, str]
    """The complete environment of the process (not merged with os.environ at start)."""
    log_path: Path
    shard: int | None = None
    http: str | None = None
    raft: str | None = None
    data_dir: Path | None = None
    """Created before the process starts, when set."""
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """More keys for the cluster.json entry."""

    # ---- node-flavoured names (a node's id, Raft and HTTP addresses) -------------------------

    @property
    def node_id(self) -> str:
        """The node id (the name)."""
        return self.name

    @property
    def shard_id(self) -> int:
        """The shard this process serves."""
        if self.shard is None:
            raise AttributeError(f"{self.name} serves no shard")
        return self.shard

    @property
    def http_address(self) -> str:
        """host:port of its HTTP endpoint."""
        if self.http is None:
            raise AttributeError(f"{self.name} has no HTTP address")
        return self.http

    @property
    def raft_address(self) -> str:
        """host:port its Raft peers dial."""
        if self.raft is None:
            raise AttributeError(f"{self.name} has no Raft address")
        return self.raft

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the process, appending to its log; nothing if it already runs."""
        if self.running:
            return
        if self.data_dir is not None:
            self.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        self.log_path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        with os.fdopen(descriptor, "ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, modules and broker
                self.command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )

    @property
    def running(self) -> bool:
        """True while the process runs (a SIGSTOPped process counts as running)."""
        return self.process is not None and self.process.poll() is None

    @property
    def alive(self) -> bool:
        """The same as `running`."""
        return self.running

    @property
    def pid(self) -> int | None:
        """The pid of the latest start, or None if never started."""
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code of the latest start (negative: killed by that signal); None while it runs."""
        return self.process.poll() if self.process is not None else None

    def signal(self, signum: int) -> bool:
        """Send a signal (SIGKILL, SIGSTOP, SIGCONT, ...) if it runs; False if it does not."""
        popen = self.process
        if popen is None or popen.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(signum)
        return True

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to exit; its exit code, or None if it never started."""
        return self.process.wait(timeout=timeout) if self.process is not None else None

    def kill(self, timeout: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGCONT and SIGKILL, then reap (waiting up to `timeout`); returns the exit code."""
        popen = self.process  # the one to reap, even if a supervisor restarts it meanwhile
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGCONT)
                popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=timeout)
        return popen.poll()

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM (after SIGCONT), then SIGKILL if it does not exit within `timeout`."""
        stop_all([self], timeout)
        return self.returncode

    def describe(self) -> dict[str, Any]:
        """The cluster.json entry."""
        return {
            "role": self.role,
            "name": self.name,
            "shard": self.shard,
            "node_id": self.name if self.role == "node" else None,
            "pid": self.pid,
            "http": self.http,
            "raft": self.raft,
            "log": str(self.log_path),
            "restarts": self.restarts,
            **self.extra,
        }


def stop_all(processes: Iterable[ManagedProcess], timeout: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every process (in this order, SIGCONT first), then SIGKILL those still running
    `timeout` seconds later; every one is reaped."""
    ordered = list(processes)
    for process in ordered:
        process.signal(signal.SIGCONT)
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in ordered:
        if process.process is None:
            continue
        try:
            process.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def node_process(
    node_id: str,
    shard_id: int,
    raft_address: str,
    http_address: str,
    data_dir: Path,
    peers: list[tuple[str, str, str]],
    secret: str | None,
    extra_env: dict[str, str] | None = None,
) -> ManagedProcess:
    """A `python -m vecstore.node` configured by VECSTORE_* variables; it logs next to its data dir.

    `peers` are (node id, Raft address, HTTP address) of the other members. Without a secret
    the node runs with --insecure-no-cluster-secret.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    env.update(
        {
            "VECSTORE_NODE_ID": node_id,
            "VECSTORE_SHARD_ID": str(shard_id),
            "VECSTORE_DATA_DIR": str(data_dir),
            "VECSTORE_RAFT_ADDRESS": raft_address,
            "VECSTORE_HTTP_ADDRESS": http_address,
            "VECSTORE_PEERS": ",".join("=".join(peer) for peer in peers),
            **(extra_env or {}),
        }
    )
    command = [sys.executable, "-m", "vecstore.node"]
    if secret:
        env["VECSTORE_CLUSTER_SECRET"] = secret
    else:
        command.append("--insecure-no-cluster-secret")
    return ManagedProcess(
        role="node",
        name=node_id,
        command=command,
        env=env,
        log_path=data_dir.with_name(data_dir.name + ".log"),
        shard=shard_id,
        http=http_address,
        raft=raft_address,
        data_dir=data_dir,
    )


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
"""Data folders and logs are the owner's alone: logs name collections, and data is data."""


class LocalShardGroup:
    """The R nodes of one shard, as local processes."""

    def __init__(
        self,
        base_dir: Path,
        replicas: int = 3,
        *,
        shard_id: int = 0,
        secret: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.shard_id = shard_id
        self.secret = secret
        self.extra_env = dict(extra_env or {})
        self.nodes: list[ManagedProcess] = []
        ports = free_ports(2 * replicas)
        members = [
            (f"s{shard_id}-n{i}", f"127.0.0.1:{ports[2 * i]}", f"127.0.0.1:{ports[2 * i + 1]}")
            for i in range(replicas)
        ]
        for node_id, raft, http in members:
            self.nodes.append(self._make(node_id, raft, http, [m for m in members if m[0] != node_id]))

    def _make(self, node_id: str, raft: str, http: str, peers: list[tuple[str, str, str]]) -> ManagedProcess:
        return node_process(
            node_id=node_id,
            shard_id=self.shard_id,
            raft_address=raft,
            http_address=http,
            data_dir=self.base_dir / node_id,
            peers=peers,
            secret=self.secret,
            extra_env=self.extra_env,
        )

    @property
    def access(self) -> NodeAccess:
        """What a client of these nodes presents (the token of their secret)."""
        return NodeAccess.of_secret(self.secret)

    @property
    def http_addresses(self) -> list[str]:
        """HTTP addresses of every node."""
        return [node.http_address for node in self.nodes]

    def node(self, node_id: str) -> ManagedProcess:
        """A node by id."""
        return next(n for n in self.nodes if n.node_id == node_id)

    def by_http(self, address: str) -> ManagedProcess:
        """A node by HTTP address."""
        return next(n for n in self.nodes if n.http == address)

    def start(self) -> None:
        """Start every node (those already running are left alone)."""
        for node in self.nodes:
            node.start()

    def new_member(self) -> ManagedProcess:
        """A not-yet-started extra node whose peers are all current members."""
        raft_port, http_port = free_ports(2)
        node_id = f"s{self.shard_id}-n{len(self.nodes)}"
        members = [(n.node_id, n.raft_address, n.http_address) for n in self.nodes]
        node = self._make(node_id, f"127.0.0.1:{raft_port}", f"127.0.0.1:{http_port}", members)
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL)."""
        stop_all(self.nodes)
