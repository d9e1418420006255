"""Geo-filtered search on one in-process shard: the geo grid of the payload index against a
scan of every geo point, in the same run, on the same data and queries.

100,000 points spread over a 10 x 10 degree box, geo_radius filters of about 1% selectivity
around random centres; QPS of single-query filtered search with the grid and with a full
scan of the geo column, their ratio, and recall@k against brute force (every payload
tested in Python, exact distances). `--quick` for a smoke run. Prints a table and the ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.filters import GeoRadius
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.shard.geo import MEAN_EARTH_RADIUS
from vecstore.shard.payload_filter import matches
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

NAME = "geo"
WEST, EAST, SOUTH, NORTH = 0.0, 10.0, 45.0, 55.0


def region_radius(selectivity: float) -> float:
    """Metres of a circle covering `selectivity` of the box's area."""
    height = math.radians(NORTH - SOUTH) * MEAN_EARTH_RADIUS
    width = math.radians(EAST - WEST) * MEAN_EARTH_RADIUS * math.cos(math.radians((NORTH + SOUTH) / 2))
    return math.sqrt(selectivity * height * width / math.pi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--recall-queries", type=int, default=30)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--selectivity", type=float, default=0.01)
    parser.add_argument("--quick", action="store_true", help="5,000 rows, 50 queries")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.queries, args.recall_queries = 5_000, 50, 10
    rng = np.random.default_rng(16)
    lons = rng.uniform(WEST, EAST, args.rows)
    lats = rng.uniform(SOUTH, NORTH, args.rows)
    vectors = rng.normal(size=(args.rows, args.dim)).astype(np.float32)
    payloads = [{"at": {"lon": float(lon), "lat": float(lat)}} for lon, lat in zip(lons, lats, strict=True)]
    radius = region_radius(args.selectivity)
    margin = 1.5
    conditions = [
        GeoRadius(
            "at",
            float(rng.uniform(WEST + margin, EAST - margin)),
            float(rng.uniform(SOUTH + 1, NORTH - 1)),
            radius,
        )
        for _ in range(args.queries)
    ]
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-geo-") as root:
        shard = Shard(ShardSettings(data_dir=Path(root), gpu=GpuMode.OFF))
        try:
            shard.apply(CreateCollection(CollectionSchema(NAME, args.dim, Metric.L2)))
            for start in range(0, args.rows, 5_000):
                ids = list(range(start, min(start + 5_000, args.rows)))
                shard.apply(Upsert.build(NAME, ids, vectors[ids], [payloads[i] for i in ids]))
            shard.maintain(seal=True, compact=False, force=True)
            index = shard.collection(NAME).payload_index
            results: dict[str, tuple[float, list[list[int]]]] = {}
            for mode, use_grid in (("geo grid", True), ("full scan", False)):
                index.use_geo_grid = use_grid
                shard.search(NAME, queries[:1], args.k, conditions[0])  # builds the columns
                found: list[list[int]] = []
                started = time.perf_counter()
                for query, condition in zip(queries, conditions, strict=True):
                    hits = shard.search(NAME, query[None, :], args.k, condition)[0]
                    found.append([int(hit.id) for hit in hits])
                results[mode] = (args.queries / (time.perf_counter() - started), found)
            counts = [shard.count(NAME, c) for c in conditions[: args.recall_queries]]
        finally:
            shard.close()
    recalls = []
    for i in range(args.recall_queries):
        allowed = np.array(
            [row for row, p in enumerate(payloads) if matches(conditions[i], row, p)], np.int64
        )
        distances = np.linalg.norm(vectors[allowed] - queries[i], axis=1)
        truth = set(allowed[np.argsort(distances, kind="stable")[: args.k]].tolist())
        recalls.append(len(truth & set(results["geo grid"][1][i])) / max(1, len(truth)))
        assert results["geo grid"][1][i] == results["full scan"][1][i], "grid and scan disagree"
    grid_qps, scan_qps = results["geo grid"][0], results["full scan"][0]
    print(
        f"geo-filtered search: {args.rows:,} points, dim {args.dim}, k {args.k}, "
        f"radius {radius / 1000:.1f} km"
    )
    print(
        f"selectivity: mean {np.mean(counts) / args.rows:.2%} (min {min(counts)}, max {max(counts)} points)"
    )
    print(f"{'mode':<10} {'QPS':>10}")
    print(f"{'geo grid':<10} {grid_qps:>10,.0f}")
    print(f"{'full scan':<10} {scan_qps:>10,.0f}")
    print(
        f"ratio grid/scan: {grid_qps / scan_qps:.1f}x; recall@{args.k} vs brute force: {np.mean(recalls):.3f}"
    )
    if args.json is not None:
        figures = {
            "rows": args.rows,
            "selectivity": float(np.mean(counts) / args.rows),
            "grid_qps": grid_qps,
            "scan_qps": scan_qps,
            "ratio": grid_qps / scan_qps,
            "recall": float(np.mean(recalls)),
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
