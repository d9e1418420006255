"""Starts node processes on this machine: the engine of `vecstore up` and of the tests.

Each node is a real `python -m vecstore.node` process with its own data directory, log
file and free ports on 127.0.0.1. Stopping is SIGTERM, then SIGKILL after a grace period.
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
from dataclasses import dataclass, field
from pathlib import Path

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
class NodeProcess:
    """One node process and how to (re)start it."""

    node_id: str
    shard_id: int
    raft_address: str
    http_address: str
    data_dir: Path
    peers: list[tuple[str, str, str]]
    secret: str | None
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the process writes its log."""
        return self.data_dir.with_name(self.data_dir.name + ".log")

    def environment(self) -> dict[str, str]:
        """The VECSTORE_* variables that configure this node."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
        env.update(
            {
                "VECSTORE_NODE_ID": self.node_id,
                "VECSTORE_SHARD_ID": str(self.shard_id),
                "VECSTORE_DATA_DIR": str(self.data_dir),
                "VECSTORE_RAFT_ADDRESS": self.raft_address,
                "VECSTORE_HTTP_ADDRESS": self.http_address,
                "VECSTORE_PEERS": ",".join("=".join(peer) for peer in self.peers),
                **self.extra_env,
            }
        )
        if self.secret:
            env["VECSTORE_CLUSTER_SECRET"] = self.secret
        return env

    def start(self) -> None:
        """Start the process (appending to its log)."""
        if self.alive:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "vecstore.node"]
        if not self.secret:
            command.append("--insecure-no-cluster-secret")
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, env=self.environment(), stdout=log_file, stderr=subprocess.STDOUT
            )

    @property
    def alive(self) -> bool:
        """True while the process runs (a SIGSTOPped process counts as alive)."""
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send a signal (SIGKILL, SIGSTOP, SIGCONT, ...)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is not None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_GRACE_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within the grace period."""
        if self.process is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()


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
        self.nodes: list[NodeProcess] = []
        ports = free_ports(2 * replicas)
        members = [
            (f"s{shard_id}-n{i}", f"127.0.0.1:{ports[2 * i]}", f"127.0.0.1:{ports[2 * i + 1]}")
            for i in range(replicas)
        ]
        for node_id, raft, http in members:
            self.nodes.append(self._make(node_id, raft, http, [m for m in members if m[0] != node_id]))

    def _make(self, node_id: str, raft: str, http: str, peers: list[tuple[str, str, str]]) -> NodeProcess:
        return NodeProcess(
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
    def http_addresses(self) -> list[str]:
        """HTTP addresses of every node."""
        return [node.http_address for node in self.nodes]

    def node(self, node_id: str) -> NodeProcess:
        """A node by id."""
        return next(n for n in self.nodes if n.node_id == node_id)

    def by_http(self, address: str) -> NodeProcess:
        """A node by HTTP address."""
        return next(n for n in self.nodes if n.http_address == address)

    def start(self) -> None:
        """Start every node."""
        for node in self.nodes:
            node.start()

    def new_member(self) -> NodeProcess:
        """A not-yet-started extra node whose peers are all current members."""
        raft_port, http_port = free_ports(2)
        node_id = f"s{self.shard_id}-n{len(self.nodes)}"
        members = [(n.node_id, n.raft_address, n.http_address) for n in self.nodes]
        node = self._make(node_id, f"127.0.0.1:{raft_port}", f"127.0.0.1:{http_port}", members)
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL)."""
        for node in self.nodes:
            node.signal(signal.SIGCONT)
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.kill()
