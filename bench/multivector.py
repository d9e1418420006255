"""Multivector (ColBERT-style MaxSim) search: QPS and recall@k of the shard core against a
numpy brute-force baseline and qdrant-client's local mode, on the same random documents
(each a matrix of token vectors) and queries. `--quick` for a smoke run.

MaxSim search in VecStore is exact (every document of the shard is scored), so recall is
1.0 by construction; the figure that matters is QPS, printed as a ratio to the baseline
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema, Metric, VectorSpec
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard


def brute_force(query: np.ndarray, documents: list[np.ndarray], k: int) -> list[int]:
    """Exact MaxSim (cosine) of one query against every document: the ids of the best k."""
    unit_query = query / np.linalg.norm(query, axis=1, keepdims=True)
    scores = []
    for matrix in documents:
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        scores.append(float(np.sum(np.max(unit_query @ unit.T, axis=1))))
    return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:k]]


def timed(run: Any, queries: list[np.ndarray]) -> tuple[float, list[list[int]]]:
    started = time.perf_counter()
    found = [run(q) for q in queries]
    return len(queries) / (time.perf_counter() - started), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=2_000)
    parser.add_argument("--tokens", type=int, default=32, help="vectors per document and per query")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="300 documents, 10 queries")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.documents, args.queries = 300, 10
    rng = np.random.default_rng(7)
    documents = [
        rng.normal(size=(int(rng.integers(args.tokens // 2, args.tokens + 1)), args.dim)).astype(np.float32)
        for _ in range(args.documents)
    ]
    queries = [rng.normal(size=(args.tokens, args.dim)).astype(np.float32) for _ in range(args.queries)]
    truth = [brute_force(q, documents, args.k) for q in queries]
    results: dict[str, dict[str, float]] = {}

    base_qps, _ = timed(lambda q: brute_force(q, documents, args.k), queries)
    results["numpy brute force"] = {"qps": base_qps, "recall": 1.0}

    with tempfile.TemporaryDirectory() as scratch:
        shard = Shard(ShardSettings(data_dir=Path(scratch), gpu=GpuMode.OFF))
        try:
            schema = CollectionSchema.with_named(
                "docs", {"colbert": VectorSpec(args.dim, Metric.COSINE, multivector=True)}
            )
            shard.apply(CreateCollection(schema))
            for start in range(0, args.documents, 200):
                ids = list(range(start, min(start + 200, args.documents)))
                rows = list(range(len(ids)))
                shard.apply(Upsert.build_named("docs", ids, {"colbert": (rows, [documents[i] for i in ids])}))
            qps, found = timed(
                lambda q: [int(h.id) for h in shard.multi_search("docs", "colbert", [q], args.k)[0]], queries
            )
            results["vecstore shard"] = {"qps": qps, "recall": _recall(found, truth)}
        finally:
            shard.close()

    try:
        from qdrant_client import QdrantClient, models

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            local = QdrantClient(":memory:")
            config = models.VectorParams(
                size=args.dim,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            )
            local.create_collection("docs", vectors_config={"colbert": config})
            local.upload_points(
                "docs",
                [models.PointStruct(id=i, vector={"colbert": m.tolist()}) for i, m in enumerate(documents)],
            )
            qps, found = timed(
                lambda q: [
                    int(p.id)
                    for p in local.query_points("docs", q.tolist(), using="colbert", limit=args.k).points
                ],
                queries,
            )
            results["qdrant-client local mode"] = {"qps": qps, "recall": _recall(found, truth)}
            local.close()
    except ImportError:  # the peer is a test/bench dependency
        pass

    print(
        f"Multivector MaxSim: {args.documents:,} documents x {args.tokens // 2}-{args.tokens} vectors, "
        f"{args.dim}-d cosine, queries of {args.tokens} vectors, k {args.k}, one thread"
    )
    print(f"{'system':<28} {'QPS':>10} {'ratio':>8} {'recall@k':>9}")
    for system, figures in results.items():
        ratio = figures["qps"] / base_qps
        print(f"{system:<28} {figures['qps']:>10,.1f} {ratio:>7.2f}x {figures['recall']:>9.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"documents": args.documents, "results": results}, indent=2))


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / max(1, sum(len(t) for t in truth))


if __name__ == "__main__":
    main()
