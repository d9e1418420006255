"""`make bench` router section: end-to-end search through a local 2 x 3 cluster.

In one run on one machine, against the same clustered data: raw usearch in-process, the
shard core in-process, and the cluster through its router with 1 client and with 32
concurrent clients. The load generator shares the machine's cores with the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from usearch.index import Index

from bench.dataset import ClusteredData, make_clustered, recall_at_k
from bench.output import publish
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready_async
from vecstore.node.indexer import start_indexer
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard

K = 10


def summarize(
    latencies: list[float], elapsed: float, found: list[list[int]], data: ClusteredData
) -> dict[str, Any]:
    """QPS, latency percentiles (ms) and recall@10."""
    return {
        "qps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) * 1000,
        "p99_ms": float(np.percentile(latencies, 99)) * 1000,
        "recall": recall_at_k(np.array([row + [-1] * (K - len(row)) for row in found]), data.truth),
    }


def bench_usearch(data: ClusteredData) -> dict[str, Any]:
    """Raw usearch, one query at a time."""
    index = Index(
        ndim=data.base.shape[1], metric="cos", connectivity=16, expansion_add=128, expansion_search=64
    )
    index.add(np.arange(len(data.base), dtype=np.uint64), data.base)
    latencies, found = [], []
    started = time.perf_counter()
    for query in data.queries:
        t0 = time.perf_counter()
        keys = index.search(query, K).keys
        latencies.append(time.perf_counter() - t0)
        found.append([int(k) for k in keys])
    return summarize(latencies, time.perf_counter() - started, found, data)


def bench_shard(data: ClusteredData, scratch: Path) -> dict[str, Any]:
    """The shard core in-process, sealed into one segment, one query at a time."""
    shard = Shard(ShardSettings(data_dir=scratch / "shard"))
    indexer = start_indexer(shard)  # as in a node
    try:
        shard.apply(CreateCollection(CollectionSchema("bench", data.base.shape[1])))
        for start in range(0, len(data.base), 1_000):
            stop = min(start + 1_000, len(data.base))
            shard.apply(Upsert.build("bench", list(range(start, stop)), data.base[start:stop]))
        shard.wait_indexed(600)
        shard.maintain(force=True)
        latencies, found = [], []
        started = time.perf_counter()
        for query in data.queries:
            t0 = time.perf_counter()
            hits = shard.search("bench", query[None, :], K, with_payload=False)[0]
            latencies.append(time.perf_counter() - t0)
            found.append([int(h.id) for h in hits])
        return summarize(latencies, time.perf_counter() - started, found, data)
    finally:
        indexer.stop()
        shard.close()


async def _wait(url: str, seconds: float = 120) -> None:
    await wait_ready_async(readyz_url(url), seconds, 0.3)


async def _load(session: aiohttp.ClientSession, url: str, data: ClusteredData) -> None:
    async with session.put(f"{url}/v1/collections/bench", json={"dimension": data.base.shape[1]}) as r:
        r.raise_for_status()
    for start in range(0, len(data.base), 1_000):
        points = [
            {"id": i, "vector": data.base[i].tolist()}
            for i in range(start, min(start + 1_000, len(data.base)))
        ]
        async with session.put(f"{url}/v1/collections/bench/points", json={"points": points}) as r:
            r.raise_for_status()
    while True:  # searches are correct meanwhile, but measure the indexed steady state
        async with session.get(f"{url}/v1/status") as r:
            nodes = (await r.json())["nodes"]
        if all(n.get("indexing_lag", 1) == 0 for n in nodes):
            return
        await asyncio.sleep(0.5)


async def _clients(url: str, data: ClusteredData, clients: int, rounds: int) -> dict[str, Any]:
    latencies: list[float] = []
    found: list[list[int]] = [[] for _ in data.queries]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(number: int) -> None:
            for position in range(number, len(data.queries) * rounds, clients):
                query = position % len(data.queries)
                body = {"vector": data.queries[query].tolist(), "k": K, "with_payload": False}
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/collections/bench/search", json=body) as r:
                    hits = (await r.json())["result"]
                latencies.append(time.perf_counter() - t0)
                found[query] = [h["id"] for h in hits]

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    return summarize(latencies, elapsed, found, data)


async def bench_cluster(data: ClusteredData, scratch: Path, shards: int, replicas: int) -> dict[str, Any]:
    """The cluster through its router: 1 client, then 32 concurrent clients."""
    cluster = LocalCluster(scratch / "cluster", shards=shards, replicas=replicas, port=free_ports(1)[0])
    cluster.start()
    try:
        await _wait(cluster.router_url)
        async with aiohttp.ClientSession() as session:
            await _load(session, cluster.router_url, data)
        single = await _clients(cluster.router_url, data, 1, 1)
        many = await _clients(cluster.router_url, data, 32, 2)
        return {"one_client": single, "32_clients": many}
    finally:
        cluster.stop()


def report(result: dict[str, Any]) -> str:
    """The printed table."""
    usearch, shard = result["usearch"], result["shard"]
    one, many = result["cluster"]["one_client"], result["cluster"]["32_clients"]
    rows = [
        ("raw usearch (1 thread)", usearch),
        ("shard in-process (1 thread)", shard),
        (f"router {result['shape']}, 1 client", one),
        (f"router {result['shape']}, 32 clients", many),
    ]
    lines = [
        f"Search through the router ({result['rows']} x {result['dim']}, k={K}, {result['queries']} queries)",
        f"{'system':<34} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>9}",
    ]
    lines += [
        f"{name:<34} {r['qps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['recall']:>9.3f}"
        for name, r in rows
    ]
    lines.append("")
    lines.append(
        f"target p50(1 client) <= usearch p50 + 3 ms: {one['p50_ms']:.2f} <= {usearch['p50_ms'] + 3:.2f} "
        f"-> {'met' if one['p50_ms'] <= usearch['p50_ms'] + 3 else 'MISSED'}"
    )
    ratio = many["qps"] / shard["qps"]
    lines.append(
        f"target QPS(32 clients) >= 0.5 x shard QPS: {ratio:.2f}x -> {'met' if ratio >= 0.5 else 'MISSED'}"
    )
    lines.append(
        f"target recall(cluster) >= recall(usearch): {one['recall']:.3f} vs {usearch['recall']:.3f} -> "
        f"{'met' if one['recall'] >= usearch['recall'] - 1e-9 else 'MISSED'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.router`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.queries = 3_000, 100
    print(f"making {args.rows} x {args.dim} clustered vectors ...", file=sys.stderr)
    data = make_clustered(args.rows, args.queries, args.dim, clusters=100, k=K, seed=11)
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-router-") as scratch:
        print("raw usearch ...", file=sys.stderr)
        result: dict[str, Any] = {"rows": args.rows, "dim": args.dim, "queries": args.queries}
        result["shape"] = f"{args.shards}x{args.replicas}"
        result["usearch"] = bench_usearch(data)
        print("shard in-process ...", file=sys.stderr)
        result["shard"] = bench_shard(data, Path(scratch))
        print(f"cluster {result['shape']} through the router ...", file=sys.stderr)
        result["cluster"] = asyncio.run(bench_cluster(data, Path(scratch), args.shards, args.replicas))
    publish(report(result), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
