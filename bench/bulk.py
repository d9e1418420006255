"""`make bench` bulk section: bulk upsert through the router into a 2 x 3 cluster.

`vecstore.client.AsyncClient.upload` (the native API over the router's WebSocket RPC,
batches of 1,000, 4 in flight) loads one data set into a fresh cluster per configuration:
vectors/s acknowledged, seconds from the last acknowledgement until every replica has
indexed every row, and the CPU seconds of the six nodes. Configurations: every replica
builds its own graphs (the baseline, `VECSTORE_FOLLOWER_GRAPHS=0`), followers adopt their
leader's (shipped), each with the default backpressure bound (4 MiB of unindexed vectors
per leader) and with a bound of 64 MiB (acknowledge a burst ahead of indexing; searches
meanwhile score the backlog exactly). Ratios are against the baseline of the same run.

    python -m bench.bulk [--rows N] [--dim D] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.client import wait_indexed
from bench.ingest import cluster_cpu
from bench.output import publish
from vecstore.client import AsyncClient
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready_async

BATCH = 1_000
PARALLEL = 4
LARGE_BOUND = 64 << 20
CONFIGS = (
    ("every replica builds", "0", None),
    ("followers adopt", "1", None),
    ("every replica builds, 64 MiB bound", "0", LARGE_BOUND),
    ("followers adopt, 64 MiB bound", "1", LARGE_BOUND),
)
"""(label, VECSTORE_FOLLOWER_GRAPHS, VECSTORE_MAX_UNINDEXED_BYTES or the default)."""


async def load_once(
    vectors: np.ndarray, scratch: Path, follower_graphs: str, bound: int | None
) -> dict[str, Any]:
    """A fresh cluster, one upload, the figures."""
    cluster = LocalCluster(scratch, shards=2, replicas=3, port=free_ports(1)[0])
    env = {"VECSTORE_LOG_LEVEL": "WARNING", "VECSTORE_FOLLOWER_GRAPHS": follower_graphs}
    if bound is not None:
        env["VECSTORE_MAX_UNINDEXED_BYTES"] = str(bound)
    for process in cluster.processes:
        process.env.update(env)
    cluster.start()
    try:
        await wait_ready_async(readyz_url(cluster.router_url), 180, 0.3)
        async with AsyncClient(cluster.router_url) as client:
            await client.create_collection("bulk", vectors.shape[1])
            cpu = cluster_cpu(cluster)
            started = time.perf_counter()
            await client.upload("bulk", np.arange(len(vectors)), vectors, batch_size=BATCH, parallel=PARALLEL)
            acknowledged = time.perf_counter() - started
            await wait_indexed(client)
            indexed = time.perf_counter() - started
            cpu = cluster_cpu(cluster) - cpu
            count = await client.count("bulk")
    finally:
        cluster.stop()
    if count != len(vectors):
        raise RuntimeError(f"{count} points stored of {len(vectors)} uploaded")
    return {
        "vectors_per_second": round(len(vectors) / acknowledged),
        "acknowledged_seconds": round(acknowledged, 1),
        "indexed_after_seconds": round(indexed - acknowledged, 1),
        "nodes_cpu_seconds": round(cpu, 1),
    }


def report(result: dict[str, Any]) -> str:
    """The printed table, with ratios against the baseline of the same bound."""
    lines = [
        f"Bulk upsert through the router: {result['rows']:,} x {result['dim']}, 2 x 3 cluster, "
        f"vecstore.client batches of {BATCH}, {PARALLEL} in flight (baseline: every replica builds)",
        f"{'configuration':<36} {'vectors/s acked':>18} {'indexed s later':>16} {'6 nodes CPU s':>16}",
    ]
    rows = result["configs"]
    for row in rows:
        base = rows[0] if "64 MiB" not in row["config"] else rows[2]
        rate, cpu = row["vectors_per_second"], row["nodes_cpu_seconds"]
        lines.append(
            f"{row['config']:<36} {rate:>10,} ({rate / base['vectors_per_second']:.2f}x) "
            f"{row['indexed_after_seconds']:>16} {cpu:>9} ({cpu / base['nodes_cpu_seconds']:.2f}x)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.bulk`."""
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 4_000
    vectors = np.random.default_rng(17).normal(size=(args.rows, args.dim)).astype(np.float32)
    result: dict[str, Any] = {"rows": args.rows, "dim": args.dim, "configs": []}
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-bulk-") as scratch:
        for number, (label, follower_graphs, bound) in enumerate(CONFIGS):
            row = asyncio.run(load_once(vectors, Path(scratch) / str(number), follower_graphs, bound))
            result["configs"].append({"config": label, **row})
            print(f"bulk: {result['configs'][-1]}", file=sys.stderr)
    publish(report(result), result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
