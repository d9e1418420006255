"""qdrant-client's local mode: Qdrant's Python API with no server, in this process.

Local mode has no HNSW index: every search scores all points with numpy and evaluates
filters in Python, so `hnsw_ef` is accepted and ignored and recall is always 1.0. The
comparison keeps the data in memory (`:memory:`): with `path=` local mode commits every
point to SQLite on its own (about 100 points/s here), so only a sample is timed that way.
Local mode is not safe for concurrent use: with 16 threads it returned wrong neighbours
(recall 0.295 on the synthetic set) and later filtered searches of the same client came back
nearly empty, so the adapter runs one call at a time (16 clients wait for each other).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from bench.dataset import FloatMatrix, IntArray
from bench.footprint import directory_bytes
from bench.peers import CONNECTIVITY, EXPANSION_ADD, BuildTiming
from bench.workload import Workload

COLLECTION = "bench"
BATCH = 1_000
PATH_SAMPLE = 1_000
"""Rows upserted into a `path=` client to time persistent ingest (and size its folder)."""


class QdrantPeer:
    """`QdrantClient(":memory:")`, cosine; the HNSW settings are passed but local mode ignores them."""

    param_name = "hnsw_ef"
    params = (64,)
    filtering = "query_filter=Filter(must=[FieldCondition(range=Range(lt=...))]), evaluated in Python"
    notes = (
        "qdrant-client local mode (:memory:): exact numpy scan, no index; hnsw_ef is ignored; "
        "calls serialized (local mode is not thread-safe)"
    )

    def __init__(self) -> None:
        self.client: Any = None
        self.sample_bytes_per_row = 0.0
        self.lock = threading.Lock()

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """Upsert batches of 1,000 with a `bucket` payload (after timing a `path=` sample)."""
        folder = scratch / "qdrant"
        sample = min(PATH_SAMPLE, workload.rows)
        persistent = QdrantClient(path=str(folder))
        started = time.perf_counter()
        self._load(persistent, workload, sample)
        rate = sample / (time.perf_counter() - started)
        persistent.close()
        self.sample_bytes_per_row = directory_bytes(folder) / sample
        self.notes += (
            f"; with path= it ingested {rate:,.0f} vectors/s ({sample:,}-row sample, one SQLite "
            f"commit per point) and stored {self.sample_bytes_per_row:,.0f} bytes per row"
        )
        self.client = QdrantClient(":memory:")
        started = time.perf_counter()
        self._load(self.client, workload, workload.rows)
        elapsed = time.perf_counter() - started
        return BuildTiming(elapsed, elapsed)

    @staticmethod
    def _load(client: Any, workload: Workload, rows: int) -> None:
        client.create_collection(
            COLLECTION,
            vectors_config=models.VectorParams(size=workload.dim, distance=models.Distance.COSINE),
            hnsw_config=models.HnswConfigDiff(m=CONNECTIVITY, ef_construct=EXPANSION_ADD),
        )
        for start in range(0, rows, BATCH):
            stop = min(start + BATCH, rows)
            batch = models.Batch(
                ids=list(range(start, stop)),
                vectors=np.asarray(workload.base[start:stop]).tolist(),
                payloads=[{"bucket": int(b)} for b in workload.buckets[start:stop]],
            )
            client.upsert(COLLECTION, points=batch, wait=True)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """`query_points`, one call per query row."""
        condition = None
        if bucket_below is not None:
            condition = models.Filter(
                must=[models.FieldCondition(key="bucket", range=models.Range(lt=bucket_below))]
            )
        keys = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            with self.lock:
                points = self.client.query_points(
                    COLLECTION,
                    query=query.tolist(),
                    limit=k,
                    query_filter=condition,
                    search_params=models.SearchParams(hnsw_ef=param),
                    with_payload=False,
                ).points
            keys[row, : len(points)] = [int(point.id) for point in points]
        return keys

    def disk_bytes(self) -> int | None:
        """None: the measured client keeps everything in memory (the notes give path= bytes per row)."""
        return None

    def close(self) -> None:
        """Close the client (releases the folder's lock)."""
        if self.client is not None:
            self.client.close()
            self.client = None
