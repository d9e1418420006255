"""Exactly-once ingestion: the topic read back is the truth; the shards' counters must match it.

Per partition, the records the shards applied (summed over shards, each shard's replicas
agreeing) must equal the records in the log: more means a record was applied twice,
fewer that one was lost. Every key's final state must be its last record in the log.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from vecstore.chaos.cluster import ChaosCluster
from vecstore.chaos.model.keyspace import Violation, vector_for
from vecstore.chaos.validate.replicas import StoredPoint
from vecstore.ingest.records import parse_value

READ_IDLE_SECONDS = 3.0


@dataclass(frozen=True)
class LoggedRecord:
    """One record of the topic: where it is and what it does to its key."""

    partition: int
    offset: int
    key: int
    version: int | None
    """The payload's version (None for a delete)."""


@dataclass
class IngestFigures:
    """What was produced and what the shards counted, per partition."""

    records: dict[int, int] = field(default_factory=dict)
    applied: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)
    rejected: dict[int, int] = field(default_factory=dict)
    caught_up_seconds: float = 0.0


async def read_topic(bootstrap: str, topic: str, within: float = 60.0) -> list[LoggedRecord]:
    """Every record of `topic`, read from the beginning until each partition is exhausted."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[LoggedRecord] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + within
        while not partitions and time.monotonic() < deadline:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            for batch in batches.values():
                records += [_logged(message) for message in batch]
            if batches:
                idle_since = time.monotonic()
            done = True
            for tp in assigned:
                high = consumer.highwater(tp)
                done = done and high is not None and await consumer.position(tp) >= high
            if done or time.monotonic() - idle_since > READ_IDLE_SECONDS * 4:
                break
    finally:
        await consumer.stop()
    return records


def _logged(message: Any) -> LoggedRecord:
    fields = parse_value(message.key, message.value)
    payload = fields.body.get("payload") or {}
    version = payload.get("version") if fields.op == "upsert" else None
    return LoggedRecord(message.partition, message.offset, int(fields.point_id), version)


async def shard_counters(
    cluster: ChaosCluster, topic: str
) -> tuple[dict[str, dict[int, tuple[int, int, int]]], list[Violation]]:
    """Per node: partition -> (applied, skipped, rejected). Replicas of a shard must agree."""
    per_node: dict[str, dict[int, tuple[int, int, int]]] = {}
    violations = []
    for shard in range(cluster.shape.shards):
        statuses = await cluster.statuses(shard)
        seen: dict[str, dict[int, tuple[int, int, int]]] = {}
        for node, status in statuses.items():
            if status is None:
                continue
            seen[node] = {
                int(row["partition"]): (
                    int(row["records_applied"]),
                    int(row["records_skipped"]),
                    int(row["records_rejected"]),
                )
                for row in status.get("ingest", [])
                if row.get("topic") == topic
            }
        applied_views = {node: {p: c[0] + c[2] for p, c in rows.items()} for node, rows in seen.items()}
        if len({repr(sorted(v.items())) for v in applied_views.values()}) > 1:
            violations.append(
                Violation("divergent", None, f"shard {shard} replicas count ingest differently: {seen}")
            )
        per_node.update(seen)
    return per_node, violations


def totals(cluster: ChaosCluster, per_node: dict[str, dict[int, tuple[int, int, int]]]) -> IngestFigures:
    """Applied/skipped/rejected per partition, summed over shards (one replica each)."""
    figures = IngestFigures()
    for shard in range(cluster.shape.shards):
        rows = next((per_node[n.id] for n in cluster.shard_nodes(shard) if n.id in per_node), {})
        for partition, (applied, skipped, rejected) in rows.items():
            figures.applied[partition] = figures.applied.get(partition, 0) + applied
            figures.skipped[partition] = figures.skipped.get(partition, 0) + skipped
            figures.rejected[partition] = figures.rejected.get(partition, 0) + rejected
    return figures


async def wait_ingested(
    cluster: ChaosCluster, topic: str, log_records: list[LoggedRecord], within: float
) -> tuple[IngestFigures, list[Violation]]:
    """Wait until the shards applied every logged record (or time runs out), then compare."""
    expected: dict[int, int] = defaultdict(int)
    for record in log_records:
        expected[record.partition] += 1
    started = time.monotonic()
    while True:
        per_node, violations = await shard_counters(cluster, topic)
        figures = totals(cluster, per_node)
        for row in cluster.retired_ingest:  # a spare shard that was removed (reshard scenarios)
            if row.get("topic") == topic:
                partition = int(row["partition"])
                figures.applied[partition] = figures.applied.get(partition, 0) + int(row["records_applied"])
                figures.skipped[partition] = figures.skipped.get(partition, 0) + int(row["records_skipped"])
                figures.rejected[partition] = figures.rejected.get(partition, 0) + int(
                    row["records_rejected"]
                )
        counted = {p: figures.applied.get(p, 0) + figures.rejected.get(p, 0) for p in expected}
        if (counted == dict(expected) and not violations) or time.monotonic() - started > within:
            break
        await asyncio.sleep(0.5)
    figures.records = dict(expected)
    figures.caught_up_seconds = round(time.monotonic() - started, 2)
    for partition in sorted(set(expected) | set(figures.applied)):
        produced = expected.get(partition, 0)
        applied = figures.applied.get(partition, 0)
        rejected = figures.rejected.get(partition, 0)
        if applied + rejected > produced:
            violations.append(
                Violation(
                    "ingest_duplicate",
                    None,
                    f"partition {partition}: {applied} applied, {produced} in the log",
                )
            )
        elif applied + rejected < produced:
            violations.append(
                Violation(
                    "ingest_missing", None, f"partition {partition}: {applied} applied, {produced} in the log"
                )
            )
        if rejected:
            violations.append(
                Violation("corrupt", None, f"partition {partition}: {rejected} valid records rejected")
            )
    return figures, violations


def check_ingested_state(log_records: list[LoggedRecord], found: dict[int, StoredPoint]) -> list[Violation]:
    """Each Kafka key ends as its last record in the log says: that version, or absent."""
    last: dict[int, LoggedRecord] = {}
    for record in sorted(log_records, key=lambda r: (r.partition, r.offset)):
        last[record.key] = record
    violations = []
    for key, record in sorted(last.items()):
        point = found.get(key)
        if record.version is None:
            if point is not None:
                violations.append(
                    Violation("lost", key, f"deleted at offset {record.offset}, still holds v{point.version}")
                )
        elif point is None:
            violations.append(
                Violation("lost", key, f"v{record.version} (offset {record.offset}) is missing")
            )
        elif point.version != record.version:
            violations.append(
                Violation("lost", key, f"holds v{point.version}, the log ends with v{record.version}")
            )
        elif point.vector is not None and point.vector != tuple(vector_for(key, record.version)):
            violations.append(Violation("corrupt", key, f"v{record.version} has vector {point.vector}"))
    return violations


def kafka_bootstrap(cluster: ChaosCluster) -> tuple[str, str] | None:
    """(bootstrap, topic) of the cluster's broker, if it runs one."""
    kafka = cluster.local.kafka
    return None if kafka is None else (kafka.bootstrap, kafka.topic)
