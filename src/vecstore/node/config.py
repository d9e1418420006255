"""Configuration of one node process: identity, peers, addresses, secret, Raft tuning.

Read from a TOML file and/or VECSTORE_* environment variables (environment wins), and
validated once at start-up with errors that say which setting is wrong. The cluster
secret is never logged or echoed back; `describe()` redacts it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.spec import ClusterSpec, load_spec
from vecstore.shard.settings import ShardSettings

DEFAULT_MAX_COMMAND_BYTES = 8 * 1024 * 1024
T = TypeVar("T", int, float, str)
INSECURE_FLAG = "insecure_no_cluster_secret"


class ConfigError(InvalidRequest):
    """A node setting is missing or invalid."""

    code = "config_error"


@dataclass(frozen=True)
class Peer:
    """Another member of this node's shard: its id and addresses."""

    id: str
    raft_address: str
    http_address: str


@dataclass(frozen=True)
class RaftTuning:
    """pysyncobj settings; see docs/raft.md for why each differs from pysyncobj's default."""

    min_timeout: float = 1.0
    max_timeout: float = 2.0
    append_entries_period: float = 0.1
    connection_timeout: float = 3.5
    connection_retry: float = 0.5
    socket_buffer_bytes: int = 8 * 1024 * 1024
    log_compaction_min_entries: int = 2_000
    log_compaction_min_seconds: float = 300.0
    journal_fsync: str = "never"
    """'never' (pysyncobj's behaviour: a process kill loses nothing, a machine crash can),
    or 'always' (msync the journal after every append: survives power loss, slower)."""
    dns_cache_time: float = 600.0
    """Seconds a peer's resolved address is reused (pysyncobj's default). Lower it where a
    restarted peer comes back under the same name with a new IP (Kubernetes pods)."""
    dns_fail_cache_time: float = 30.0
    """Seconds before a name that did not resolve is looked up again."""


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node process needs."""

    node_id: str
    shard_id: int
    data_dir: Path
    raft_address: str
    http_address: str
    peers: tuple[Peer, ...] = ()
    cluster_secret: str | None = field(default=None, repr=False)
    insecure_no_cluster_secret: bool = False
    max_command_bytes: int = DEFAULT_MAX_COMMAND_BYTES
    request_timeout: float = 10.0
    raft: RaftTuning = field(default_factory=RaftTuning)
    shard: ShardSettings | None = None
    http_bind: str | None = None
    """Address to listen on when it differs from the advertised `http_address` (0.0.0.0:8000)."""
    raft_bind: str | None = None
    """Raft listen address when it differs from the advertised `raft_address` (unset: the
    advertised host only; `0.0.0.0:PORT` where that is a name no local interface has, as
    in the Helm chart)."""
    raft_source_host: str | None = None
    """Source IP for outgoing Raft connections (multi-homed hosts; chaos partitions)."""
    tls_cert_file: str | None = None
    """With `tls_key_file`: serve the HTTP API over HTTPS (VECSTORE_TLS_CERT_FILE)."""
    tls_key_file: str | None = None
    """The certificate's private key (VECSTORE_TLS_KEY_FILE)."""
    query_stages: bool = True
    """Time every search's stages into `vecstore_node_query_stage_seconds`; off only to
    measure what that costs (VECSTORE_QUERY_STAGES=0). A search asking for its profile is
    timed either way."""

    @property
    def http_host(self) -> str:
        """Host the HTTP server listens on."""
        return split_address(self.http_bind or self.http_address, "http_address")[0]

    @property
    def http_port(self) -> int:
        """Port the HTTP server listens on."""
        return split_address(self.http_bind or self.http_address, "http_address")[1]

    @property
    def raft_listen_address(self) -> str:
        """Address the Raft port listens on: `raft_bind`, else the advertised `raft_address`
        (pysyncobj itself would listen on every interface)."""
        return self.raft_bind or self.raft_address

    def shard_settings(self) -> ShardSettings:
        """Shard settings, with the data directory under this node's."""
        base = self.shard or ShardSettings.from_env(self.data_dir / "shard")
        return replace(base, data_dir=self.data_dir / "shard")

    def http_of_raft(self, raft_address: str) -> str | None:
        """HTTP address of the member with this Raft address (self or a peer)."""
        if raft_address == self.raft_address:
            return self.http_address
        for peer in self.peers:
            if peer.raft_address == raft_address:
                return peer.http_address
        return None

    def describe(self) -> dict[str, Any]:
        """A loggable summary (the secret is redacted)."""
        return {
            "node_id": self.node_id,
            "shard_id": self.shard_id,
            "data_dir": str(self.data_dir),
            "raft_address": self.raft_address,
            "http_address": self.http_address,
            "peers": [p.raft_address for p in self.peers],
            "cluster_secret": "<set>" if self.cluster_secret else "<none>",
        }

    def validate(self) -> None:
        """Raise ConfigError if the node cannot run safely with these settings."""
        if not self.node_id:
            raise ConfigError("node_id is required")
        split_address(self.raft_address, "raft_address")
        split_address(self.http_address, "http_address")
        for peer in self.peers:
            split_address(peer.raft_address, f"peer {peer.id} raft_address")
            split_address(peer.http_address, f"peer {peer.id} http_address")
        if peer_clash := {p.raft_address for p in self.peers} & {self.raft_address}:
            raise ConfigError(f"a peer uses this node's own raft address {sorted(peer_clash)}")
        if not self.cluster_secret and not self.insecure_no_cluster_secret:
            raise ConfigError(
                "no cluster secret: set VECSTORE_CLUSTER_SECRET (or cluster_secret_file). Without "
                "it anyone who reaches the Raft port can run code on this node. For local "
                "development only, pass --insecure-no-cluster-secret."
            )
        if self.cluster_secret is not None and len(self.cluster_secret) < 16:
            raise ConfigError("the cluster secret must be at least 16 characters long")
        if not 1024 <= self.max_command_bytes <= 256 * 1024 * 1024:
            raise ConfigError("max_command_bytes must be between 1 KiB and 256 MiB")
        if self.raft.journal_fsync not in ("never", "always"):
            raise ConfigError("raft.journal_fsync must be 'never' or 'always'")
        if min(self.raft.dns_cache_time, self.raft.dns_fail_cache_time) < 0:
            raise ConfigError("raft.dns_cache_time and raft.dns_fail_cache_time must be >= 0")
        if not self.raft.append_entries_period * 3 < self.raft.min_timeout < self.raft.max_timeout:
            raise ConfigError(
                "raft timeouts must satisfy 3 x append_entries_period < min_timeout < max_timeout"
            )


