"""`make bench` section "load then query": search speed while replicas index, and after.

What a new user does first: load a data set with qdrant-client (REST, batches of 1,000,
`wait=true`), then query at once. Each shape (1x1, 2x3) is a fresh local cluster of this
machine. Right after the last acknowledged batch, one client queries in turn through the
project's RPC client (`RouterClient`, WebSocket msgpack) and through qdrant-client REST
until every node reports `indexing_lag` 0; then, once every indexer has published its
graph (`exact_tail` 0, a few seconds), the same queries again on the indexed cluster.
Recall@10 is against brute force over every loaded row (an acknowledged point must be
found during indexing too). The figure that matters is the ratio: QPS during indexing /
QPS after, per client (the target is >= 0.5).

    python -m bench.load_then_query [--quick] [--rows N] [--shapes 1x1,2x3] [--data wordnet|synthetic]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import embeddings
from bench.dataset import FloatMatrix, IntArray, exact_neighbours, make_clustered
from bench.output import publish
from bench.router import _wait as wait_ready
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.transport.router_client import RouterClient

K = 10
EF = 64
BATCH = 1_000
COLLECTION = "load_then_query"
MAX_INDEXING_SECONDS = 900.0
CLIENTS = ("rpc", "rest")


@dataclass
class Phase:
    """Latencies and answers of one client in one phase."""

    latencies: list[float] = field(default_factory=list)
    answers: list[tuple[int, list[int]]] = field(default_factory=list)
    """(query row, ids found)."""

    def summary(self, truth: IntArray) -> dict[str, Any]:
        """QPS at one client, latency percentiles (ms), recall@10 against brute force."""
        if not self.latencies:
            return {"queries": 0, "qps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "recall": 0.0}
        hits = sum(len(set(found) & set(truth[row].tolist())) for row, found in self.answers)
        return {
            "queries": len(self.latencies),
            "qps": len(self.latencies) / sum(self.latencies),
            "p50_ms": float(np.percentile(self.latencies, 50)) * 1000,
            "p99_ms": float(np.percentile(self.latencies, 99)) * 1000,
            "recall": hits / (K * len(self.answers)),
        }


def load_data(kind: str, rows: int, queries: int) -> tuple[str, FloatMatrix, FloatMatrix, IntArray]:
    """(description, base, queries, exact top-10 of each query over base)."""
    if kind == "wordnet":
        vectors = embeddings.load()
        order = np.random.default_rng(7).permutation(len(vectors))
        asked = np.ascontiguousarray(vectors[np.sort(order[:queries])])
        base = np.ascontiguousarray(vectors[np.sort(order[queries:])][:rows])
        described = f"WordNet glosses, all-MiniLM-L6-v2, {len(base):,} x {base.shape[1]}"
        return described, base, asked, exact_neighbours(base, asked, K)
    data = make_clustered(rows, queries, 384, clusters=100, k=K, seed=19)
    return f"synthetic clustered, {rows:,} x 384", data.base, data.queries, data.truth


class Run:
    """One shape: a fresh cluster, the load, the two phases."""

    def __init__(self, shards: int, replicas: int, scratch: Path, node_env: dict[str, str]) -> None:
        self.shape = f"{shards}x{replicas}"
        port = free_ports(1)[0]
        self.cluster = LocalCluster(scratch / self.shape, shards=shards, replicas=replicas, port=port)
        for process in self.cluster.processes:
            if process.role == "node":
                process.env.update(node_env)
        self.loop = asyncio.new_event_loop()
        self.rpc: RouterClient | None = None
        self.rest: Any = None

    def start(self) -> None:
        """Start the cluster and both clients."""
        from qdrant_client import QdrantClient

        self.cluster.start()
        self.loop.run_until_complete(wait_ready(self.cluster.router_url))
        self.rpc = RouterClient(self.cluster.router_url)
        self.rest = QdrantClient(url=self.cluster.router_url, timeout=120, check_compatibility=False)

    def load(self, base: FloatMatrix) -> float:
        """Create the collection and upload through qdrant-client; returns vectors/s acknowledged."""
        from qdrant_client import models

        params = models.VectorParams(size=base.shape[1], distance=models.Distance.COSINE)
        self.rest.create_collection(COLLECTION, vectors_config=params)
        started = time.perf_counter()
        for start in range(0, len(base), BATCH):
            stop = min(start + BATCH, len(base))
            self.rest.upsert(
                COLLECTION,
                points=models.Batch(ids=list(range(start, stop)), vectors=base[start:stop].tolist()),
                wait=True,
            )
            _progress(f"{self.shape}: loaded {stop:,}/{len(base):,}")
        return len(base) / (time.perf_counter() - started)

    def lag(self, field: str = "indexing_lag") -> int:
        """Rows not yet in HNSW on the slowest node (`exact_tail`: rows searches still score
        exactly, past the graphs the indexers published)."""
        assert self.rpc is not None
        nodes = self.loop.run_until_complete(self.rpc.status())
        return max(int(node.get(field, 1)) for node in nodes)

    def settle(self) -> float:
        """Wait until no node scores rows exactly (an idle indexer publishes its graph after
        a few seconds); the seconds it took."""
        started = time.perf_counter()
        while self.lag("exact_tail") and time.perf_counter() - started < MAX_INDEXING_SECONDS:
            time.sleep(0.2)
        return time.perf_counter() - started

    def query(self, client: str, vector: FloatMatrix) -> list[int]:
        """One search of k=10 with ef 64, ids of the hits."""
        if client == "rpc":
            assert self.rpc is not None
            body = {"vector": vector.tolist(), "k": K, "ef": EF, "with_payload": False}
            answer = self.loop.run_until_complete(
                self.rpc.call("POST", f"/v1/collections/{COLLECTION}/search", body)
            )
            return [int(hit["id"]) for hit in answer["result"]]
        from qdrant_client import models

        points = self.rest.query_points(
            COLLECTION, query=vector.tolist(), limit=K, search_params=models.SearchParams(hnsw_ef=EF)
        ).points
        return [int(point.id) for point in points]

    def phase_during(self, queries: FloatMatrix) -> tuple[dict[str, Phase], float]:
        """Query with both clients in turn until every node has indexed; the phases and the
        seconds indexing took after the load."""
        phases = {client: Phase() for client in CLIENTS}
        started = time.perf_counter()
        checked = 0.0
        row = 0
        while True:
            now = time.perf_counter()
            if now - checked >= 0.5:
                checked = now
                lag = self.lag()
                _progress(f"{self.shape}: indexing lag {lag:,} rows, {now - started:.0f} s")
                if lag == 0 or now - started > MAX_INDEXING_SECONDS:
                    return phases, now - started
            for client in CLIENTS:
                t0 = time.perf_counter()
                found = self.query(client, queries[row % len(queries)])
                phases[client].latencies.append(time.perf_counter() - t0)
                phases[client].answers.append((row % len(queries), found))
            row += 1

    def phase_after(self, queries: FloatMatrix) -> dict[str, Phase]:
        """Every query once per client on the indexed cluster."""
        phases = {client: Phase() for client in CLIENTS}
        for client in CLIENTS:
            for row, vector in enumerate(queries):
                t0 = time.perf_counter()
                found = self.query(client, vector)
                phases[client].latencies.append(time.perf_counter() - t0)
                phases[client].answers.append((row, found))
        return phases

    def close(self) -> None:
        """Close the clients, stop the cluster."""
        if self.rpc is not None:
            self.loop.run_until_complete(self.rpc.close())
        if self.rest is not None:
            self.rest.close()
        self.cluster.stop()
        self.loop.close()


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{text:<70}", end="", file=sys.stderr, flush=True)


def run_shape(
    shape: str,
    base: FloatMatrix,
    queries: FloatMatrix,
    truth: IntArray,
    scratch: Path,
    node_env: dict[str, str],
) -> dict[str, Any]:
    """Load then query on one fresh cluster of `shape` (SxR)."""
    shards, replicas = (int(part) for part in shape.split("x"))
    run = Run(shards, replicas, scratch, node_env)
    try:
        run.start()
        ingest = run.load(base)
        during, indexing_seconds = run.phase_during(queries)
        settle_seconds = run.settle()
        after = run.phase_after(queries)
    finally:
        run.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return {
        "shape": shape,
        "ingest_vectors_per_s": ingest,
        "indexing_seconds": indexing_seconds,
        "settle_seconds": settle_seconds,
        "during": {client: during[client].summary(truth) for client in CLIENTS},
        "after": {client: after[client].summary(truth) for client in CLIENTS},
    }


def report(result: dict[str, Any]) -> str:
    """The printed table: per shape and client, QPS and p99 during and after indexing."""
    lines = [
        f"Load then query ({result['data']}; k={K}, ef={EF}, one client; {result['queries']} queries)"
        + (f"; nodes with {result['node_env']}" if result.get("node_env") else ""),
        f"{'shape':<6} {'client':<22} {'phase':<8} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>9} "
        f"{'recall':>7} {'queries':>8}",
    ]
    names = {"rpc": "RouterClient (RPC)", "rest": "qdrant-client (REST)"}
    verdicts = []
    for shape in result["shapes"]:
        for client in CLIENTS:
            for phase in ("during", "after"):
                row = shape[phase][client]
                lines.append(
                    f"{shape['shape']:<6} {names[client]:<22} {phase:<8} {row['qps']:>8.1f} "
                    f"{row['p50_ms']:>8.2f} {row['p99_ms']:>9.2f} {row['recall']:>7.3f} {row['queries']:>8}"
                )
            after = shape["after"][client]["qps"]
            ratio = shape["during"][client]["qps"] / after if after else 0.0
            verdicts.append(
                f"{shape['shape']} {names[client]}: QPS during / after indexing = {ratio:.2f} "
                f"-> {'met' if ratio >= 0.5 else 'MISSED'} (target >= 0.5)"
            )
        lines.append(
            f"{shape['shape']:<6} load {shape['ingest_vectors_per_s']:,.0f} vectors/s (qdrant-client, "
            f"batches of {BATCH:,}, wait=true); indexing finished {shape['indexing_seconds']:.1f} s "
            f"after the last batch, graphs published {shape['settle_seconds']:.1f} s later"
        )
    return "\n".join([*lines, "", *verdicts])


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.load_then_query`."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, help="rows to load (default: all WordNet; quick 3,000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--shapes", default="1x1,2x3", help="cluster shapes, SxR, comma-separated")
    parser.add_argument("--data", choices=("wordnet", "synthetic"), help="default: wordnet when cached")
    parser.add_argument("--quick", action="store_true", help="small smoke run (synthetic, 3,000 rows)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--node-env", action="append", default=[], metavar="NAME=VALUE", help="environment of every node"
    )
    args = parser.parse_args(argv)
    node_env = dict(item.split("=", 1) for item in args.node_env)
    kind = args.data or ("wordnet" if embeddings.CACHE.exists() and not args.quick else "synthetic")
    default_rows = embeddings.load().shape[0] - args.queries if kind == "wordnet" else 100_000
    rows = args.rows or (3_000 if args.quick else default_rows)
    queries = 30 if args.quick else args.queries
    described, base, asked, truth = load_data(kind, rows, queries)
    result: dict[str, Any] = {"data": described, "queries": queries, "node_env": node_env, "shapes": []}
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-ltq-") as scratch:
        for shape in args.shapes.split(","):
            print(f"load then query on {shape} ...", file=sys.stderr)
            result["shapes"].append(run_shape(shape.strip(), base, asked, truth, Path(scratch), node_env))
    publish(report(result), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
