"""Graphs built once: a follower adopts its leader's HNSW graph of a memtable instead of
building its own.

Every replica applies the same commands in the same order, so a memtable holds the same rows
under the same keys on every replica, and ends at the same key (`Collection._roll_active`
decides it in apply, on a key-aligned boundary). Building HNSW is about 90% of a replica's
CPU under ingest (py-spy profile in docs/ingest.md), and every replica building its own graph
triples it. So a follower asks its leader for the graph the leader has published of the same
memtable (`GraphAsk`), checks it against its own rows (every key, a sample of vectors:
`adopt_index`) and searches it from then on; rows past it are scored exactly, as any
unindexed tail is. The leader answers from what it publishes anyway (`MemTable.published`),
or from the sealed segment's graph file once the memtable is written out.

Merges likewise: replicas with the same cuts seal the same segments and plan the same
merges, so a follower's merge asks for the graph its leader's merge of the same key span
wrote (`GraphAsk.merged`; kept by `keep_for_followers`), waits for it up to
`MERGE_WAIT_SECONDS`, and adopts it after the same checks instead of inserting its rows.

A follower builds the graph itself, as every replica did before, when: this node leads, or no
leader is known or reachable (`Verdict.BUILD`, asked again after `ASK_EVERY_SECONDS`); the
leader has no memtable starting at the same key (layouts diverged, e.g. after a snapshot
install: `Verdict.ABSENT`, for the rest of that memtable); a graph fails the checks; or its
backlog reaches `fallback_rows` (the leader has stopped publishing: indexing lag stays
bounded).

What a replica stores and the digests that prove replicas equal are untouched: a graph is
derived data, and an adopted graph holds exactly the keys, and (checked on a sample) the
vectors, of the follower's own rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from usearch.index import Index

from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.settings import ShardSettings

log = logging.getLogger(__name__)

ASK_EVERY_SECONDS = 0.5
"""A follower asks its leader at most this often per memtable (and after a BUILD verdict,
builds until then)."""
MIN_GAIN_ROWS = 4_096
MAX_GAIN_ROWS = 16_384
"""A follower asks for a graph at least this many rows ahead of the one it has (a quarter of
it, between these bounds): a memtable of N rows is then shipped about a dozen times, not N/4,096."""
SAMPLE_ROWS = 64
"""Vectors of an offered graph compared with the follower's own rows."""


class Verdict(StrEnum):
    """A graph source's answer when it ships no graph."""

    WAIT = "wait"
    """The leader has not yet published that many rows: ask again later."""
    BUILD = "build"
    """No source now (this node leads, no leader known, the leader did not answer)."""
    ABSENT = "absent"
    """The leader holds no memtable or intact segment starting at that key."""


@dataclass(frozen=True)
class GraphAsk:
    """A follower's question: the graph of rows [0, >= min_rows) of the memtable starting at
    `key_lo`, exactly `key_hi - key_lo` rows when the memtable is frozen (`key_hi` set); or,
    `merged`, the graph of the segment a merge of the segments spanning [key_lo, key_hi)
    wrote, holding `min_rows` rows."""

    collection: str
    key_lo: int
    min_rows: int
    key_hi: int | None = None
    merged: bool = False


@dataclass(frozen=True)
class ShippedGraph:
    """A graph of `rows` rows as `Index.save()` writes it: in memory, or a file (a kept
    graph, sent from disk; a large one received, spooled to disk: `temporary`)."""

    rows: int
    data: bytes | bytearray | Path
    temporary: bool = False

    def release(self) -> None:
        """Delete a spooled file once the graph is loaded (or refused)."""
        if self.temporary and isinstance(self.data, Path):
            self.data.unlink(missing_ok=True)


GraphSource = Callable[[GraphAsk], "ShippedGraph | Verdict"]
"""Called by the indexer thread of a follower; the node supplies one (`vecstore.node.graphs`)."""


KEPT_DIRECTORY = "graphs-for-followers"
KEEP_GRAPHS = 8
KEEP_SECONDS = 180.0
"""The graph of a segment just written (a sealed memtable, a merge) stays linked here for
followers that have not fetched it yet, even once a later merge has removed its segment:
for `KEEP_SECONDS`, at most the newest `KEEP_GRAPHS` per collection. While a later merge
has removed the segment the link holds its disk space."""
MERGE_WAIT_SECONDS = 150.0
"""A follower waits this long for its leader to finish the same merge before it builds
the merged graph itself."""