def split_address(address: str, what: str) -> tuple[str, int]:
    """'host:port' -> (host, port), or ConfigError naming the setting."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {address!r} must look like host:port")
    return host, int(port)


def parse_peers(raw: str) -> tuple[Peer, ...]:
    """Peers from 'id=raft_host:port=http_host:port,...' (the VECSTORE_PEERS form)."""
    peers = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        parts = item.split("=")
        if len(parts) != 3:
            raise ConfigError(f"peer {item!r} must look like id=raft_host:port=http_host:port")
        peers.append(Peer(*parts))
    return tuple(peers)


def load_config(
    path: Path | None, environ: dict[str, str] | None = None, spec_path: Path | None = None
) -> NodeConfig:
    """Build the node config from an optional TOML file overlaid with the environment."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"cannot read node config {path}: {err}") from None
    node = dict(data.get("node", data))
    keys = ("node_id", "data_dir", "raft_address", "http_address", "cluster_secret_file")
    for key in (*keys, "http_bind", "raft_bind", "raft_source_host", "tls_cert_file", "tls_key_file"):
        if f"VECSTORE_{key.upper()}" in env:
            node[key] = env[f"VECSTORE_{key.upper()}"]
    if "VECSTORE_SHARD_ID" in env:
        node["shard_id"] = env["VECSTORE_SHARD_ID"]
    peers = tuple(Peer(**p) for p in node.get("peers", []))
    if "VECSTORE_PEERS" in env:
        peers = parse_peers(env["VECSTORE_PEERS"])
    if spec_path is not None or "VECSTORE_CLUSTER_SPEC_FILE" in env or "VECSTORE_CLUSTER_SPEC" in env:
        peers = _fill_from_spec(node, load_spec(spec_path, env))
    secret = env.get("VECSTORE_CLUSTER_SECRET") or node.get("cluster_secret")
    if not secret and node.get("cluster_secret_file"):
        try:
            secret = Path(node["cluster_secret_file"]).read_text().strip()
        except OSError as err:
            raise ConfigError(f"cannot read cluster_secret_file: {err}") from None
    raft = _raft_tuning(data.get("raft", {}), env)
    for key in ("max_command_bytes", "request_timeout"):
        if f"VECSTORE_{key.upper()}" in env:
            node[key] = env[f"VECSTORE_{key.upper()}"]
    missing = [k for k in ("node_id", "data_dir", "raft_address", "http_address") if not node.get(k)]
    if missing:
        raise ConfigError(f"missing node settings: {', '.join(missing)} (file or VECSTORE_* env)")
    try:
        shard_id = int(node.get("shard_id", 0))
    except ValueError:
        raise ConfigError(f"shard_id {node.get('shard_id')!r} is not an integer") from None
    return NodeConfig(
        node_id=str(node["node_id"]),
        shard_id=shard_id,
        data_dir=Path(node["data_dir"]),
        raft_address=str(node["raft_address"]),
        http_address=str(node["http_address"]),
        peers=peers,
        cluster_secret=secret or None,
        insecure_no_cluster_secret=env.get("VECSTORE_" + INSECURE_FLAG.upper()) == "1",
        max_command_bytes=_number(node, "max_command_bytes", DEFAULT_MAX_COMMAND_BYTES, int),
        request_timeout=_number(node, "request_timeout", 10.0, float),
        raft=raft,
        http_bind=node.get("http_bind"),
        raft_bind=node.get("raft_bind"),
        raft_source_host=node.get("raft_source_host"),
        tls_cert_file=node.get("tls_cert_file"),
        tls_key_file=node.get("tls_key_file"),
        query_stages=env.get("VECSTORE_QUERY_STAGES", "1").lower() not in ("0", "off", "false", "no"),
    )


