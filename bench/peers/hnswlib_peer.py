"""hnswlib in process: the reference HNSW implementation (Chroma's index is a fork of it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from bench.dataset import FloatMatrix, IntArray
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, BuildTiming
from bench.workload import Workload


class HnswlibPeer:
    """`hnswlib.Index(space="cosine")`, M 16, ef_construction 128."""

    param_name = "ef"
    params = HNSW_EFS
    filtering = "knn_query(filter=callable): a Python predicate per visited label"
    notes = f"hnswlib HNSW, M {CONNECTIVITY}, ef_construction {EXPANSION_ADD}"

    def __init__(self) -> None:
        self.index: Any = None
        self.ef = 0
        self.buckets: Any = None
        self.saved: Path | None = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """`add_items` of every row on all cores."""
        started = time.perf_counter()
        self.index = hnswlib.Index(space="cosine", dim=workload.dim)
        self.index.init_index(max_elements=workload.rows, ef_construction=EXPANSION_ADD, M=CONNECTIVITY)
        self.index.add_items(np.ascontiguousarray(workload.base), np.arange(workload.rows), num_threads=-1)
        elapsed = time.perf_counter() - started
        self.buckets = np.asarray(workload.buckets)
        self.saved = scratch / "hnswlib.bin"
        self.index.save_index(str(self.saved))
        return BuildTiming(elapsed, elapsed)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """`knn_query` on one thread (concurrency comes from the callers' threads)."""
        if param != self.ef:
            self.index.set_ef(param)
            self.ef = param
        predicate = None
        if bucket_below is not None:
            buckets = self.buckets

            def predicate(label: int) -> bool:
                return bool(buckets[label] < bucket_below)

        labels, _ = self.index.knn_query(queries, k=k, num_threads=1, filter=predicate)
        return np.asarray(labels, dtype=np.int64)

    def disk_bytes(self) -> int:
        """The saved index file."""
        return self.saved.stat().st_size if self.saved else 0

    def close(self) -> None:
        """Drop the index."""
        self.index = None
