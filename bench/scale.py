"""`make bench-scale`: a million 128-d vectors through Kafka into a 2 x 3 cluster, then queries.

One run on this machine, one cluster (`LocalCluster`, as `vecstore up` starts it), one tansu
broker, one ingest worker:

1. produce every record first (msgpack upserts, 4 partitions), then start the worker and
   sample every few seconds: records applied (ingest rate over time), the largest indexing
   lag of any node, the nodes' RSS; until every record is applied and indexed;
2. disk per node (its data folder) and RSS per node at rest;
3. queries through the router (`vecstore.client.AsyncClient`): QPS and recall@10 against
   exact neighbours, 1 and 16 concurrent tasks, the collection's ef and ef 128;
4. restart of a follower (SIGKILL, start): seconds until it is ready again;
5. a new replica: a follower killed and its data folder deleted, then replaced by a new
   member as `vecstore node replace` does (the leader sends it a snapshot): seconds until
   the replacement is done (the new member caught up and the old one removed), and until
   it has indexed it all.

    python -m bench.scale [--rows 1000000] [--quick] [--json FILE]

Not part of `make bench` or `make test` (about half an hour on 2 cores); its `--quick`
smoke (10,000 rows) runs in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.dataset import ClusteredData, make_clustered, recall_at_k
from bench.ingest import BENCH_ENV, PARTITIONS, AppliedWatcher, broker, create_collection, worker
from bench.output import publish
from vecstore.client import AsyncClient
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.topology import Topology
from vecstore.ingest.producer import OutgoingRecord, produce
from vecstore.ingest.records import encode_record
from vecstore.ingest.topics import create_topic
from vecstore.launcher.local_cluster import LocalCluster, new_member_spec, swap_member_in_spec
from vecstore.launcher.processes import ManagedProcess, free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready_async
from vecstore.reshard.coordinator import Coordinator

DIM = 128
K = 10
COLLECTION = "scale"
TOPIC = "scale"
WAIT_SECONDS = 7_200
REPLACE_SECONDS = 1_800.0
"""How long `node replace` may wait for the new member to catch up (its CLI default)."""
LOGS_KEPT = Path("bench/results/scale-logs")
"""Where the nodes' logs are copied when a step fails (the run's folder is removed)."""


def rss_mib(pid: int | None) -> float:
    """Resident memory of a live process, MiB (0 if gone)."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def disk_mib(folder: Path) -> float:
    """Bytes of the files under `folder`, MiB."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def nodes(cluster: LocalCluster) -> list[ManagedProcess]:
    """The node processes, shard by shard."""
    return [p for p in cluster.processes if p.role == "node"]


def records(data: ClusteredData) -> Iterator[OutgoingRecord]:
    """One msgpack upsert per row (vector as float32 bytes, a small payload)."""
    for row, vector in enumerate(data.base):
        yield OutgoingRecord(*encode_record(COLLECTION, "upsert", row, vector=vector, payload={"n": row}))


async def node_statuses(client: AsyncClient) -> list[dict[str, Any]]:
    """Every node's status row (through the router)."""
    return await client.status()


async def ingest(
    cluster: LocalCluster,
    client: AsyncClient,
    session: aiohttp.ClientSession,
    bootstrap: str,
    directory: Path,
    rows: int,
    sample_seconds: float,
) -> dict[str, Any]:
    """Start the worker on the produced topic; sample until every record is applied and indexed."""
    watcher = AppliedWatcher(cluster, session, TOPIC)
    timeline: list[dict[str, Any]] = []
    with worker(cluster, bootstrap, TOPIC, directory):
        started = time.monotonic()
        applied_at: float | None = None
        first_at: float | None = None
        previous = (started, 0)
        while True:
            await asyncio.sleep(sample_seconds)
            await watcher.offsets()
            now = time.monotonic()
            statuses = await node_statuses(client)
            lag = max(int(s.get("indexing_lag", 0) or 0) for s in statuses)
            rate = (watcher.applied - previous[1]) / max(now - previous[0], 1e-9)
            previous = (now, watcher.applied)
            timeline.append(
                {
                    "seconds": round(now - started, 1),
                    "applied": watcher.applied,
                    "records_per_second": round(rate),
                    "max_indexing_lag": lag,
                    "max_node_rss_mib": round(max(rss_mib(p.pid) for p in nodes(cluster))),
                }
            )
            print(f"scale: {timeline[-1]}", file=sys.stderr)
            if first_at is None and watcher.applied:
                first_at = now - sample_seconds  # the first record was applied within this sample
            if applied_at is None and watcher.applied >= rows:
                applied_at = now
            if applied_at is not None and lag == 0:
                break
            if now - started > WAIT_SECONDS:
                raise RuntimeError(f"{watcher.applied} of {rows} records applied after {WAIT_SECONDS} s")
    assert applied_at is not None and first_at is not None
    return {
        "seconds_to_apply": round(applied_at - started, 1),
        "records_per_second": round(rows / max(applied_at - first_at, sample_seconds)),
        "seconds_to_index": round(now - started, 1),
        "timeline": timeline,
    }


