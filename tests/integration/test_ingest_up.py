"""`vecstore up --with-kafka`: a local broker and an ingest worker, supervised and recorded."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from tests.integration.kafka.harness import (
    create_collection,
    ingest_totals,
    send,
    wait_applied,
    wait_for_leaders,
)
from vecstore.ingest.records import encode_record
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports


def manifest(cluster: LocalCluster) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cluster.manifest_path.read_text())
    return document


async def test_up_with_kafka_runs_and_supervises_a_broker_and_a_worker(tmp_path: Path) -> None:
    from tests.integration.conftest import TEST_ENV

    cluster = LocalCluster(tmp_path / "up", shards=1, replicas=1, port=free_ports(1)[0], with_kafka=True)
    for process in cluster.processes:
        process.env.update(TEST_ENV)
    cluster.start()
    try:
        kafka = manifest(cluster)["kafka"]
        roles = {p["role"]: p for p in manifest(cluster)["processes"]}
        assert roles["broker"]["bootstrap"] == kafka["bootstrap"]
        assert roles["ingest"]["bootstrap"] == kafka["bootstrap"]
        assert roles["ingest"]["topics"] == [kafka["topic"]] == ["vecstore-ingest"]
        assert roles["ingest"]["dlq_topic"] == kafka["dlq_topic"]
        await wait_for_leaders(cluster)
        await create_collection(cluster, "docs", 4)
        records = [encode_record("docs", "upsert", i, vector=[1.0, 0.0, 0.0, float(i)]) for i in range(50)]
        await send(kafka["bootstrap"], kafka["topic"], records)
        await wait_applied(cluster, kafka["topic"], len(records))

        # an in-memory broker that restarts has lost its log: the supervisor moves to new topics,
        # because the shards still fence the old ones at their old offsets
        [broker] = [p for p in cluster.processes if p.role == "broker"]
        assert broker.process is not None
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        assert set(cluster.supervise_once()) == {"broker-0", "ingest-0"}
        kafka = manifest(cluster)["kafka"]
        assert kafka["topic"] == "vecstore-ingest.g1"
        await send(kafka["bootstrap"], kafka["topic"], records[:10])
        await wait_applied(cluster, kafka["topic"], 10)
        old = await ingest_totals(cluster, "vecstore-ingest")
        assert sum(t.applied for t in old.values()) == len(records)
    finally:
        cluster.stop()
    assert all(p["pid"] is not None for p in manifest(cluster)["processes"])
    assert not any(p.running for p in cluster.processes)
