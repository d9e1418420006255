"""faiss-cpu in process: IndexHNSWFlat over unit vectors with inner product (= cosine)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench.dataset import FloatMatrix, IntArray
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, BuildTiming
from bench.workload import SELECTIVITIES, Workload


def unit(vectors: FloatMatrix) -> FloatMatrix:
    """Rows scaled to length 1 (faiss has no cosine metric of its own)."""
    matrix = np.array(vectors, dtype=np.float32)
    faiss.normalize_L2(matrix)
    return matrix


class FaissPeer:
    """`faiss.IndexHNSWFlat(d, 16, METRIC_INNER_PRODUCT)`, efConstruction 128."""

    param_name = "efSearch"
    params = HNSW_EFS
    filtering = "SearchParametersHNSW(sel=IDSelectorBitmap): a bitmap checked inside the graph search"
    notes = (
        f"faiss IndexHNSWFlat, M {CONNECTIVITY}, efConstruction {EXPANSION_ADD}, "
        "inner product of unit vectors"
    )

    def __init__(self) -> None:
        self.index: Any = None
        self.selectors: dict[int, Any] = {}
        self.saved: Path | None = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """Normalise, then one `add` (OpenMP over all cores)."""
        started = time.perf_counter()
        self.index = faiss.IndexHNSWFlat(workload.dim, CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EXPANSION_ADD
        self.index.add(unit(workload.base))
        elapsed = time.perf_counter() - started
        for selectivity in SELECTIVITIES:
            bits = np.packbits(np.asarray(workload.buckets) < selectivity, bitorder="little")
            self.selectors[selectivity] = (faiss.IDSelectorBitmap(workload.rows, faiss.swig_ptr(bits)), bits)
        self.saved = scratch / "faiss.index"
        faiss.write_index(self.index, str(self.saved))
        # queries come one at a time from many threads: OpenMP teams per call only add overhead
        faiss.omp_set_num_threads(1)
        return BuildTiming(elapsed, elapsed)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """`search` with per-call parameters (thread-safe: no index-wide state changes)."""
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined,unused-ignore]  # SWIG; faiss may be absent
        params.efSearch = param
        if bucket_below is not None:
            params.sel = self.selectors[bucket_below][0]
        _, labels = self.index.search(unit(queries), k, params=params)
        return np.asarray(labels, dtype=np.int64)

    def disk_bytes(self) -> int:
        """The saved index file."""
        return self.saved.stat().st_size if self.saved else 0

    def close(self) -> None:
        """Drop the index."""
        self.index = None
        self.selectors.clear()
