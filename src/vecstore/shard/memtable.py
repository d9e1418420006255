"""The mutable segment: recent points in memory, plus the HNSW index the indexer grows.

Rows are appended by apply in key order (keys are contiguous from `key_lo`), and the
background indexer moves rows [indexed, count) into `index`. Rows past `indexed` are
the write buffer that searches score exactly. Once frozen, a memtable never changes.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
from usearch.index import Index

from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema, Metric

Payload = dict[str, Any]
FloatMatrix = npt.NDArray[np.float32]
KeyArray = npt.NDArray[np.uint64]

USEARCH_METRIC = {Metric.COSINE: "cos", Metric.L2: "l2sq", Metric.DOT: "ip"}


def new_index(schema: CollectionSchema) -> Index:
    """An empty in-memory usearch index for a collection's schema."""
    return Index(
        ndim=schema.dimension,
        metric=USEARCH_METRIC[schema.metric],
        dtype=schema.dtype.value,
        connectivity=schema.hnsw.connectivity,
        expansion_add=schema.hnsw.expansion_add,
        expansion_search=schema.hnsw.expansion_search,
    )


class MemTable:
    """Recent points of one collection, kept in memory until sealed."""

    def __init__(self, schema: CollectionSchema, key_lo: int) -> None:
        self.schema = schema
        self.key_lo = key_lo
        self.count = 0
        self.indexed = 0
        self.dead = 0
        self.frozen = False
        self.ext_ids: list[PointId] = []
        self.payloads: list[Payload] = []
        self.edits = 0
        """Payloads replaced in place so far (the payload index re-reads rows edited after it)."""
        self.edited: dict[int, int] = {}
        """Row -> the edit count at its latest in-place payload change."""
        self._vectors: FloatMatrix = np.zeros((64, schema.dimension), dtype=np.float32)
        self.index = new_index(schema)
        self.index_lock = threading.Lock()

    @property
    def key_hi(self) -> int:
        """One past the last key held."""
        return self.key_lo + self.count

    def contains(self, key: int) -> bool:
        """True if `key` is one of this memtable's rows."""
        return self.key_lo <= key < self.key_lo + self.count

    def append(self, ext_ids: list[PointId], vectors: FloatMatrix, payloads: list[Payload]) -> None:
        """Append rows; their keys are key_hi, key_hi + 1, ... (called under the write lock)."""
        assert not self.frozen, "a frozen memtable never changes"
        needed = self.count + len(ext_ids)
        if needed > self._vectors.shape[0]:
            grown = np.zeros((max(needed, 2 * self._vectors.shape[0]), self.schema.dimension), np.float32)
            grown[: self.count] = self._vectors[: self.count]
            self._vectors = grown
        self._vectors[self.count : needed] = vectors
        self.ext_ids.extend(ext_ids)
        self.payloads.extend(payloads)
        self.count = needed

    def vectors(self, start: int = 0, stop: int | None = None) -> FloatMatrix:
        """Rows [start, stop) of the full-precision vectors (a view)."""
        return self._vectors[start : self.count if stop is None else stop]

    def vectors_of(self, keys: KeyArray) -> FloatMatrix:
        """Full-precision vectors of the given keys."""
        return self._vectors[keys.astype(np.int64) - self.key_lo]

    def keys(self, start: int = 0, stop: int | None = None) -> KeyArray:
        """Keys of rows [start, stop)."""
        stop = self.count if stop is None else stop
        return np.arange(self.key_lo + start, self.key_lo + stop, dtype=np.uint64)

    def ext_id(self, key: int) -> PointId:
        """External id of a row."""
        return self.ext_ids[key - self.key_lo]

    def payload(self, key: int) -> Payload:
        """Payload of a row as stored here (overrides are the collection's business)."""
        return self.payloads[key - self.key_lo]

    def replace_payload(self, key: int, payload: Payload) -> None:
        """Replace a row's payload (called under the write lock, active memtable only)."""
        assert not self.frozen, "a frozen memtable never changes"
        row = key - self.key_lo
        self.payloads[row] = payload
        self.edits += 1
        self.edited[row] = self.edits

    def index_step(self, limit: int, threads: int = 1) -> int:
        """Add up to `limit` unindexed rows to the HNSW index; returns how many were added."""
        with self.index_lock:
            start = self.indexed
            stop = min(self.count, start + limit)
            if stop <= start:
                return 0
            self.index.add(self.keys(start, stop), self.vectors(start, stop), threads=threads)
            self.indexed = stop  # advanced only after the add, so searches never miss a row
        return stop - start

    def search(self, queries: FloatMatrix, count: int) -> tuple[KeyArray, FloatMatrix]:
        """HNSW search of the indexed rows: keys and distances, shape (queries, <=count)."""
        with self.index_lock:
            if len(self.index) == 0:
                empty = (queries.shape[0], 0)
                return np.zeros(empty, np.uint64), np.zeros(empty, np.float32)
            found = self.index.search(queries, count, threads=search_threads(queries))
        return _batch_arrays(found, queries.shape[0])


def search_threads(queries: FloatMatrix) -> int:
    """usearch threads for a search: one for a single query (usearch's default, all cores,
    asks the OS how many there are on every call: three syscalls), else all cores."""
    return 1 if queries.shape[0] == 1 else 0


def _batch_arrays(found: Any, rows: int) -> tuple[KeyArray, FloatMatrix]:
    keys = np.asarray(found.keys, dtype=np.uint64).reshape(rows, -1)
    distances = np.asarray(found.distances, dtype=np.float32).reshape(rows, -1)
    counts = np.asarray(found.counts).reshape(rows) if hasattr(found, "counts") else None
    if counts is not None and keys.shape[1] and (counts < keys.shape[1]).any():
        # unused slots are padded by usearch; mark them so callers drop them
        mask = np.arange(keys.shape[1])[None, :] >= counts[:, None]
        keys = keys.copy()
        distances = distances.copy()
        keys[mask] = NO_KEY
        distances[mask] = np.inf
    return keys, distances


NO_KEY = np.uint64(2**64 - 1)
