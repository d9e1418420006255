"""The mutable segment: recent points in memory, plus the HNSW graph the indexer grows.

Rows are appended by apply in key order (keys are contiguous from `key_lo`), and the
background indexer moves rows [indexed, count) into its graph. Once frozen, a memtable
never changes.

Searches never wait for the indexer. usearch serialises every call on one index, so a
search of the graph being built would wait for a whole add (for seconds, behind a
low-priority thread, when a segment is sealed). Searches therefore read a *published*
graph (`GraphView`): rows [0, view.rows) in an index the indexer no longer touches. Rows
past `view.rows` are scored exactly by the search (the tail). The indexer publishes:

- a copy of its graph every `PUBLISH_EVERY_ROWS` rows it adds. A copy holds the GIL (about
  40 ms at 60,000 x 384 on an idle core, stalling the node's other threads), so copies are
  rare and the exact tail small (at most that many rows, plus the unindexed backlog that
  backpressure bounds);
- its graph itself, without a copy, once it is frozen (fully indexed before sealing: no
  more rows can come) or has had nothing to add for `SHARE_AFTER_IDLE_SECONDS`; its next
  add then copies it first (copy on write), and searches keep the graph they have.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from usearch.index import Index

from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.shard.graphs import adopt_index

Payload = dict[str, Any]
FloatMatrix = npt.NDArray[np.float32]
KeyArray = npt.NDArray[np.uint64]

USEARCH_METRIC = {Metric.COSINE: "cos", Metric.L2: "l2sq", Metric.DOT: "ip"}

SHARE_AFTER_IDLE_SECONDS = 5.0
"""An indexer idle this long publishes its graph itself (no copy; the next add copies it)."""
PUBLISH_EVERY_ROWS = 4_096
"""The indexer publishes a copy of its graph every this many rows. A copy costs about 1 us a
row and indexing about 0.5-1 ms: at 100,000 rows, one copy per 4,096 rows adds 2-5%; the
exact tail it leaves costs a search about 0.5 ms at 384-d."""


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


@dataclass(frozen=True)
class GraphView:
    """A graph searches may read: rows [0, rows) of its memtable, never added to again."""

    index: Index
    rows: int


class MemTable:
    """Recent points of one collection, kept in memory until sealed."""

    def __init__(self, schema: CollectionSchema, key_lo: int) -> None:
        self.schema = schema
        self.key_lo = key_lo
        self.count = 0
        self.indexed = 0
        """Rows in the indexer's graph (rows past it are the unindexed write buffer)."""
        self.dead = 0
        self.frozen = False
        self.ext_ids: list[PointId] = []
        self.payloads: list[Payload] = []
        self.edits = 0
        """Payloads replaced in place so far (the payload index re-reads rows edited after it)."""
        self.edited: dict[int, int] = {}
        """Row -> the edit count at its latest in-place payload change."""
        self._vectors: FloatMatrix = np.zeros((64, schema.dimension), dtype=np.float32)
        self._norms: FloatMatrix = np.zeros(64, dtype=np.float32)
        """Per row: the euclidean norm (cosine) or its square (l2) of the vector; for the tail scan."""
        self.index = new_index(schema)
        """The indexer's graph: only `index_step` adds to it, and seal writes it out."""
        self._view = GraphView(self.index, 0)
        self._index_lock = threading.Lock()
        """Held by indexing callers only (the indexer thread, seal, tests); never by searches."""
        self._idle_since: float | None = None
        self.local_graph = False
        """Build this memtable's graph here even on a follower (`vecstore.shard.graphs`)."""
        self.next_ask = 0.0
        """When a follower may next ask its leader for this memtable's graph (monotonic)."""
        self.build_until = 0.0
        """Until then a follower builds this graph itself (no source answered)."""

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
            rows = max(needed, 2 * self._vectors.shape[0])
            grown = np.zeros((rows, self.schema.dimension), np.float32)
            grown[: self.count] = self._vectors[: self.count]
            self._vectors = grown
            norms = np.zeros(rows, np.float32)
            norms[: self.count] = self._norms[: self.count]
            self._norms = norms
        self._vectors[self.count : needed] = vectors
        self._norms[self.count : needed] = row_norms(self._vectors[self.count : needed], self.schema.metric)
        self.ext_ids.extend(ext_ids)
        self.payloads.extend(payloads)
        self.count = needed

    def vectors(self, start: int = 0, stop: int | None = None) -> FloatMatrix:
        """Rows [start, stop) of the full-precision vectors (a view)."""
        return self._vectors[start : self.count if stop is None else stop]

    def norms(self, start: int = 0, stop: int | None = None) -> FloatMatrix:
        """`row_norms` of rows [start, stop) (a view), computed once at append."""
        return self._norms[start : self.count if stop is None else stop]

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

    @property
    def searchable(self) -> int:
        """Rows in the published graph; searches score rows past it exactly."""
        return self._view.rows

    def index_step(self, limit: int, threads: int = 1) -> int:
        """Add up to `limit` unindexed rows to the indexer's graph; returns how many were added.

        Searches meanwhile read the published graph; see the module docstring for when this
        step publishes a new one.
        """
        with self._index_lock:
            start = self.indexed
            stop = min(self.count, start + limit)
            if stop <= start:
                self._settle()
                return 0
            self._idle_since = None
            if self.schema.named:  # the rows of a collection of named vectors hold no vector
                self.indexed = stop
                return stop - start
            if self.index is self._view.index:  # published: searches may be reading it
                self.index = self.index.copy()
            self.index.add(self.keys(start, stop), self.vectors(start, stop), threads=threads)
            self.indexed = stop
            if stop - self._view.rows >= PUBLISH_EVERY_ROWS:
                self._view = GraphView(self.index.copy(), stop)
        return stop - start

    def published(self) -> GraphView:
        """The graph searches read now (never added to again; what a leader ships)."""
        return self._view

    def adopt(self, rows: int, data: bytes | bytearray | Path) -> int:
        """Take a graph of rows [0, rows) built by another replica (`graphs.adopt_index`
        checks it; GraphMismatch if it is not this memtable's); returns the rows it adds
        beyond the graph held (0 if it adds none)."""
        with self._index_lock:
            if rows <= self.indexed or rows > self.count:
                return 0
            index = adopt_index(data, self.keys(0, rows), self._vectors[:rows], self.schema)
            added = rows - self.indexed
            self.index = index
            self.indexed = rows
            self._view = GraphView(index, rows)  # published itself: the next add copies it
            self._idle_since = None
        return added

    def _settle(self) -> None:
        """Nothing to add: publish the graph itself (no copy) when no more rows can come
        (frozen) or after a quiet while."""
        if self._view.index is self.index and self._view.rows == self.indexed:
            return
        now = time.monotonic()
        idle = self._idle_since is not None and now - self._idle_since >= SHARE_AFTER_IDLE_SECONDS
        if idle or self.frozen:
            self._view = GraphView(self.index, self.indexed)
        elif self._idle_since is None:
            self._idle_since = now

    def search(self, queries: FloatMatrix, count: int) -> tuple[KeyArray, FloatMatrix]:
        """HNSW search of the published rows: keys and distances, shape (queries, <=count)."""
        view = self._view
        if view.rows == 0:
            empty = (queries.shape[0], 0)
            return np.zeros(empty, np.uint64), np.zeros(empty, np.float32)
        found = view.index.search(queries, count, threads=search_threads(queries))
        return _batch_arrays(found, queries.shape[0])


def row_norms(vectors: FloatMatrix, metric: Metric) -> FloatMatrix:
    """What the exact tail scan needs per row: |v| for cosine, |v|^2 for l2 (0 for dot)."""
    if metric is Metric.DOT:
        return np.zeros(len(vectors), np.float32)
    squares = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float32)
    return np.asarray(np.sqrt(squares) if metric is Metric.COSINE else squares, dtype=np.float32)


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
