"""chromadb embedded (`PersistentClient`): Chroma's own HNSW (a fork of hnswlib) with metadata filters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.api.shared_system_client import SharedSystemClient

from bench.dataset import FloatMatrix, IntArray
from bench.footprint import directory_bytes
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, BuildTiming
from bench.workload import Workload

COLLECTION = "bench"


class ChromaPeer:
    """One collection, cosine, max_neighbors 16, ef_construction 128; ef_search changed by `modify`."""

    param_name = "hnsw ef_search"
    params = HNSW_EFS
    filtering = 'query(where={"bucket": {"$lt": ...}}): metadata pre-filter, then HNSW over the allowed ids'
    notes = f"chromadb PersistentClient, HNSW max_neighbors {CONNECTIVITY}, ef_construction {EXPANSION_ADD}"

    def __init__(self) -> None:
        self.client: Any = None
        self.collection: Any = None
        self.ef = 100  # chroma's default ef_search
        self.folder: Path | None = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """`add` in the client's largest batches, ids as strings, `bucket` as metadata."""
        self.folder = scratch / "chroma"
        self.client = chromadb.PersistentClient(path=str(self.folder))
        hnsw = {"space": "cosine", "ef_construction": EXPANSION_ADD, "max_neighbors": CONNECTIVITY}
        self.collection = self.client.create_collection(
            COLLECTION, configuration={"hnsw": hnsw}, embedding_function=None
        )
        batch = min(self.client.get_max_batch_size(), 5_000)
        started = time.perf_counter()
        for start in range(0, workload.rows, batch):
            stop = min(start + batch, workload.rows)
            self.collection.add(
                ids=[str(i) for i in range(start, stop)],
                embeddings=np.ascontiguousarray(workload.base[start:stop]),
                metadatas=[{"bucket": int(b)} for b in workload.buckets[start:stop]],
            )
        elapsed = time.perf_counter() - started
        return BuildTiming(elapsed, elapsed)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """`query` for the rows, ids only."""
        if param != self.ef:
            self._set_ef(param)
        where = None if bucket_below is None else {"bucket": {"$lt": bucket_below}}
        found = self.collection.query(
            query_embeddings=np.ascontiguousarray(queries), n_results=k, where=where, include=[]
        )
        keys = np.full((len(queries), k), -1, dtype=np.int64)
        for row, ids in enumerate(found["ids"]):
            keys[row, : len(ids)] = [int(i) for i in ids[:k]]
        return keys

    def _set_ef(self, ef: int) -> None:
        """`modify` stores the new ef_search, but the loaded index keeps the old one until the
        collection is opened again: drop the client's cached system and reopen it."""
        self.collection.modify(configuration={"hnsw": {"ef_search": ef}})
        self.collection = self.client = None
        SharedSystemClient.clear_system_cache()
        self.client = chromadb.PersistentClient(path=str(self.folder))
        self.collection = self.client.get_collection(COLLECTION)
        self.ef = ef

    def disk_bytes(self) -> int:
        """The persistent folder (SQLite and the HNSW segment files)."""
        return directory_bytes(self.folder) if self.folder else 0

    def close(self) -> None:
        """Drop the client."""
        self.collection = None
        self.client = None
