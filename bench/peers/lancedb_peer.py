"""LanceDB embedded: a Lance table on local disk, an IVF_HNSW_FLAT vector index, a BTree on `bucket`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from bench.dataset import FloatMatrix, IntArray
from bench.footprint import directory_bytes
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, BuildTiming
from bench.workload import Workload

TABLE = "bench"
BATCH = 10_000


class LancePeer:
    """IVF_HNSW_FLAT with one partition (one HNSW graph, full-precision vectors), cosine."""

    param_name = "ef"
    params = HNSW_EFS
    filtering = 'search().where("bucket < ...", prefilter=True) with a BTree scalar index'
    notes = (
        f"lancedb IVF_HNSW_FLAT, 1 partition (so ef alone tunes it, as for the HNSW systems), "
        f"m {CONNECTIVITY}, ef_construction {EXPANSION_ADD}, cosine; BTree index on bucket"
    )

    def __init__(self) -> None:
        self.table: Any = None
        self.folder: Path | None = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """Create the table from the first batch, add the rest, then build both indexes."""
        self.folder = scratch / "lancedb"
        database = lancedb.connect(str(self.folder))
        started = time.perf_counter()
        for start in range(0, workload.rows, BATCH):
            stop = min(start + BATCH, workload.rows)
            vectors = np.ascontiguousarray(workload.base[start:stop]).reshape(-1)
            batch = pa.table(
                {
                    "id": pa.array(np.arange(start, stop, dtype=np.int64)),
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors), workload.dim),
                    "bucket": pa.array(np.asarray(workload.buckets[start:stop])),
                }
            )
            if self.table is None:
                self.table = database.create_table(TABLE, data=batch)
            else:
                self.table.add(batch)
        inserted = time.perf_counter() - started
        self.table.create_index(
            metric="cosine",
            vector_column_name="vector",
            index_type="IVF_HNSW_FLAT",
            num_partitions=1,
            m=CONNECTIVITY,
            ef_construction=EXPANSION_ADD,
        )
        self.table.create_scalar_index("bucket")
        return BuildTiming(inserted, time.perf_counter() - started)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """One `search` per query row, the id column only."""
        keys = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            builder = self.table.search(query).limit(k).nprobes(1).ef(max(param, k))
            # asking for `_distance` too keeps lance from warning on every query that it adds it
            builder = builder.select(["id", "_distance"])
            if bucket_below is not None:
                builder = builder.where(f"bucket < {bucket_below}", prefilter=True)
            ids = builder.to_arrow()["id"].to_pylist()
            keys[row, : len(ids)] = ids[:k]
        return keys

    def disk_bytes(self) -> int:
        """The Lance dataset folder (data, versions, indexes)."""
        return directory_bytes(self.folder) if self.folder else 0

    def close(self) -> None:
        """Drop the table handle."""
        self.table = None