async def query(client: AsyncClient, data: ClusteredData, tasks: int, ef: int | None) -> dict[str, Any]:
    """QPS and recall@10 of every query, spread over `tasks` concurrent tasks."""
    found: list[list[int]] = [[] for _ in data.queries]

    async def task(number: int) -> None:
        for position in range(number, len(data.queries), tasks):
            hits = await client.search(COLLECTION, data.queries[position], k=K, ef=ef, with_payload=False)
            found[position] = [int(h.id) for h in hits]

    started = time.perf_counter()
    await asyncio.gather(*(task(n) for n in range(tasks)))
    elapsed = time.perf_counter() - started
    padded = np.array([row + [-1] * (K - len(row)) for row in found])
    return {
        "tasks": tasks,
        "ef": ef or "collection (64)",
        "qps": round(len(data.queries) / elapsed),
        "recall": round(recall_at_k(padded, data.truth), 4),
    }


async def caught_up(client: AsyncClient, node: ManagedProcess, target: int, limit: float) -> float | None:
    """Seconds until `node` reports ready, applied >= target and indexing lag 0; None if it
    has not after `limit` seconds (reported as such: the run goes on)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        for status in await node_statuses(client):
            if (
                status.get("node_id") == node.name
                and status.get("ready")
                and int(status.get("last_applied") or 0) >= target
                and not status.get("indexing_lag")
            ):
                return round(time.monotonic() - started, 1)
        await asyncio.sleep(0.5)
    print(f"scale: {node.name} did not catch up in {limit:.0f} s", file=sys.stderr)
    return None


async def follower_of_shard(client: AsyncClient, shard: int) -> tuple[str, int]:
    """A follower's node id in `shard`, and the shard's commit index."""
    statuses = [s for s in await node_statuses(client) if s.get("shard_id") == shard]
    follower = next(s for s in statuses if s.get("role") == "follower")
    return str(follower["node_id"]), max(int(s.get("commit_index") or 0) for s in statuses)


async def restart_and_rebuild(cluster: LocalCluster, client: AsyncClient) -> dict[str, Any]:
    """A follower killed and restarted; another one lost (killed, its disk gone) and
    replaced by a new member as `vecstore node replace` does (caught up by snapshot)."""
    by_name = {p.name: p for p in nodes(cluster)}
    name, commit = await follower_of_shard(client, 0)
    node = by_name[name]
    node.kill()
    node.start()
    restart = await caught_up(client, node, commit, 900)
    name, commit = await follower_of_shard(client, 1)
    lost = by_name[name]
    lost.kill()
    shutil.rmtree(cluster.data_dir / name)
    member = new_member_spec(cluster.data_dir, name)
    cluster.extra_node_env[member.id] = dict(BENCH_ENV)

    async def start_new() -> None:  # what `vecstore up` does when spec.json changes
        swap_member_in_spec(cluster.data_dir, name, member)
        await asyncio.to_thread(cluster.follow_spec)

    coordinator = Coordinator(Topology.of_spec(cluster.spec), access=cluster.access)
    started = time.monotonic()
    replaced: float | None = None
    try:
        await coordinator.replace_member(name, member, start_new, REPLACE_SECONDS)
        replaced = round(time.monotonic() - started, 1)
    except VecStoreError as err:
        kept = LOGS_KEPT / time.strftime("%Y%m%d-%H%M%S")
        shutil.copytree(cluster.data_dir / "logs", kept, dirs_exist_ok=True)
        print(f"scale: node replace did not finish: {err} (node logs kept in {kept})", file=sys.stderr)
    finally:
        await coordinator.close()
    new_node = next(p for p in nodes(cluster) if p.name == member.id)
    indexed = await caught_up(client, new_node, commit, 900) if replaced is not None else None
    return {
        "restart_seconds": restart,
        "replace_seconds": replaced,
        "new_replica_seconds": None if indexed is None or replaced is None else round(replaced + indexed, 1),
    }


async def run(data: ClusteredData, directory: Path, sample_seconds: float) -> dict[str, Any]:
    """The whole run; every process stopped at the end."""
    rows = len(data.base)
    result: dict[str, Any] = {"rows": rows, "dim": DIM, "queries": len(data.queries)}
    with broker(directory) as bootstrap:
        cluster = LocalCluster(directory / "cluster", shards=2, replicas=3, port=free_ports(1)[0])
        for process in cluster.processes:
            process.env.update(BENCH_ENV)
        cluster.start()
        try:
            await wait_ready_async(readyz_url(cluster.router_url), 180, 0.3)
            dead = [p.name for p in nodes(cluster) if not p.running]
            if dead:  # e.g. a port taken between choosing it and binding it: figures would lie
                raise RuntimeError(f"nodes {dead} did not start; see {cluster.data_dir / 'logs'}")
            await create_topic(bootstrap, TOPIC, PARTITIONS)
            async with aiohttp.ClientSession() as session, AsyncClient(cluster.router_url) as client:
                await create_collection(cluster, session, COLLECTION, DIM)
                started = time.monotonic()
                await produce(bootstrap, TOPIC, records(data), total=rows, progress=False)
                result["produce_seconds"] = round(time.monotonic() - started, 1)
                print(f"scale: produced {rows} records in {result['produce_seconds']} s", file=sys.stderr)
                result["ingest"] = await ingest(
                    cluster, client, session, bootstrap, directory, rows, sample_seconds
                )
                result["nodes"] = [
                    {
                        "node": p.name,
                        "rss_mib": round(rss_mib(p.pid)),
                        "disk_mib": round(disk_mib(cluster.data_dir / p.name)),
                    }
                    for p in nodes(cluster)
                ]
                result["queries_run"] = [
                    await query(client, data, 1, None),
                    await query(client, data, 16, None),
                    await query(client, data, 16, 128),
                ]
                result.update(await restart_and_rebuild(cluster, client))
        finally:
            cluster.stop()
    return result


def seconds(value: float | None) -> str:
    """A duration, or that it did not happen within the limit."""
    return "not within the limit" if value is None else f"{value} s"


def report(result: dict[str, Any]) -> str:
    """The printed tables."""
    ingest_ = result["ingest"]
    lines = [
        f"Scale run: {result['rows']:,} x {result['dim']} through Kafka into 2x3 (one worker, 4 partitions)",
        f"produced in {result['produce_seconds']} s; applied in {ingest_['seconds_to_apply']} s "
        f"({ingest_['records_per_second']:,} records/s from the first applied); indexed everywhere "
        f"{ingest_['seconds_to_index']} s after the worker started",
        "",
        f"{'seconds':>8} {'applied':>10} {'records/s':>10} {'max indexing lag':>17} {'max node RSS MiB':>17}",
    ]
    timeline = ingest_["timeline"]
    step = max(1, len(timeline) // 20)
    shown = [*timeline[::step], *([timeline[-1]] if (len(timeline) - 1) % step else [])]
    lines += [
        f"{sample['seconds']:>8} {sample['applied']:>10,} {sample['records_per_second']:>10,} "
        f"{sample['max_indexing_lag']:>17,} {sample['max_node_rss_mib']:>17,}"
        for sample in shown
    ]
    lines += ["", f"{'node':<10} {'RSS MiB':>8} {'disk MiB':>9}"]
    lines += [f"{n['node']:<10} {n['rss_mib']:>8,} {n['disk_mib']:>9,}" for n in result["nodes"]]
    lines += ["", f"{'tasks':>5} {'ef':>16} {'QPS':>6} {'recall@10':>9}"]
    lines += [
        f"{q['tasks']:>5} {q['ef']!s:>16} {q['qps']:>6,} {q['recall']:>9.4f}" for q in result["queries_run"]
    ]
    lines += [
        "",
        f"follower killed and restarted: ready and caught up in {seconds(result['restart_seconds'])}",
        f"node replace of a lost follower: done in {seconds(result['replace_seconds'])}, "
        f"new replica indexed in {seconds(result['new_replica_seconds'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.scale`."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, a smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.queries, args.sample_seconds = 10_000, 50, 1.0
    print(
        f"scale: making {args.rows:,} x {DIM} clustered vectors and their exact neighbours ...",
        file=sys.stderr,
    )
    data = make_clustered(args.rows, args.queries, DIM, clusters=1_000, k=K, seed=21)
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-scale-") as scratch:
        result = asyncio.run(run(data, Path(scratch), args.sample_seconds))
    publish(report(result), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
