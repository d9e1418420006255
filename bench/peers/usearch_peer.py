"""Raw usearch in process: the library the shard is built on, with nothing around it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.dataset import FloatMatrix, IntArray
from bench.engines import UsearchEngine
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, BuildTiming
from bench.workload import Workload
from vecstore.cluster.schema import HnswConfig, StorageDtype


class UsearchPeer:
    """An in-memory usearch index (f32, cosine), as an application would use it directly."""

    param_name = "expansion_search"
    params = HNSW_EFS
    filtering = None  # usearch's Python API has no filtered search
    notes = f"usearch HNSW f32, connectivity {CONNECTIVITY}, expansion_add {EXPANSION_ADD}"

    def __init__(self) -> None:
        self.engine: UsearchEngine | None = None
        self.saved: Path | None = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """One `add` of every row on all cores."""
        hnsw = HnswConfig(connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD)
        started = time.perf_counter()
        self.engine = UsearchEngine(workload.dim, StorageDtype.F32, hnsw)
        self.engine.insert(np.ascontiguousarray(workload.base))
        elapsed = time.perf_counter() - started
        self.saved = scratch / "usearch.index"
        self.engine.save(self.saved)
        return BuildTiming(elapsed, elapsed)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """One usearch call for the batch."""
        assert self.engine is not None and bucket_below is None
        if self.engine.index.expansion_search != param:
            self.engine.set_ef(param, k)
        found = self.engine.index.search(queries, k)
        keys = np.full((len(queries), k), -1, dtype=np.int64)
        if len(queries) == 1:  # usearch answers a one-row batch with a single Matches
            row = np.asarray(found.keys, dtype=np.int64).reshape(-1)[:k]
            keys[0, : len(row)] = row
            return keys
        return UsearchEngine.keys_of_batch(found, k)

    def disk_bytes(self) -> int:
        """The saved index file."""
        return self.saved.stat().st_size if self.saved else 0

    def close(self) -> None:
        """Drop the index."""
        self.engine = None
