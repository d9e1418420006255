"""A compaction run rewritten as one sealed segment, its graph built a chunk at a time.

Two costs used to make compaction the bottleneck of sustained ingest (docs/benchmarks.md,
"Scale"): merging neighbouring segments rebuilt the merged HNSW graph from scratch, so a
segment growing by merges to a million rows had its rows re-inserted once per merge (about
five times the indexing work of the writes themselves at 100,000-row seals); and the
rebuild ran as one step of the indexer thread, so the memtable's fresh rows waited for it
and the leader's backpressure refused writes for minutes.

Here the merged graph starts as a copy of the largest segment's graph whose rows are all
still live (loaded from its file), and only the other rows are inserted: a merge costs the
smaller side. The inserts happen `step` by `step`, so the indexer can index fresh rows
between two chunks. A merge is physical only: what a search finds does not change, and the
collection swaps the new segment in under its write lock as before.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from usearch.index import Index

from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.memtable import FloatMatrix, KeyArray, new_index
from vecstore.shard.segment import INDEX_FILE, PackedPayloads, Payload, SealedSegment


@dataclass
class MergeRows:
    """The live rows of a run, in key order, as captured when the merge was planned."""

    keys: KeyArray
    ids: list[PointId]
    vectors: FloatMatrix
    payloads: PackedPayloads
    captured: dict[int, Payload] = field(default_factory=dict)
    """Payload overrides folded into the new segment (dropped from the overrides at the swap
    if no newer one replaced them meanwhile)."""
    dropped: list[int] = field(default_factory=list)
    """Tombstoned keys left out (no longer stored anywhere once the swap is done)."""
    spans: list[tuple[int, int, bool]] = field(default_factory=list)
    """Per segment of the run: its rows' [start, stop) in the arrays above, and whether all
    of its rows were live (its graph can then be reused as it is)."""


class Merge:
    """One run of sealed segments being merged; `step` until False, then `write` it out."""

    def __init__(self, schema: CollectionSchema, run: Sequence[SealedSegment], rows: MergeRows) -> None:
        self.schema = schema
        self.run = list(run)
        self.rows = rows
        self.index: Index | None = None
        self.reused_rows = 0
        self._base: Path | None = None
        """The reused graph's file, loaded by the first step (a follower may adopt instead)."""
        pending = np.arange(len(rows.keys), dtype=np.int64)
        if not schema.named and len(rows.keys):  # the rows of named vectors have no graph
            self.index = new_index(schema)  # the schema's expansion settings; load keeps them
            base = _reusable(self.run, rows.spans)
            if base is not None:
                start, stop, _ = rows.spans[base]
                self._base = self.run[base].path / INDEX_FILE
                self.reused_rows = stop - start
                pending = np.concatenate([pending[:start], pending[stop:]])
        self.pending = pending if self.index is not None else pending[:0]
        self.done = 0
        self.planned_at = time.monotonic()
        self.next_ask = 0.0
        """When a follower may next ask its leader for the merged graph (monotonic)."""
        self.local = False
        """Build the merged graph here (this node leads, or the leader's did not come)."""

    def adopt(self, index: Index) -> None:
        """Take the merged graph another replica built (checked by the caller): nothing
        is left to insert."""
        self.index = index
        self._base = None
        self.pending = self.pending[:0]
        self.done = 0

    def graph(self) -> Index | None:
        """The merged graph, its reused part loaded (the index to write out when done)."""
        if self._base is not None and self.index is not None:
            self.index.load(str(self._base))
            self._base = None
        return self.index

    @property
    def remaining(self) -> int:
        """Rows still to insert into the merged graph."""
        return len(self.pending) - self.done

    def step(self, chunk: int) -> bool:
        """Insert up to `chunk` rows into the merged graph; True while rows remain."""
        index = self.graph()
        if index is not None and self.remaining:
            rows = self.pending[self.done : self.done + chunk]
            index.add(
                np.asarray(self.rows.keys[rows], np.uint64),
                np.asarray(self.rows.vectors[rows], np.float32),
                threads=0,
            )
            self.done += len(rows)
        return self.remaining > 0


def _reusable(run: Sequence[SealedSegment], spans: Sequence[tuple[int, int, bool]]) -> int | None:
    """The run's largest segment with every row live and a graph on disk, if any."""
    best: int | None = None
    for position, (start, stop, all_live) in enumerate(spans):
        segment = run[position]
        if not all_live or stop == start or not (segment.path / INDEX_FILE).exists():
            continue
        if best is None or stop - start > spans[best][1] - spans[best][0]:
            best = position
    return best
