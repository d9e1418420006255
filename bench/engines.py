"""The two engines under test behind one small surface: raw usearch and the in-process shard.

Each engine inserts the same rows (row number = key = point id), searches with a given
expansion, and turns its native results into a key matrix for recall. Timing is the
caller's business; conversions to key matrices stay outside the timed calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

from bench.dataset import FloatMatrix, IntArray
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema, HnswConfig, Metric, StorageDtype
from vecstore.node.indexer import start_indexer
from vecstore.shard.records import ScoredPoint
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard

COLLECTION = "bench"
Progress = Callable[[int], None]


@dataclass(frozen=True)
class InsertTiming:
    """Seconds spent making rows searchable, by phase."""

    apply_s: float
    """Building and applying commands (usearch: 0, it has no such phase)."""
    indexed_s: float
    """From the first row until every row is in an HNSW graph (includes apply)."""
    cpu_s: float
    """CPU seconds of the whole process (all threads) until indexed: steadier than wall time
    on a shared machine."""
    seal_s: float = 0.0
    """Shard only: sealing and compacting everything into memory-mapped segments afterwards."""


class UsearchEngine:
    """A plain in-memory usearch index, as an application would use it directly."""

    def __init__(self, dim: int, dtype: StorageDtype, hnsw: HnswConfig, threads: int = 0) -> None:
        self.hnsw = hnsw
        self.threads = threads
        self.index = Index(
            ndim=dim,
            metric="cos",
            dtype=dtype.value,
            connectivity=hnsw.connectivity,
            expansion_add=hnsw.expansion_add,
            expansion_search=hnsw.expansion_search,
        )

    def insert(self, vectors: FloatMatrix) -> InsertTiming:
        """Add all rows in one call (usearch spreads it over `threads`, 0 = all cores)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        self.index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=self.threads)
        return InsertTiming(0.0, time.perf_counter() - started, time.process_time() - cpu_started)

    def set_ef(self, ef: int | None, k: int) -> int:
        """Use beam width `ef` (None: the configured default); returns the effective beam."""
        # usearch declares this setter apart from its getter, which mypy reads as read-only
        self.index.expansion_search = ef or self.hnsw.expansion_search  # type: ignore[misc]
        return max(k, int(self.index.expansion_search))

    def search_batch(self, queries: FloatMatrix, k: int) -> Any:
        """All queries in one call (all cores)."""
        return self.index.search(queries, k)

    def search_one(self, query: FloatMatrix, k: int) -> Any:
        """One query (a 1-D vector)."""
        return self.index.search(query, k)

    @staticmethod
    def keys_of_batch(found: Any, k: int) -> IntArray:
        """Key matrix, -1 where fewer than k were found."""
        return _padded(np.asarray(found.keys, dtype=np.int64), np.asarray(found.counts), k)

    @staticmethod
    def keys_of_single(found: list[Any], k: int) -> IntArray:
        """Key matrix of a list of single-query results."""
        keys = np.full((len(found), k), -1, dtype=np.int64)
        for row, matches in enumerate(found):
            row_keys = np.asarray(matches.keys, dtype=np.int64)[:k]
            keys[row, : len(row_keys)] = row_keys
        return keys

    def save(self, path: Path) -> None:
        """Write the index file (the memory child loads it back into memory)."""
        self.index.save(str(path))


class ShardEngine:
    """The shard core driven through its public API: apply commands, search, maintain."""

    def __init__(self, data_dir: Path, dim: int, dtype: StorageDtype, hnsw: HnswConfig) -> None:
        self.shard = Shard(ShardSettings(data_dir=data_dir))
        self.indexer = start_indexer(self.shard)  # as in a node
        self.schema = CollectionSchema(COLLECTION, dim, Metric.COSINE, dtype, hnsw)
        self.shard.apply(CreateCollection(self.schema))
        self.ef: int | None = None

    def insert(
        self, vectors: FloatMatrix, labels: IntArray, batch: int, progress: Progress | None = None
    ) -> InsertTiming:
        """Upsert in batches with small payloads, wait until indexed, then seal everything."""
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, len(vectors), batch):
            stop = min(start + batch, len(vectors))
            payloads = [{"cluster": int(labels[row]), "row": row} for row in range(start, stop)]
            self.shard.apply(Upsert.build(COLLECTION, range(start, stop), vectors[start:stop], payloads))
            if progress is not None:
                progress(stop - start)
        applied = time.perf_counter()
        if not self.shard.wait_indexed(timeout=max(600.0, len(vectors) / 50)):
            raise RuntimeError(f"shard did not index {len(vectors)} rows in time: {self.shard.status()}")
        indexed, cpu_indexed = time.perf_counter(), time.process_time()
        self.shard.maintain(force=True)
        sealed = time.perf_counter()
        return InsertTiming(applied - started, indexed - started, cpu_indexed - cpu_started, sealed - indexed)

    def layout(self) -> dict[str, Any]:
        """The collection's storage counts (segments, memtable rows, lag)."""
        stats: dict[str, Any] = self.shard.status()["collections"][COLLECTION]
        return stats

    def set_ef(self, ef: int | None, k: int) -> int:
        """Pass `ef` to every search; returns the beam usearch will actually use.

        The shard asks each segment for count = max(k, ef) candidates (k x rescore_factor
        for f16/i8) and usearch widens its beam to max(count, expansion_search), so an ef
        below the index's expansion_search does not narrow the search.
        """
        self.ef = ef
        rescore = self.schema.dtype is not StorageDtype.F32
        want = k * self.shard.settings.rescore_factor if rescore else k
        return max(want, ef or 0, self.schema.hnsw.expansion_search)

    def search_batch(self, queries: FloatMatrix, k: int) -> list[list[ScoredPoint]]:
        """All queries in one call, without payloads (usearch returns none either)."""
        return self.shard.search(COLLECTION, queries, k, ef=self.ef, with_payload=False)

    def search_one(self, query: FloatMatrix, k: int) -> list[list[ScoredPoint]]:
        """One query (a 1-D vector, sent as a one-row batch)."""
        return self.shard.search(COLLECTION, query[None, :], k, ef=self.ef, with_payload=False)

    @staticmethod
    def keys_of_batch(found: list[list[ScoredPoint]], k: int) -> IntArray:
        """Point ids (= row numbers) as a key matrix, -1 where fewer than k came back."""
        keys = np.full((len(found), k), -1, dtype=np.int64)
        for row, hits in enumerate(found):
            ids = [int(hit.id) for hit in hits[:k]]
            keys[row, : len(ids)] = ids
        return keys

    @classmethod
    def keys_of_single(cls, found: list[list[list[ScoredPoint]]], k: int) -> IntArray:
        """Key matrix of a list of single-query results."""
        return cls.keys_of_batch([hits[0] for hits in found], k)

    def snapshot(self, path: Path) -> None:
        """Write a snapshot directory (sealed segments are hard-linked)."""
        self.shard.snapshot(path)

    def close(self) -> None:
        """Stop the indexer and drop the maps."""
        self.indexer.stop()
        self.shard.close()


def _padded(keys: IntArray, counts: Any, k: int) -> IntArray:
    keys = keys.reshape(len(keys), -1)[:, :k].copy()
    counts = np.asarray(counts).reshape(-1)
    mask = np.arange(keys.shape[1])[None, :] >= counts[:, None]
    keys[mask] = -1
    return keys
