"""Graphs built once, the collection's side: what a replica offers a follower (`offer`), and
a follower's steps that take its leader's graphs instead of building them
(`follow_memtable`, `follow_merge`). The policy and its reasons: `vecstore.shard.graphs`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

from vecstore.cluster.schema import CollectionSchema
from vecstore.shard import graphs
from vecstore.shard.graphs import (
    GraphAsk,
    GraphMismatch,
    GraphSource,
    ShippedGraph,
    Verdict,
    adopt_index,
    fallback_rows,
    kept_graph,
    wanted_rows,
)
from vecstore.shard.memtable import MemTable
from vecstore.shard.merge import Merge
from vecstore.shard.rwlock import ReadWriteLock
from vecstore.shard.segment import SealedSegment
from vecstore.shard.settings import ShardSettings

log = logging.getLogger(__name__)


class Collection(Protocol):
    """What these steps use of a `vecstore.shard.collection.Collection` (which calls them)."""

    settings: ShardSettings
    schema: CollectionSchema
    directory: Path
    lock: ReadWriteLock
    graph_rows: dict[str, int]
    frozen: list[MemTable]
    active: MemTable
    sealed: list[SealedSegment]

    def build(self, memtable: MemTable) -> int:
        """Add a chunk of a memtable's rows to its graph here; returns rows added."""
        ...


def follow_memtable(collection: Collection, source: GraphSource, memtable: MemTable) -> int:
    """A follower's step for one memtable: adopt the leader's graph when it has one far
    enough ahead, build here when there is no source or the backlog is too long."""
    backlog = memtable.count - memtable.indexed
    now = time.monotonic()
    too_long = backlog >= fallback_rows(collection.settings, collection.schema.dimension)
    if backlog <= 0 or too_long or now < memtable.build_until:
        return collection.build(memtable)
    if now < memtable.next_ask:
        return 0
    memtable.next_ask = now + graphs.ASK_EVERY_SECONDS
    frozen = memtable.frozen
    ask = GraphAsk(
        collection.schema.name,
        memtable.key_lo,
        wanted_rows(memtable.indexed, memtable.count, frozen),
        memtable.key_hi if frozen else None,
    )
    answer = source(ask)
    if answer is Verdict.WAIT:
        return 0
    if answer is Verdict.BUILD:
        memtable.build_until = now + graphs.ASK_EVERY_SECONDS
        return collection.build(memtable)
    if answer is Verdict.ABSENT:
        memtable.local_graph = True
        log.info(
            "the leader has no graph of this memtable; building it here",
            extra={"collection": collection.schema.name, "key_lo": memtable.key_lo},
        )
        return collection.build(memtable)
    assert isinstance(answer, ShippedGraph)
    try:
        added = memtable.adopt(answer.rows, answer.data)
    except GraphMismatch as err:
        answer.release()
        memtable.local_graph = True
        log.warning(
            "refused a graph from the leader; building it here",
            extra={"collection": collection.schema.name, "key_lo": memtable.key_lo, "reason": str(err)},
        )
        return collection.build(memtable)
    answer.release()
    collection.graph_rows["adopted"] += added
    return added


def offer(collection: Collection, ask: GraphAsk) -> ShippedGraph | Verdict:
    """What this replica can ship to a follower asking `ask` (any thread). WAIT while
    this replica has not applied as far as the follower (it will cut the same memtable)."""
    if ask.merged:
        return _offer_merged(collection, ask)
    memtables = [*collection.frozen, collection.active]
    if ask.key_lo >= memtables[-1].key_hi:
        return Verdict.WAIT
    for memtable in memtables:
        if memtable.key_lo != ask.key_lo:
            continue
        if ask.key_hi is not None and memtable.key_hi != ask.key_hi:
            behind = not memtable.frozen and memtable.key_hi < ask.key_hi
            return Verdict.WAIT if behind else Verdict.ABSENT
        view = memtable.published()
        if view.rows < max(ask.min_rows, 1):
            return Verdict.WAIT
        data = view.index.save()
        assert data is not None  # saved to a buffer
        return ShippedGraph(view.rows, data)
    if ask.key_hi is not None:
        return (
            kept_graph(collection.directory, ask.key_lo, ask.key_hi, ask.key_hi - ask.key_lo)
            or Verdict.ABSENT
        )
    return Verdict.ABSENT


def _offer_merged(collection: Collection, ask: GraphAsk) -> ShippedGraph | Verdict:
    """The graph of the segment this replica's merge of [key_lo, key_hi) wrote; WAIT
    while it still holds that span in smaller pieces (it will merge them the same way
    when its layout is the follower's)."""
    assert ask.key_hi is not None
    found = kept_graph(collection.directory, ask.key_lo, ask.key_hi, ask.min_rows)
    if found is not None:
        return found
    lo, hi = ask.key_lo, ask.key_hi
    with collection.lock.read():
        containers: list[MemTable | SealedSegment] = [
            *collection.sealed,
            *collection.frozen,
            collection.active,
        ]
    pieces = [c for c in containers if c.key_lo < hi and c.key_hi > lo]
    whole = len(pieces) == 1 and (pieces[0].key_lo, pieces[0].key_hi) == (lo, hi)
    inside = all(lo <= c.key_lo and c.key_hi <= hi for c in pieces)
    return Verdict.WAIT if pieces and inside and not whole else Verdict.ABSENT


def follow_merge(collection: Collection, source: GraphSource, merge: Merge) -> bool:
    """A follower's merge: adopt the graph its leader wrote for the same merge (True:
    go on), wait for it (False), or build it here (True, `merge.local` set) when this
    node leads, the leader merged differently, or it waited `graphs.MERGE_WAIT_SECONDS`."""
    now = time.monotonic()
    if now - merge.planned_at > graphs.MERGE_WAIT_SECONDS:
        merge.local = True
        return True
    if now < merge.next_ask:
        return False
    merge.next_ask = now + graphs.ASK_EVERY_SECONDS
    run = merge.run
    ask = GraphAsk(collection.schema.name, run[0].key_lo, len(merge.rows.keys), run[-1].key_hi, merged=True)
    answer = source(ask)
    if answer is Verdict.WAIT:
        return False
    if isinstance(answer, ShippedGraph):
        try:
            index = adopt_index(answer.data, merge.rows.keys, merge.rows.vectors, collection.schema)
        except GraphMismatch as err:
            answer.release()
            log.warning(
                "refused a merged graph from the leader; merging here",
                extra={"collection": collection.schema.name, "key_lo": ask.key_lo, "reason": str(err)},
            )
        else:
            answer.release()
            collection.graph_rows["adopted"] += merge.remaining
            merge.adopt(index)
            return True
    merge.local = True
    return True
