"""The shard core in process: commands applied directly, searches through its planner."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.dataset import FloatMatrix, IntArray
from bench.engines import COLLECTION, ShardEngine
from bench.footprint import directory_bytes
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, SEARCH_FLOOR, BuildTiming
from bench.workload import Workload
from vecstore.cluster.commands import Upsert
from vecstore.cluster.filters import Compare, CompareOp
from vecstore.cluster.schema import HnswConfig, StorageDtype

BATCH = 1_000


class ShardPeer:
    """One `Shard` (f32, cosine), everything sealed into memory-mapped segments before searching."""

    param_name = "ef"
    params = HNSW_EFS
    filtering = "payload filter: exact scoring of the matches when few, else HNSW over-fetch"
    notes = (
        f"vecstore shard f32, connectivity {CONNECTIVITY}, expansion_add {EXPANSION_ADD}; "
        f"expansion_search {SEARCH_FLOOR} (a floor under ef; the default is 64)"
    )

    def __init__(self) -> None:
        self.engine: ShardEngine | None = None
        self.folder: Path | None = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """Upsert batches of 1,000 with a `bucket` payload, wait for the indexer, seal."""
        self.folder = scratch / "shard"
        hnsw = HnswConfig(CONNECTIVITY, EXPANSION_ADD, expansion_search=SEARCH_FLOOR)
        self.engine = ShardEngine(self.folder, workload.dim, StorageDtype.F32, hnsw)
        shard = self.engine.shard
        started = time.perf_counter()
        for start in range(0, workload.rows, BATCH):
            stop = min(start + BATCH, workload.rows)
            payloads = [{"bucket": int(b)} for b in workload.buckets[start:stop]]
            shard.apply(Upsert.build(COLLECTION, range(start, stop), workload.base[start:stop], payloads))
        applied = time.perf_counter() - started
        if not shard.wait_indexed(timeout=max(600.0, workload.rows / 50)):
            raise RuntimeError(f"the shard did not index {workload.rows:,} rows in time")
        shard.maintain(force=True)
        return BuildTiming(applied, time.perf_counter() - started)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """`Shard.search` without payloads."""
        assert self.engine is not None
        condition = None if bucket_below is None else Compare("bucket", CompareOp.LT, bucket_below)
        found = self.engine.shard.search(COLLECTION, queries, k, condition, ef=param, with_payload=False)
        keys = np.full((len(found), k), -1, dtype=np.int64)
        for row, hits in enumerate(found):
            keys[row, : len(hits)] = [int(hit.id) for hit in hits[:k]]
        return keys

    def disk_bytes(self) -> int:
        """Segments, payloads and vectors under the shard's data folder."""
        return directory_bytes(self.folder) if self.folder else 0

    def close(self) -> None:
        """Stop the indexer and drop the maps."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
