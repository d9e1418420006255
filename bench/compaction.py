"""Compaction under sustained writes: one shard core with its indexer thread takes upserts
as fast as a leader's backpressure lets them in, while sealed segments are merged.

Three ways of merging, each on a fresh shard with the same rows, in one run:
- `rebuild, one step`: every merge rebuilds its graph from scratch in one indexer step (what
  the shard did before; fresh rows wait for the whole merge);
- `rebuild, chunked`: the same inserts, `merge_chunk` rows per step;
- `reuse, chunked` (the shard as shipped): the merged graph starts as a copy of its largest
  segment's graph, only the other rows are inserted, a chunk per step.

Printed per way: rows acknowledged per second (the writer waits, as a leader does, while
more than `max_unindexed_bytes` of vectors wait for HNSW), the longest wait of one batch,
seconds until every row is indexed and merged, rows inserted into graphs by merges, CPU
seconds of the process, and recall@10 of the final segment; ratios against the first way.
`--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema
from vecstore.node.indexer import start_indexer
from vecstore.shard import merge as merge_module
from vecstore.shard.collection import Collection
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

NAME = "c"
BATCH = 1_000
POLL_SECONDS = 0.002


@dataclass(frozen=True)
class Way:
    label: str
    reuse: bool
    one_step: bool


WAYS = (
    Way("rebuild, one step", reuse=False, one_step=True),
    Way("rebuild, chunked", reuse=False, one_step=False),
    Way("reuse, chunked", reuse=True, one_step=False),
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_way(
    way: Way, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, seal: int, root: Path
) -> dict[str, Any]:
    """Load every row through backpressure into a fresh shard; the figures of one way."""
    settings = ShardSettings(
        data_dir=root / way.label.replace(" ", "").replace(",", "-"),
        seal_threshold=seal,
        merge_chunk=10**9 if way.one_step else ShardSettings.merge_chunk,
        gpu=GpuMode.OFF,
    )
    merged_rows = 0
    original_reusable = merge_module._reusable
    original_plan = Collection._plan_merge

    def counting_plan(self: Collection, force: bool) -> merge_module.Merge | None:
        nonlocal merged_rows
        planned = original_plan(self, force)
        if planned is not None:
            merged_rows += len(planned.pending)
        return planned

    merge_module._reusable = original_reusable if way.reuse else (lambda run, spans: None)
    Collection._plan_merge = counting_plan  # type: ignore[method-assign]
    shard = Shard(settings)
    indexer = start_indexer(shard)
    try:
        shard.apply(CreateCollection(CollectionSchema(NAME, vectors.shape[1])))
        limit = settings.max_unindexed_bytes
        cpu = cpu_seconds()
        started = time.perf_counter()
        longest_wait = 0.0
        for start in range(0, len(vectors), BATCH):
            waited = time.perf_counter()
            while shard.unindexed_bytes() > limit:  # a leader's admit_rows
                time.sleep(POLL_SECONDS)
            longest_wait = max(longest_wait, time.perf_counter() - waited)
            ids = list(range(start, min(start + BATCH, len(vectors))))
            shard.apply(Upsert.build(NAME, ids, vectors[start : start + BATCH], [{} for _ in ids]))
        acknowledged = time.perf_counter() - started
        collection = shard.collection(NAME)
        while (
            collection.pending()
            or collection.frozen
            or collection.active.count >= seal
            or collection.merging is not None
            or collection._compaction_run(False)
        ):
            time.sleep(0.05)
        settled = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        hits = shard.search(NAME, queries, 10)
        found = sum(len({int(h.id) for h in row} & set(truth[i].tolist())) for i, row in enumerate(hits))
        return {
            "way": way.label,
            "rows_per_second": round(len(vectors) / acknowledged),
            "longest_wait_seconds": round(longest_wait, 2),
            "settled_seconds": round(settled, 1),
            "merge_inserts": merged_rows,
            "cpu_seconds": round(cpu, 1),
            "segments": collection.stats()["segments"],
            "recall_at_10": round(found / truth.size, 4),
        }
    finally:
        indexer.stop()
        shard.close()
        merge_module._reusable = original_reusable
        Collection._plan_merge = original_plan  # type: ignore[method-assign]


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    base = rows[0]
    lines = [
        f"Compaction under sustained writes: {meta['rows']:,} x {meta['dim']}, seal every "
        f"{meta['seal']:,} rows, batches of {BATCH:,}, one shard core + indexer thread",
        f"{'way':<20} {'rows/s':>8} {'ratio':>6} {'longest wait s':>15} {'settled s':>10} "
        f"{'merge inserts':>14} {'CPU s':>7} {'ratio':>6} {'recall@10':>10}",
    ]
    lines.extend(
        f"{row['way']:<20} {row['rows_per_second']:>8,} "
        f"{row['rows_per_second'] / base['rows_per_second']:>6.2f} {row['longest_wait_seconds']:>15} "
        f"{row['settled_seconds']:>10} {row['merge_inserts']:>14,} {row['cpu_seconds']:>7} "
        f"{row['cpu_seconds'] / max(base['cpu_seconds'], 1e-9):>6.2f} {row['recall_at_10']:>10}"
        for row in rows
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seal", type=int, default=40_000, help="seal_threshold of the shard")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="6,000 rows sealed every 1,000")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.seal = 6_000, 1_000
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(64, args.dim)).astype(np.float32)
    vectors = (centres[rng.integers(0, 64, args.rows)] + 0.5 * rng.normal(size=(args.rows, args.dim))).astype(
        np.float32
    )
    noise = 0.1 * rng.normal(size=(50, args.dim)).astype(np.float32)
    queries = vectors[rng.choice(args.rows, 50, replace=False)] + noise
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T, axis=1)[:, :10]
    results = []
    with tempfile.TemporaryDirectory(prefix="vecstore-compaction-") as tmp:
        for way in WAYS:
            results.append(run_way(way, vectors, queries, truth, args.seal, Path(tmp)))
            print(f"compaction: {results[-1]}", file=sys.stderr)
    meta = {"rows": args.rows, "dim": args.dim, "seal": args.seal}
    print(report(results, meta))
    if args.json:
        args.json.write_text(json.dumps({**meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
