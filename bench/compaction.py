"""Compaction under sustained writes: one shard core with its indexer thread takes upserts
as fast as a leader's backpressure lets them in, while memtables are sealed and sealed
segments merged.

Three indexer policies, each on a fresh shard with the same rows, in one run:
- `before`: the indexer as it was until 2026-12-04 (emulated here with today's pieces):
  a full memtable is sealed only once every buffered row is indexed (so under writes that
  never pause it is not sealed at all), and a merge runs only when nothing else is to do,
  as one step that rebuilds the merged graph from scratch;
- `shared, rebuild`: sealing does not wait (a full memtable is frozen and indexed first),
  merges take a piece of every indexer step beside fresh rows, but still rebuild;
- `shared, reuse` (the shard as shipped): the same, and a merge starts from a copy of its
  largest segment's graph and inserts only the other rows.

Printed per policy: rows acknowledged per second (the writer waits, as a leader does, while
more than `max_unindexed_bytes` of vectors wait for HNSW), the longest wait of one batch,
the most rows held in memtables (in memory, re-indexed from the journal after a restart),
seconds until every row is indexed, sealed and merged, rows inserted into graphs by merges,
CPU seconds of the process, and recall@10 at the end; ratios against `before`. `--quick`
for a smoke run.
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

from bench.dataset import exact_neighbours
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
    shared: bool


WAYS = (
    Way("before", reuse=False, shared=False),
    Way("shared, rebuild", reuse=False, shared=True),
    Way("shared, reuse", reuse=True, shared=True),
)


class ShardBefore(Shard):
    """The indexer step as it was: seal after the backlog empties, merge when idle, whole."""

    def index_step(self) -> bool:
        busy = False
        for collection in list(self.collections.values()):
            if collection.index_pending():
                busy = True
            elif collection.frozen or collection.active.count >= self.settings.seal_threshold:
                # apply now freezes full memtables (at key-aligned cuts); as before, they are
                # sealed only once the backlog is empty
                busy = collection.seal() or busy
            else:
                busy = collection.compact() or busy
        return busy


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
    shard = (Shard if way.shared else ShardBefore)(settings)
    indexer = start_indexer(shard)
    try:
        shard.apply(CreateCollection(CollectionSchema(NAME, vectors.shape[1])))
        limit = settings.max_unindexed_bytes
        cpu = cpu_seconds()
        started = time.perf_counter()
        longest_wait = 0.0
        most_in_memtables = 0
        collection = shard.collection(NAME)
        for start in range(0, len(vectors), BATCH):
            waited = time.perf_counter()
            while shard.unindexed_bytes() > limit:  # a leader's admit_rows
                time.sleep(POLL_SECONDS)
            longest_wait = max(longest_wait, time.perf_counter() - waited)
            ids = list(range(start, min(start + BATCH, len(vectors))))
            shard.apply(Upsert.build(NAME, ids, vectors[start : start + BATCH], [{} for _ in ids]))
            most_in_memtables = max(most_in_memtables, collection.stats()["memtable_points"])
        acknowledged = time.perf_counter() - started
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
            "most_memtable_rows": most_in_memtables,
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
        f"{'policy':<16} {'rows/s':>8} {'ratio':>6} {'longest wait s':>15} {'memtable rows':>14} "
        f"{'settled s':>10} {'ratio':>6} {'merge inserts':>14} {'CPU s':>7} {'ratio':>6} {'recall@10':>10}",
    ]
    lines.extend(
        f"{row['way']:<16} {row['rows_per_second']:>8,} "
        f"{row['rows_per_second'] / base['rows_per_second']:>6.2f} {row['longest_wait_seconds']:>15} "
        f"{row['most_memtable_rows']:>14,} {row['settled_seconds']:>10} "
        f"{row['settled_seconds'] / max(base['settled_seconds'], 1e-9):>6.2f} "
        f"{row['merge_inserts']:>14,} {row['cpu_seconds']:>7} "
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
    truth = exact_neighbours(vectors, queries, 10)
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
