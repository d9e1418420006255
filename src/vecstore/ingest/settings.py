"""Typed settings of one ingest worker, from flags or VECSTORE_INGEST_* variables.

Every setting has an environment variable (for Helm) named after it: `batch_max_records`
is VECSTORE_INGEST_BATCH_MAX_RECORDS. Flags win over the environment. Validation says
which setting is wrong and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from vecstore.cluster.commands import DEFAULT_MAX_PAYLOAD_BYTES
from vecstore.cluster.errors import InvalidRequest
from vecstore.ingest.formats import FORMATS

ENV_PREFIX = "VECSTORE_INGEST_"
NODE_COMMAND_LIMIT_BYTES = 8 * 1024 * 1024
"""A node's default `max_command_bytes`; one shard's command must stay below it."""


class SettingsError(InvalidRequest):
    """An ingest setting is missing or invalid."""

    code = "settings_error"


@dataclass(frozen=True)
class WorkerSettings:
    """Everything an ingest worker needs besides the cluster spec."""

    bootstrap: str
    """Kafka bootstrap servers, host:port[,host:port...]."""
    topics: tuple[str, ...]
    """Topics to consume."""
    group: str
    """Consumer group id; workers sharing it share the partitions."""
    dlq_topic: str | None = None
    """Dead-letter topic for invalid records (None: log and count them only)."""
    batch_max_records: int = 2_000
    """A batch closes at this many records ..."""
    batch_max_ms: int = 50
    """... or this long after its first record arrived ..."""
    batch_max_bytes: int = 4 * 1024 * 1024
    """... or at this many key and value bytes (keeps every shard command under the node limit)."""
    max_in_flight: int = 20_000
    """Records dispatched but not yet acknowledged by every shard; polling waits above it."""
    session_timeout_ms: int = 10_000
    """Kafka group session timeout: a silent worker loses its partitions after this long."""
    heartbeat_interval_ms: int = 3_000
    """Kafka group heartbeat interval (well below the session timeout)."""
    metrics_host: str = "127.0.0.1"
    """Address of the /metrics, /healthz, /readyz and /v1/status endpoint."""
    metrics_port: int | None = None
    """Its port (None: no HTTP endpoint)."""
    shutdown_grace_seconds: float = 10.0
    """On SIGTERM, how long to wait for in-flight batches before abandoning them."""
    shard_deadline_seconds: float = 15.0
    """One attempt to apply a batch on a shard (with leader retries) before backing off."""
    client_id: str = "vecstore-ingest"
    """Kafka client id (shows in broker logs)."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    """Largest payload accepted (must match the nodes' setting)."""
    value_format: str = "auto"
    """Record values: auto (JSON or msgpack, per record), avro or protobuf (docs/ingest.md)."""
    avro_schema: str | None = None
    """With avro: the producers' writer schema file (default: the published record.avsc)."""

    def validate(self) -> WorkerSettings:
        """Return self, or raise SettingsError naming the bad setting."""
        if not self.bootstrap:
            raise SettingsError("bootstrap is required: --bootstrap host:port")
        if not self.topics or not all(self.topics):
            raise SettingsError("topics is required: --topics t1,t2")
        if not self.group:
            raise SettingsError("group is required: --group NAME")
        if self.dlq_topic is not None and self.dlq_topic in self.topics:
            raise SettingsError(f"dlq_topic {self.dlq_topic!r} must not be one of the consumed topics")
        for name in ("batch_max_records", "batch_max_ms", "batch_max_bytes", "max_in_flight"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_in_flight < self.batch_max_records:
            raise SettingsError(
                f"max_in_flight ({self.max_in_flight}) must be at least batch_max_records "
                f"({self.batch_max_records})"
            )
        if self.batch_max_bytes > NODE_COMMAND_LIMIT_BYTES // 2:
            raise SettingsError(
                f"batch_max_bytes must be at most {NODE_COMMAND_LIMIT_BYTES // 2} so every shard "
                "command stays below the node's command limit"
            )
        if not 0 < self.heartbeat_interval_ms < self.session_timeout_ms:
            raise SettingsError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be positive and below "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
        if self.value_format not in FORMATS:
            raise SettingsError(
                f"value_format must be one of {', '.join(FORMATS)}, got {self.value_format!r}"
            )
        if self.avro_schema is not None and self.value_format != "avro":
            raise SettingsError("avro_schema is for value_format avro")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise SettingsError(f"metrics_port must be a port number, got {self.metrics_port}")
        return self

    @classmethod
    def from_sources(
        cls, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        """Flags (None = not given) over VECSTORE_INGEST_* variables over defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = flags.get(spec.name)
            if raw is None:
                raw = env.get(ENV_PREFIX + spec.name.upper())
            if raw is None:
                continue
            values[spec.name] = _convert(spec.name, raw)
        for required in ("bootstrap", "topics", "group"):
            if required not in values:
                flag = "--" + required.replace("_", "-")
                raise SettingsError(
                    f"{required} is required: pass {flag} or set {ENV_PREFIX}{required.upper()}"
                )
        return cls(**values).validate()


_INTEGERS = {
    "batch_max_records",
    "batch_max_ms",
    "batch_max_bytes",
    "max_in_flight",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "metrics_port",
    "max_payload_bytes",
}
_FLOATS = {"shutdown_grace_seconds", "shard_deadline_seconds"}


def _convert(name: str, raw: object) -> Any:
    if name == "topics":
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            raise SettingsError(f"topics must be a comma-separated list, got {raw!r}")
        return tuple(str(t).strip() for t in items if str(t).strip())
    if name in _INTEGERS or name in _FLOATS:
        kind = int if name in _INTEGERS else float
        if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
            try:
                return kind(raw)
            except ValueError:
                pass
        raise SettingsError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}")
    return str(raw) or None
