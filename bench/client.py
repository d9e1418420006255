"""`make bench` client section: VecStore's Python client against qdrant-client, same cluster.

One 2 x 3 cluster, one data set. Both clients load it (each into its own collection:
`vecstore.client.AsyncClient.upload` over the native API, qdrant-client's `upsert` over the
Qdrant REST API, batches of 1,000, 4 in flight), then search it with 1 and with 16
concurrent asyncio tasks. qdrant-client (raw HTTP) is the baseline measured in the same
run: the table prints VecStore's client as a ratio of it. The load generator shares the
machine's cores with the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient, models

from bench.dataset import ClusteredData, make_clustered, recall_at_k
from bench.output import publish
from vecstore.client import AsyncClient
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready_async

K = 10
BATCH = 1_000
PARALLEL = 4
TASKS = (1, 16)
Search = Callable[[np.ndarray], Awaitable[list[int]]]


async def load_vecstore(client: AsyncClient, data: ClusteredData) -> float:
    """Seconds to upload every vector through the native API."""
    await client.create_collection("native", data.base.shape[1])
    started = time.perf_counter()
    await client.upload("native", np.arange(len(data.base)), data.base, batch_size=BATCH, parallel=PARALLEL)
    return time.perf_counter() - started


async def load_qdrant(client: AsyncQdrantClient, data: ClusteredData) -> float:
    """Seconds to upsert every vector through the Qdrant REST API."""
    await client.create_collection(
        "qdrant", vectors_config=models.VectorParams(size=data.base.shape[1], distance=models.Distance.COSINE)
    )
    gate = asyncio.Semaphore(PARALLEL)

    async def send(start: int) -> None:
        stop = min(start + BATCH, len(data.base))
        batch = models.Batch(ids=list(range(start, stop)), vectors=data.base[start:stop].tolist())
        async with gate:
            await client.upsert("qdrant", batch, wait=True)

    started = time.perf_counter()
    await asyncio.gather(*(send(start) for start in range(0, len(data.base), BATCH)))
    return time.perf_counter() - started


async def wait_indexed(client: AsyncClient) -> None:
    """Until every node reports indexing lag 0 (measure the indexed steady state)."""
    while True:
        if not any(node.get("indexing_lag", 1) for node in await client.status()):
            return
        await asyncio.sleep(0.5)


async def run_tasks(search: Search, data: ClusteredData, tasks: int, rounds: int) -> dict[str, Any]:
    """`tasks` concurrent loops over the queries; QPS, latency percentiles, recall@10."""
    latencies: list[float] = []
    found: list[list[int]] = [[] for _ in data.queries]

    async def task(number: int) -> None:
        for position in range(number, len(data.queries) * rounds, tasks):
            query = position % len(data.queries)
            t0 = time.perf_counter()
            found[query] = await search(data.queries[query])
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(task(n) for n in range(tasks)))
    elapsed = time.perf_counter() - started
    padded = np.array([row + [-1] * (K - len(row)) for row in found])
    return {
        "qps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) * 1000,
        "p99_ms": float(np.percentile(latencies, 99)) * 1000,
        "recall": recall_at_k(padded, data.truth),
    }


async def bench(data: ClusteredData, scratch: Path, rounds: int) -> dict[str, Any]:
    """Load with both clients, then search with both at each concurrency."""
    cluster = LocalCluster(scratch / "cluster", shards=2, replicas=3, port=free_ports(1)[0])
    cluster.start()
    try:
        await wait_ready_async(readyz_url(cluster.router_url), 180, 0.3)
        theirs = AsyncQdrantClient(url=cluster.router_url, timeout=60)
        async with AsyncClient(cluster.router_url) as ours:
            rows = len(data.base)
            print("loading with vecstore.client ...", file=sys.stderr)
            load = {"vecstore.client": rows / await load_vecstore(ours, data)}
            await wait_indexed(ours)  # the second load must not pay for the first one's indexing
            print("loading with qdrant-client ...", file=sys.stderr)
            load["qdrant-client"] = rows / await load_qdrant(theirs, data)
            await wait_indexed(ours)

            async def vecstore_search(query: np.ndarray) -> list[int]:
                hits = await ours.search("native", query, k=K, with_payload=False)
                return [int(hit.id) for hit in hits]

            async def qdrant_search(query: np.ndarray) -> list[int]:
                answer = await theirs.query_points(
                    "qdrant", query=query.tolist(), limit=K, with_payload=False
                )
                return [int(point.id) for point in answer.points]

            searches: dict[str, dict[str, Any]] = {}
            for tasks in TASKS:
                for name, search in (("qdrant-client", qdrant_search), ("vecstore.client", vecstore_search)):
                    print(f"{name}, {tasks} tasks ...", file=sys.stderr)
                    searches[f"{name}/{tasks}"] = await run_tasks(search, data, tasks, rounds)
        await theirs.close()
        return {"load_vectors_per_s": load, "search": searches}
    finally:
        cluster.stop()


def report(result: dict[str, Any]) -> str:
    """The printed table: each figure, and VecStore's client as a ratio of qdrant-client."""
    load, search = result["load_vectors_per_s"], result["search"]
    lines = [
        f"Python clients on one 2x3 cluster ({result['rows']} x {result['dim']}, k={K}, "
        f"{result['queries']} queries; baseline: qdrant-client in the same run)",
        f"{'client':<18} {'tasks':>5} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>9} "
        f"{'QPS ratio':>9}",
    ]
    for tasks in TASKS:
        base = search[f"qdrant-client/{tasks}"]
        for name in ("qdrant-client", "vecstore.client"):
            r = search[f"{name}/{tasks}"]
            lines.append(
                f"{name:<18} {tasks:>5} {r['qps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{r['recall']:>9.3f} {r['qps'] / base['qps']:>8.2f}x"
            )
    ratio = load["vecstore.client"] / load["qdrant-client"]
    lines.append(
        f"bulk load (batches of {BATCH}, {PARALLEL} in flight): vecstore.client "
        f"{load['vecstore.client']:,.0f} vectors/s, qdrant-client {load['qdrant-client']:,.0f} "
        f"vectors/s ({ratio:.2f}x)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.client`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the queries per run")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.queries, args.rounds = 2_000, 50, 1
    print(f"making {args.rows} x {args.dim} clustered vectors ...", file=sys.stderr)
    data = make_clustered(args.rows, args.queries, args.dim, clusters=100, k=K, seed=13)
    result: dict[str, Any] = {"rows": args.rows, "dim": args.dim, "queries": args.queries}
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-client-") as scratch:
        result.update(asyncio.run(bench(data, Path(scratch), args.rounds)))
    publish(report(result), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
