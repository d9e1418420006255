"""`vecstore up`: a whole cluster as local processes, supervised like Kubernetes would.

Writes `<data-dir>/spec.json` (the cluster spec), `<data-dir>/cluster.secret` (0600),
and keeps `<data-dir>/cluster.json` current: every process it runs with role, shard,
node id, pid and addresses. A crashed process is restarted. Running it again on the
same data dir restarts the same cluster with its data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecstore.cluster.launcher import STOP_GRACE_SECONDS, free_ports
from vecstore.cluster.spec import ClusterSpec, NodeSpec, RouterSpec, ShardSpec, read_spec_file, write_spec

log = logging.getLogger(__name__)

RESTART_BACKOFF_SECONDS = 1.0


@dataclass
class ManagedProcess:
    """One supervised process."""

    role: str
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    shard: int | None = None
    http: str | None = None
    raft: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def start(self) -> None:
        """Start (or restart) the process, appending to its log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self.command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def describe(self) -> dict[str, Any]:
        """The cluster.json entry."""
        return {
            "role": self.role,
            "name": self.name,
            "shard": self.shard,
            "node_id": self.name if self.role == "node" else None,
            "pid": self.process.pid if self.process is not None else None,
            "http": self.http,
            "raft": self.raft,
            "log": str(self.log_path),
            "restarts": self.restarts,
            **self.extra,
        }


class LocalCluster:
    """Nodes of every shard plus one router, in the foreground."""

    def __init__(self, data_dir: Path, shards: int = 2, replicas: int = 3, port: int = 6333) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spec_path = self.data_dir / "spec.json"
        self.secret_path = self.data_dir / "cluster.secret"
        self.manifest_path = self.data_dir / "cluster.json"
        if self.spec_path.exists():
            self.spec = read_spec_file(self.spec_path)
            log.info("reusing the cluster in %s", self.data_dir)
        else:
            self.spec = self._new_spec(shards, replicas, port)
            write_spec(self.spec, self.spec_path)
        if not self.secret_path.exists():
            self.secret_path.write_text(secrets.token_urlsafe(32))
            self.secret_path.chmod(0o600)
        self.processes: list[ManagedProcess] = self._plan()
        self.stopping = False

    @staticmethod
    def _new_spec(shards: int, replicas: int, port: int) -> ClusterSpec:
        ports = iter(free_ports(2 * shards * replicas))
        return ClusterSpec(
            shards=tuple(
                ShardSpec(
                    shard,
                    tuple(
                        NodeSpec(
                            f"s{shard}-n{replica}",
                            f"127.0.0.1:{next(ports)}",
                            f"127.0.0.1:{next(ports)}",
                        )
                        for replica in range(replicas)
                    ),
                )
                for shard in range(shards)
            ),
            router=RouterSpec(listen=f"127.0.0.1:{port}"),
        )

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_CLUSTER")}
        env["VECSTORE_CLUSTER_SPEC_FILE"] = str(self.spec_path)
        return env

    def _plan(self) -> list[ManagedProcess]:
        processes = []
        for shard in self.spec.shards:
            for node in shard.nodes:
                env = self._base_env()
                env["VECSTORE_CLUSTER_SECRET_FILE"] = str(self.secret_path)
                env["VECSTORE_DATA_DIR"] = str(self.data_dir / node.id)
                env["VECSTORE_NODE_ID"] = node.id
                for key in ("VECSTORE_RAFT_ADDRESS", "VECSTORE_HTTP_ADDRESS", "VECSTORE_PEERS"):
                    env.pop(key, None)  # the spec decides
                processes.append(
                    ManagedProcess(
                        role="node",
                        name=node.id,
                        command=[sys.executable, "-m", "vecstore.node"],
                        env=env,
                        log_path=self.data_dir / "logs" / f"{node.id}.log",
                        shard=shard.id,
                        http=node.http,
                        raft=node.raft,
                    )
                )
        processes.append(
            ManagedProcess(
                role="router",
                name="router-0",
                command=[sys.executable, "-m", "vecstore.router"],
                env=self._base_env(),
                log_path=self.data_dir / "logs" / "router-0.log",
                http=self.spec.router.listen,
            )
        )
        return processes

    @property
    def router_url(self) -> str:
        """The public endpoint."""
        return f"http://{self.spec.router.listen}"

    def node_addresses(self) -> list[str]:
        """HTTP addresses of every node."""
        return [n.http for s in self.spec.shards for n in s.nodes]

    def start(self) -> None:
        """Start every process and write cluster.json."""
        for process in self.processes:
            process.start()
        self.write_manifest()

    def write_manifest(self) -> None:
        """Write cluster.json atomically."""
        manifest = {
            "router": self.router_url,
            "spec_file": str(self.spec_path),
            "secret_file": str(self.secret_path),
            "supervisor_pid": os.getpid(),
            "processes": [p.describe() for p in self.processes],
        }
        partial = self.manifest_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(manifest, indent=2))
        partial.replace(self.manifest_path)

    def supervise_once(self) -> list[str]:
        """Restart any process that exited; returns the names restarted."""
        restarted = []
        for process in self.processes:
            if self.stopping or process.running or process.process is None:
                continue
            code = process.process.returncode
            log.warning("%s exited with %s; restarting", process.name, code)
            process.restarts += 1
            process.start()
            restarted.append(process.name)
        if restarted:
            self.write_manifest()
        return restarted

    def run_forever(self) -> None:
        """Supervise until SIGINT/SIGTERM, then stop everything."""
        received: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            received.append(signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not received:
                self.supervise_once()
                time.sleep(RESTART_BACKOFF_SECONDS)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def stop(self) -> None:
        """SIGTERM every process (router first), SIGKILL stragglers."""
        self.stopping = True
        ordered = sorted(self.processes, key=lambda p: p.role != "router")
        for process in ordered:
            if process.running and process.process is not None:
                process.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in ordered:
            if process.process is None:
                continue
            try:
                process.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.process.kill()
                process.process.wait()
        self.write_manifest()
