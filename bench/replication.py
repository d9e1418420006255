"""`make bench` replication section: a real 3-node shard group on this machine.

Measures committed writes/s and vectors/s for batches of 1, 100 and 1,000 128-d vectors,
acknowledgement latency (p50/p99), and failover time (leader SIGKILL to the first
acknowledged write) over repeated kills.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.schema import CollectionSchema
from vecstore.launcher.processes import LocalShardGroup
from vecstore.transport.node_client import NodeClient

SECRET = "benchmark-cluster-secret-0123456789"  # noqa: S105 - a throwaway local cluster
DIM = 128


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, 0 for none."""
    return float(np.percentile(values, q)) if values else 0.0


async def write_load(
    client: NodeClient, batch: int, seconds: float, writers: int, first_id: int
) -> dict[str, Any]:
    """Concurrent writers for `seconds`; returns throughput and latency figures."""
    rng = np.random.default_rng(batch)
    vectors = rng.normal(size=(batch, DIM)).astype(np.float32)
    latencies: list[float] = []
    errors = 0
    next_id = first_id
    deadline = time.monotonic() + seconds

    async def writer() -> None:
        nonlocal next_id, errors
        while time.monotonic() < deadline:
            ids = list(range(next_id, next_id + batch))
            next_id += batch
            started = time.perf_counter()
            try:
                await client.apply(Upsert.build("bench", ids, vectors))
            except VecStoreError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - started
    return {
        "batch": batch,
        "writers": writers,
        "commits_per_s": len(latencies) / elapsed,
        "vectors_per_s": len(latencies) * batch / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": errors,
        "next_id": next_id,
    }


async def failover(group: LocalShardGroup, client: NodeClient, kills: int) -> dict[str, Any]:
    """Kill the leader `kills` times; time until a write is acknowledged again."""
    times: list[float] = []
    vector = np.zeros((1, DIM), dtype=np.float32)
    for attempt in range(kills):
        leader = group.by_http(await client.find_leader())
        leader.signal(signal.SIGKILL)
        killed = time.perf_counter()
        while True:
            try:
                await client.apply(Upsert.build("bench", [10**12 + attempt], vector))
                break
            except VecStoreError:
                await asyncio.sleep(0.02)
        times.append(time.perf_counter() - killed)
        print(f"  kill {attempt + 1}/{kills}: writes again after {times[-1]:.2f}s", file=sys.stderr)
        leader.kill()
        leader.start()
        await asyncio.sleep(3)  # let it rejoin before the next kill
    return {
        "kills": kills,
        "p50_s": statistics.median(times),
        "p99_s": percentile(times, 99),
        "max_s": max(times),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole replication benchmark."""
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-raft-") as scratch:
        group = LocalShardGroup(Path(scratch), replicas=3, secret=SECRET)
        group.start()
        try:
            async with NodeClient(group.http_addresses, deadline_seconds=30, access=group.access) as client:
                await client.find_leader()
                await client.apply(CreateCollection(CollectionSchema("bench", DIM)))
                rows = []
                next_id = 0
                for batch in args.batches:
                    print(f"writing batches of {batch} for {args.seconds}s ...", file=sys.stderr)
                    row = await write_load(client, batch, args.seconds, args.writers, next_id)
                    next_id = row.pop("next_id")
                    rows.append(row)
                failover_row = await failover(group, client, args.kills) if args.kills else None
        finally:
            group.stop()
    return {"writes": rows, "failover": failover_row}


def print_report(report: dict[str, Any]) -> None:
    """Plain-text tables."""
    print("\nReplication: 3-node shard group on this machine (128-d vectors)")
    header = f"{'batch':>6} {'writers':>7} {'commits/s':>10} {'vectors/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    for row in report["writes"]:
        print(
            f"{row['batch']:>6} {row['writers']:>7} {row['commits_per_s']:>10.0f} "
            f"{row['vectors_per_s']:>10.0f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}"
        )
    if report["failover"]:
        fo = report["failover"]
        print(
            f"\nFailover over {fo['kills']} leader SIGKILLs: p50 {fo['p50_s']:.2f}s, "
            f"p99 {fo['p99_s']:.2f}s, max {fo['max_s']:.2f}s"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.replication`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.seconds, args.kills = [100], 2.0, 1
    report = asyncio.run(run(args))
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