def _fill_from_spec(node: dict[str, Any], spec: ClusterSpec) -> tuple[Peer, ...]:
    """Take this node's shard, addresses and peers from the cluster spec."""
    if not node.get("node_id"):
        raise ConfigError("with a cluster spec, the node id must be given (--node-id or VECSTORE_NODE_ID)")
    shard, me = spec.node(str(node["node_id"]))
    node["shard_id"] = shard.id
    node.setdefault("raft_address", me.raft)
    node.setdefault("http_address", me.http)
    return tuple(Peer(n.id, n.raft, n.http) for n in shard.nodes if n.id != me.id)


def _number(source: dict[str, Any], key: str, default: T, kind: type[T]) -> T:
    try:
        return kind(source.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError(f"{key} {source.get(key)!r} is not a valid {kind.__name__}") from None


def _raft_tuning(section: dict[str, Any], env: dict[str, str]) -> RaftTuning:
    """[raft] from the file, each overridable by VECSTORE_RAFT_<NAME>."""
    values = dict(section)
    defaults = RaftTuning()
    unknown = set(values) - {f.name for f in fields(RaftTuning)}
    if unknown:
        raise ConfigError(f"unknown [raft] settings: {sorted(unknown)}")
    for spec in fields(RaftTuning):
        raw = env.get(f"VECSTORE_RAFT_{spec.name.upper()}")
        if raw is not None:
            values[spec.name] = raw
        if spec.name in values:
            values[spec.name] = _number(
                values, spec.name, getattr(defaults, spec.name), type(getattr(defaults, spec.name))
            )
    return RaftTuning(**values)