def keep_for_followers(
    collection_directory: Path, index_file: Path, key_lo: int, key_hi: int, rows: int
) -> None:
    """Hard-link the graph file of a segment just written (no copy), and forget old ones."""
    directory = collection_directory / KEPT_DIRECTORY
    try:
        directory.mkdir(exist_ok=True)
        target = directory / kept_name(key_lo, key_hi, rows)
        target.unlink(missing_ok=True)
        os.link(index_file, target)
        kept = sorted(directory.glob("*.usearch"), key=lambda p: p.stat().st_mtime, reverse=True)
        now = time.time()
        for number, path in enumerate(kept):
            if number >= KEEP_GRAPHS or now - path.stat().st_mtime > KEEP_SECONDS:
                path.unlink(missing_ok=True)
    except OSError as err:  # no hard links here: followers build that graph themselves
        log.debug("cannot keep a graph for followers: %s", err)


def kept_name(key_lo: int, key_hi: int, rows: int) -> str:
    """The kept graph of a segment over keys [key_lo, key_hi) holding `rows` of them."""
    return f"{key_lo}-{key_hi}-{rows}.usearch"


def kept_graph(collection_directory: Path, key_lo: int, key_hi: int, rows: int) -> ShippedGraph | None:
    """The kept graph of a segment over [key_lo, key_hi) with `rows` rows, if still kept."""
    path = collection_directory / KEPT_DIRECTORY / kept_name(key_lo, key_hi, rows)
    return ShippedGraph(rows, path) if path.is_file() else None


class GraphMismatch(ValueError):
    """An offered graph is not a graph of this memtable's rows."""


def fallback_rows(settings: ShardSettings, dimension: int) -> int:
    """Rows a follower lets wait for its leader's graph before it builds: what the leader's
    own backpressure lets wait (the same setting on every replica), plus
    `graph_fallback_rows`. A leader that indexes keeps its followers below it; one that has
    stopped (its indexer failing) holds new writes once its own bound is reached, so a
    follower past this bound is waiting for a graph that is not coming."""
    admitted = settings.max_unindexed_bytes // (4 * max(1, dimension))
    return settings.graph_fallback_rows + admitted


def wanted_rows(indexed: int, count: int, frozen: bool) -> int:
    """How many rows to ask for: all of a frozen memtable; else a gain proportional to the
    graph held (fewer, larger transfers as it grows), capped by the rows held."""
    if frozen:
        return count
    gain = min(MAX_GAIN_ROWS, max(MIN_GAIN_ROWS, indexed // 4))
    return min(count, indexed + gain)


def adopt_index(
    data: bytes | bytearray | Path, keys: np.ndarray, own_vectors: np.ndarray, schema: CollectionSchema
) -> Index:
    """Load a shipped graph and check it is a graph of exactly `keys` (ascending) whose
    vectors are `own_vectors` (one row per key). Raises GraphMismatch otherwise."""
    rows = len(keys)
    try:
        index = Index.restore(str(data) if isinstance(data, Path) else data)  # loaded, not viewed
    except Exception as err:  # usearch raises plain RuntimeError/ValueError on a bad buffer
        raise GraphMismatch(f"the graph does not load: {err}") from None
    if index is None:
        raise GraphMismatch("the graph does not load")
    if index.ndim != schema.dimension or len(index) != rows:
        raise GraphMismatch(
            f"the graph has {len(index)} rows of {index.ndim} dimensions, "
            f"expected {rows} of {schema.dimension}"
        )
    held = np.sort(np.asarray(index.keys, dtype=np.uint64))
    if not np.array_equal(held, np.asarray(keys, dtype=np.uint64)):
        raise GraphMismatch("the graph's keys are not this replica's keys of those rows")
    sample = np.unique(np.linspace(0, rows - 1, min(rows, SAMPLE_ROWS)).astype(np.int64))
    stored = np.asarray(index.get(np.asarray(keys, np.uint64)[sample], dtype="f32"), np.float32)
    mine = own_vectors[sample]
    if stored.shape != mine.shape or not _same_directions(stored, mine):
        raise GraphMismatch("the graph's vectors differ from this replica's rows")
    # usearch declares these setters apart from their getters, which mypy reads as read-only
    index.expansion_add = schema.hnsw.expansion_add  # type: ignore[misc]
    index.expansion_search = schema.hnsw.expansion_search  # type: ignore[misc]
    return index


def _same_directions(stored: np.ndarray, mine: np.ndarray) -> bool:
    """Vectors as the graph stores them (f16/i8 quantized; cosine may be normalised) against
    full-precision ones: the same direction and, when not normalised, a close length."""
    dot = np.einsum("ij,ij->i", stored, mine)
    norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(mine, axis=1)
    zero = norms == 0
    if np.any(zero & (np.linalg.norm(stored, axis=1) != np.linalg.norm(mine, axis=1))):
        return False
    cosines = dot[~zero] / norms[~zero]
    return bool(np.all(cosines > 0.99))
