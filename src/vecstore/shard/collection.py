"""One collection inside one shard: its logical state and the segments that hold it.

Logical state (decided by apply, identical on every replica): the id map, internal keys
assigned in apply order, tombstones, payloads. Physical layout (memtables, sealed
segments) is local. Mutations run under the write lock; reads under the read lock.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from vecstore.cluster.commands import (
    HELD_PAYLOAD_BYTES,
    DeletePayloadKeys,
    DeletePoints,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
    as_vector_matrix,
    canonical_payload,
    validate_payload,
)
from vecstore.cluster.errors import InvalidRequest, InvalidVector, Unavailable
from vecstore.cluster.filters import Filter, IsEmpty, Not
from vecstore.cluster.ids import PointId, point_id_sort_key, point_id_to_routing_key
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard import graph_exchange as exchange
from vecstore.shard.graphs import (
    GraphAsk,
    GraphSource,
    ShippedGraph,
    Verdict,
    keep_for_followers,
)
from vecstore.shard.memtable import FloatMatrix, KeyArray, MemTable
from vecstore.shard.merge import Merge, MergeRows
from vecstore.shard.multi import MultiVectors
from vecstore.shard.payload_filter import matches
from vecstore.shard.payload_index import LiveView, PayloadIndex, container_matches, sorted_keys
from vecstore.shard.rwlock import ReadWriteLock
from vecstore.shard.scorer import Scorer
from vecstore.shard.segment import INDEX_FILE, PackedPayloads, SealedSegment, write_segment
from vecstore.shard.settings import ShardSettings
from vecstore.shard.sparse import SparseVectors

log = logging.getLogger(__name__)

Payload = dict[str, Any]
Container = MemTable | SealedSegment
DIGEST_MOD = 2**64
MAX_STORED = HELD_PAYLOAD_BYTES  # re-encoding what is held: no size or depth bound (commands.py)
"""No bound when re-encoding a payload that is already stored."""


def point_hash(point_id: PointId, vector: FloatMatrix, payload_json: str) -> int:
    """A 64-bit hash of one point's logical content (id, vector, canonical payload JSON)."""
    digest = hashlib.blake2b(point_id_to_routing_key(point_id).encode(), digest_size=8)
    digest.update(np.ascontiguousarray(vector, dtype="<f4").tobytes())
    digest.update(payload_json.encode())
    return int.from_bytes(digest.digest(), "little")


def check_storable(payloads: list[Payload]) -> None:
    """Raise unless msgpack can store every payload (string keys, 64-bit integers).

    One round trip for the whole batch; only a failing batch is checked item by item,
    for a precise message. Commands from the wire always pass; in-process callers may not.
    """
    try:
        msgpack.unpackb(msgpack.packb(payloads), strict_map_key=True)
    except (OverflowError, ValueError, TypeError):
        for payload in payloads:
            validate_payload(payload, MAX_STORED)
        raise


class Collection:
    """State and storage of one collection on one shard replica."""

    def __init__(
        self, schema: CollectionSchema, settings: ShardSettings, scorer: Scorer, directory: Path
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.scorer = scorer
        self.directory = directory
        self.lock = ReadWriteLock()
        self.id_map: dict[PointId, int] = {}
        self.next_key = 0
        self.tombstones: set[int] = set()
        self.overrides: dict[int, Payload] = {}
        self.sealed: list[SealedSegment] = []
        self.frozen: list[MemTable] = []
        self.active = MemTable(schema, 0)
        self.digest_sum = 0
        self.segment_seq = 0
        self.dropped = False
        self.maintenance_lock = threading.Lock()
        self.merging: Merge | None = None
        """The compaction the indexer is building, a chunk per step (`compact_step`)."""
        self.id_version = 0
        """Bumped whenever the set of live ids changes (keys the sorted-id cache)."""
        self._sorted_ids: tuple[int, list[tuple[int, int]], list[PointId]] | None = None
        self.payload_index = PayloadIndex()
        self._sorted_tombstones: tuple[int, KeyArray] | None = None
        self.sparse: dict[str, SparseVectors] = {name: SparseVectors() for name, _ in schema.sparse_vectors}
        self.multi: dict[str, MultiVectors] = {
            name: MultiVectors(spec.dimension, spec.metric) for name, spec in schema.multivectors()
        }
        """The multivectors of a collection of named vectors, by name (`vecstore.shard.named`)."""
        self.payload_fields: dict[str, dict[str, Any]] = {}
        """Declared payload indexes: key -> Qdrant field schema (reported, replicated)."""
        """The sparse vectors of a collection of named vectors, by name (`vecstore.shard.named`)."""
        self.graph_rows = {"built": 0, "adopted": 0}
        """Rows put into memtable graphs here, and rows taken in graphs a leader built."""

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """The read lock of a collection still in service.

        A request may have looked this collection up just before a snapshot install (or a
        drop) closed and replaced it: reading it then would fail or answer from the old
        state, so that read gets a retriable error instead.
        """
        with self.lock.read():
            if self.dropped:
                raise Unavailable(
                    f"collection {self.schema.name!r} was replaced (snapshot installed) or dropped "
                    "while the request waited; retry"
                )
            yield

    # ---- snapshots ---------------------------------------------------------------------

    def logical_state(self) -> dict[str, Any]:
        """What a snapshot stores besides the rows and segment files (msgpack-able)."""
        return {
            "schema": self.schema.to_dict(),
            "next_key": self.next_key,
            "digest_sum": self.digest_sum,
            "tombstones": sorted(self.tombstones),
            "overrides": [[k, v] for k, v in sorted(self.overrides.items())],
            "payload_fields": [[k, v] for k, v in sorted(self.payload_fields.items())],
        }

    @classmethod
    def restored(
        cls,
        schema: CollectionSchema,
        settings: ShardSettings,
        scorer: Scorer,
        directory: Path,
        *,
        segments: list[Path],
        memtable: MemTable,
        state: dict[str, Any],
    ) -> Collection:
        """A collection rebuilt from a snapshot: its sealed segment directories (already in
        `directory`), its unsealed rows, and `logical_state()`; the id map is recomputed."""
        collection = cls(schema, settings, scorer, directory)
        collection.sealed = [SealedSegment(path) for path in segments]
        collection.segment_seq = len(segments)
        collection.active = memtable
        collection.next_key = int(state["next_key"])
        collection.digest_sum = int(state["digest_sum"])
        collection.tombstones = {int(key) for key in state["tombstones"]}
        collection.overrides = {int(key): payload for key, payload in state["overrides"]}
        collection.payload_fields = dict(state.get("payload_fields", []))
        for container in collection.containers():
            for key in np.asarray(container.keys()).tolist():
                if key in collection.tombstones:
                    container.dead += 1
                else:
                    collection.id_map[container.ext_id(key)] = key
        return collection

    # ---- lookups (callers hold a lock) -------------------------------------------------

    def container_of(self, key: int) -> Container:
        """The memtable or segment that stores `key`."""
        if key >= self.active.key_lo:
            return self.active
        for memtable in self.frozen:
            if memtable.contains(key):
                return memtable
        position = bisect.bisect_right([s.key_lo for s in self.sealed], key) - 1
        return self.sealed[position]

    def containers(self) -> list[Container]:
        """All storage, in key order."""
        return [*self.sealed, *self.frozen, self.active]

    def payload_of(self, key: int) -> Payload:
        """Current payload of a live key."""
        override = self.overrides.get(key)
        return override if override is not None else self.container_of(key).payload(key)

    def vectors_of(self, keys: KeyArray) -> FloatMatrix:
        """Full-precision vectors of keys, in the order given."""
        result = np.zeros((len(keys), self.schema.dimension), dtype=np.float32)
        if not len(keys):
            return result
        for container, positions in self.group_by_container(keys):
            result[positions] = container.vectors_of(keys[positions])
        return result

    def group_by_container(self, keys: KeyArray) -> list[tuple[Container, np.ndarray]]:
        """Split keys by the container that stores them: (container, positions in `keys`)."""
        groups = []
        for container in self.containers():
            if not container.count:
                continue
            inside = np.flatnonzero((keys >= container.key_lo) & (keys < container.key_hi))
            if len(inside):
                groups.append((container, inside))
        return groups

    def live_items(self) -> list[tuple[PointId, int]]:
        """(external id, key) of every live point, in key order."""
        return sorted(self.id_map.items(), key=lambda item: item[1])

    def sorted_ids(self) -> tuple[list[tuple[int, int]], list[PointId]]:
        """Live ids in scroll order with their sort keys, cached until the id set changes."""
        cached = self._sorted_ids
        if cached is not None and cached[0] == self.id_version:
            return cached[1], cached[2]
        ordered = sorted(self.id_map, key=point_id_sort_key)
        sort_keys = [point_id_sort_key(i) for i in ordered]
        self._sorted_ids = (self.id_version, sort_keys, ordered)
        return sort_keys, ordered

    def filter_matches(self, point_id: PointId, key: int, condition: Filter) -> bool:
        """Evaluate a filter on a live point."""
        return matches(condition, point_id, self.payload_of(key))

    def matching_keys(self, condition: Filter) -> KeyArray:
        """Live keys whose current payload satisfies the filter, ascending (payload index)."""
        view = LiveView(self._tombstone_array(), sorted_keys(self.overrides), self.payload_of, self.id_map)
        parts = [
            container_matches(self.payload_index, container, condition, view)
            for container in self.containers()
            if container.count
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

    def _tombstone_array(self) -> KeyArray:
        # tombstones grow only with the id set; compaction's removals leave keys no container
        # stores any more (keys are never reused), which the index ignores
        cached = self._sorted_tombstones
        if cached is None or cached[0] != self.id_version:
            cached = self._sorted_tombstones = (self.id_version, sorted_keys(self.tombstones))
        return cached[1]

    def select(self, selector: Selector) -> list[tuple[PointId, int]]:
        """Live points chosen by ids (missing ids skipped) or by filter."""
        if selector.ids is not None:
            return [(i, self.id_map[i]) for i in dict.fromkeys(selector.ids) if i in self.id_map]
        assert selector.filter is not None
        return [(i, k) for i, k in self.live_items() if self.filter_matches(i, k, selector.filter)]

    # ---- mutations (callers hold the write lock) ---------------------------------------

    def upsert(self, command: Upsert) -> int:
        """Insert or replace points; returns how many were written."""
        if command.dimension != self.schema.dimension:
            raise InvalidVector(
                f"vector has {command.dimension} dimensions, collection {self.schema.name!r} "
                f"expects {self.schema.dimension}"
            )
        if len(set(command.ids)) != len(command.ids):
            # a second row for one id would be neither live nor a tombstone: searchable forever
            raise InvalidRequest("an upsert must not name the same point id twice")
        vectors = as_vector_matrix(command.matrix())
        texts = [canonical_payload(p, self.settings.max_payload_bytes) for p in command.payloads]
        payloads = list(command.payloads)
        check_storable(payloads)
        for point_id in command.ids:
            if point_id in self.id_map:
                self._bury(point_id, self.id_map.pop(point_id))
        first = self.next_key
        self.active.append(list(command.ids), vectors, payloads)
        for offset, point_id in enumerate(command.ids):
            self.id_map[point_id] = first + offset
            self.digest_sum += point_hash(point_id, vectors[offset], texts[offset])
        self.next_key += len(command.ids)
        self.id_version += 1
        self.digest_sum %= DIGEST_MOD
        self._roll_active()
        return len(command.ids)

    def delete(self, command: DeletePoints) -> int:
        """Delete selected points; returns how many existed."""
        chosen = self.select(command.selector)
        for point_id, key in chosen:
            del self.id_map[point_id]
            self._bury(point_id, key)
        self.id_version += 1
        return len(chosen)

    def plan_payload_changes(
        self, command: SetPayload | OverwritePayload | DeletePayloadKeys
    ) -> list[tuple[PointId, int, Payload, Payload]]:
        """(id, key, old, new) of every point the command changes, each new payload checked
        against the limits; changes nothing (the dry run of a multi-shard write uses it)."""
        chosen = self.select(command.selector)
        updates: list[tuple[PointId, int, Payload, Payload]] = []
        for point_id, key in chosen:
            old = self.payload_of(key)
            if isinstance(command, SetPayload):
                new = {**old, **command.payload}
            elif isinstance(command, OverwritePayload):
                new = dict(command.payload)
            else:
                new = {k: v for k, v in old.items() if k not in command.keys}
            canonical_payload(new, self.settings.max_payload_bytes)
            updates.append((point_id, key, old, new))
        check_storable([new for _, _, _, new in updates])
        return updates

    def change_payloads(self, command: SetPayload | OverwritePayload | DeletePayloadKeys) -> int:
        """Set, overwrite or delete payload keys of selected points; returns how many changed."""
        updates = self.plan_payload_changes(command)
        for point_id, key, old, new in updates:
            vector = self.vectors_of(np.array([key], dtype=np.uint64))[0]
            self.digest_sum -= point_hash(point_id, vector, canonical_payload(old, MAX_STORED))
            self.digest_sum += point_hash(point_id, vector, canonical_payload(new, MAX_STORED))
            container = self.container_of(key)
            if container is self.active:
                self.active.replace_payload(key, new)
                # a restored snapshot can hold an override for a row that is now active again
                self.overrides.pop(key, None)
            else:
                self.overrides[key] = new
        self.digest_sum %= DIGEST_MOD
        return len(updates)

    def _bury(self, point_id: PointId, key: int) -> None:
        vector = self.vectors_of(np.array([key], dtype=np.uint64))[0]
        self.digest_sum = (
            self.digest_sum
            - point_hash(point_id, vector, canonical_payload(self.payload_of(key), MAX_STORED))
        ) % (DIGEST_MOD)
        self.tombstones.add(key)
        self.overrides.pop(key, None)
        self.container_of(key).dead += 1

    # ---- physical maintenance (indexer thread) -----------------------------------------

    def index_pending(self, source: GraphSource | None = None) -> int:
        """Index one chunk of unindexed rows (frozen memtables first), or adopt the graph a
        leader built (`source`: a follower's, see `vecstore.shard.graphs`); returns rows added."""
        if not self.settings.follower_graphs or self.schema.named:  # named: graphs live in `named`
            source = None
        for memtable in [*self.frozen, self.active]:
            if source is None or memtable.local_graph:
                added = self.build(memtable)
            else:
                added = exchange.follow_memtable(self, source, memtable)
            if added:
                return added
        return 0

    def build(self, memtable: MemTable) -> int:
        """Add a chunk of a memtable's rows to its graph here; returns rows added."""
        added = memtable.index_step(self.settings.index_chunk)
        self.graph_rows["built"] += added
        return added

    def graph_for(self, ask: GraphAsk) -> ShippedGraph | Verdict:
        """What this replica can ship to a follower asking `ask` (any thread)."""
        return exchange.offer(self, ask)

    def pending(self) -> int:
        """Rows not yet in any HNSW index."""
        return sum(m.count - m.indexed for m in [*self.frozen, self.active])

    def exact_tail(self) -> int:
        """Rows a search scores exactly: those past each memtable's published graph."""
        return sum(m.count - m.searchable for m in [*self.frozen, self.active])

    def seal(self, force: bool = False) -> bool:
        """Freeze the active memtable if it is big enough, then index every frozen memtable
        fully and write it out, in the caller's thread (tests, bench, `maintain`)."""
        with self.maintenance_lock:
            froze = self._freeze(force)
            wrote = False
            while self.frozen:
                memtable = self.frozen[0]
                while memtable.index_step(self.settings.index_chunk * 16, threads=0):
                    pass
                if not self._write_frozen(memtable):
                    break
                wrote = True
            return froze or wrote

    def freeze(self) -> bool:
        """Start a new memtable if the active one has reached `seal_threshold` (indexer
        thread). The frozen one is indexed before fresh rows (`index_pending`), then written
        out by `write_frozen`: sealing never waits for the writes to pause."""
        with self.maintenance_lock:
            return self._freeze(False)

    def write_frozen(self) -> bool:
        """Write out the oldest frozen memtable once all its rows are in its graph."""
        with self.maintenance_lock:
            if not self.frozen or self.frozen[0].indexed < self.frozen[0].count:
                return False
            return self._write_frozen(self.frozen[0])

    def _freeze(self, force: bool) -> bool:
        with self.lock.write():
            return self._roll_active(force)

    def _roll_active(self, force: bool = False) -> bool:
        """Freeze the active memtable and start a new one (caller holds the write lock) when
        forced, or when its keys reach the next multiple of `seal_threshold` past its first.
        Apply calls this after every append, so replicas that applied the same commands end
        their memtables at the same key (a follower can adopt its leader's graph of one), and
        replicas whose layouts diverged (a forced seal, a snapshot) agree again from the next
        multiple on."""
        memtable = self.active
        if memtable.count == 0:
            return False
        threshold = max(1, self.settings.seal_threshold)
        boundary = (memtable.key_lo // threshold + 1) * threshold
        if not force and memtable.key_hi < boundary:  # implies count < threshold
            return False
        memtable.frozen = True
        self.frozen.append(memtable)
        self.active = MemTable(self.schema, memtable.key_hi)
        return True

    def _write_frozen(self, memtable: MemTable) -> bool:
        path = self._new_segment_path()
        segment = write_segment(
            path,
            self.schema,
            memtable.key_lo,
            memtable.key_hi,
            memtable.keys(),
            memtable.ext_ids,
            memtable.vectors(),
            memtable.payloads,
            index=memtable.index,
        )
        keep_for_followers(
            self.directory, path / INDEX_FILE, memtable.key_lo, memtable.key_hi, memtable.count
        )
        # columns the memtable had are wanted again: build them here, not in the first search
        self.payload_index.warm(segment, self.payload_index.keys_in_use([memtable]))
        with self.lock.write():
            if self.dropped:
                return False
            segment.dead = memtable.dead
            self.frozen.remove(memtable)
            self.sealed.append(segment)
        log.info(
            "sealed segment",
            extra={"collection": self.schema.name, "points": segment.count, "path": str(path)},
        )
        return True

    def compact(self, force: bool = False) -> bool:
        """Merge one run of sealed segments (many deletions, or small neighbours) now, in
        the caller's thread; a merge the indexer has begun is finished first."""
        with self.maintenance_lock:
            if self.merging is None:
                self.merging = self._plan_merge(force)
                if self.merging is None:
                    return False
            while self.merging.step(self.settings.merge_chunk):
                pass
            self._finish_merge()
            return True

    def compact_step(self, chunk: int | None = None, source: GraphSource | None = None) -> bool:
        """One bounded piece of compaction for the indexer thread: plan a merge, insert
        `chunk` of its rows (default `merge_chunk`) into the merged graph, or write it out
        and swap it in. Fresh rows are indexed between two pieces (`Shard.index_step`).
        A follower (`source`) first waits a while for its leader's graph of the same merge.
        False when there was nothing to do."""
        with self.maintenance_lock:
            if self.merging is None:
                self.merging = self._plan_merge(False)
                return self.merging is not None
            merge = self.merging
            follower = self.settings.follower_graphs and not merge.local and merge.remaining
            if source is not None and follower and not exchange.follow_merge(self, source, merge):
                return False  # waiting for the leader's graph
            before = merge.remaining
            more = merge.step(chunk or self.settings.merge_chunk)
            self.graph_rows["built"] += before - merge.remaining
            if not more:
                self._finish_merge()
            return True

    def _plan_merge(self, force: bool) -> Merge | None:
        """Capture the live rows of the next run to merge; None if none is due. Stored
        payloads are copied as packed bytes (only overridden ones are packed anew)."""
        run = self._compaction_run(force)
        if not run:
            return None
        with self.lock.read():  # apply adds to both meanwhile: a consistent copy to read
            dead = np.fromiter(self.tombstones, np.uint64, len(self.tombstones))
            overrides = dict(self.overrides)
        overridden = np.fromiter(overrides, np.uint64, len(overrides))
        rows = MergeRows(
            np.zeros(0, np.uint64),
            [],
            np.zeros((0, self.schema.dimension), np.float32),
            PackedPayloads([], np.zeros(0, np.uint64)),
        )
        keys_parts: list[KeyArray] = []
        vectors_parts: list[FloatMatrix] = []
        payload_parts: list[PackedPayloads] = []
        offset = 0
        for segment in run:
            # segments are immutable; tombstones and overrides only grow or get newer, and
            # the swap reconciles whatever changed while the merge was being built
            segment_keys = np.asarray(segment.keys())
            live = ~np.isin(segment_keys, dead)
            rows.dropped.extend(segment_keys[~live].tolist())
            taken = np.flatnonzero(live)
            live_keys = segment_keys[taken]
            replace: dict[int, Payload] = {}
            for position in np.flatnonzero(np.isin(live_keys, overridden)).tolist():
                key = int(live_keys[position])
                rows.captured[key] = overrides[key]
                replace[int(taken[position])] = overrides[key]
            rows.spans.append((offset, offset + len(taken), bool(live.all())))
            offset += len(taken)
            keys_parts.append(live_keys)
            vectors_parts.append(np.asarray(segment.all_vectors()[taken], dtype=np.float32))
            payload_parts.append(segment.packed_payloads(taken, replace))
            rows.ids.extend(segment.ext_ids[row] for row in taken.tolist())
        rows.keys = np.concatenate(keys_parts).astype(np.uint64)
        rows.vectors = np.concatenate(vectors_parts)
        rows.payloads = PackedPayloads.join(payload_parts)
        return Merge(self.schema, run, rows)

    def _finish_merge(self) -> None:
        """Write the merged segment and swap it in for its run."""
        merge, self.merging = self.merging, None
        assert merge is not None, "no merge to finish"
        run, rows = merge.run, merge.rows
        segment_new = None
        if len(rows.keys):
            segment_new = write_segment(
                self._new_segment_path(),
                self.schema,
                run[0].key_lo,
                run[-1].key_hi,
                rows.keys,
                rows.ids,
                rows.vectors.astype(np.float32),
                rows.payloads,
                index=merge.graph(),
            )
            self.payload_index.warm(segment_new, self.payload_index.keys_in_use(run))
            keep_for_followers(
                self.directory, segment_new.path / INDEX_FILE, run[0].key_lo, run[-1].key_hi, len(rows.keys)
            )
        with self.lock.write():
            if self.dropped:
                return
            start = self.sealed.index(run[0])
            self.sealed[start : start + len(run)] = [segment_new] if segment_new else []
            self.tombstones.difference_update(rows.dropped)
            for key, override in rows.captured.items():
                if self.overrides.get(key) is override:
                    del self.overrides[key]
            if segment_new is not None:
                segment_new.dead = sum(1 for key in rows.keys.tolist() if key in self.tombstones)
        for segment in run:
            segment.close()
            shutil.rmtree(segment.path, ignore_errors=True)
        log.info(
            "compacted segments",
            extra={
                "collection": self.schema.name,
                "merged": len(run),
                "dropped": len(rows.dropped),
                "graph_rows_reused": merge.reused_rows,
            },
        )

    def _compaction_run(self, force: bool) -> list[SealedSegment]:
        with self.lock.read():
            sealed = list(self.sealed)
        for segment in sealed:
            if segment.count and segment.dead / segment.count >= self.settings.compaction_dead_ratio:
                return [segment]
        limit = self.settings.max_segment_points
        for left, right in itertools.pairwise(sealed):
            if (left.count - left.dead) + (right.count - right.dead) <= limit:
                return [left, right]
        if force:
            return [s for s in sealed if s.dead][:1]
        return []

    def _new_segment_path(self) -> Path:
        self.segment_seq += 1
        path = self.directory / f"segment-{self.segment_seq:06d}"
        while path.exists():
            self.segment_seq += 1
            path = self.directory / f"segment-{self.segment_seq:06d}"
        return path

    def close(self) -> None:
        """Release maps and, if dropped, the files."""
        self.dropped = True
        for segment in self.sealed:
            segment.close()
        self.sealed = []

    # ---- counts --------------------------------------------------------------------------

    def indexed_points(self, key: str) -> int:
        """Live points holding a value at `key` (what a payload index on it covers); callers
        hold the read lock."""
        return len(self.matching_keys(Not(IsEmpty(key))))

    def stats(self) -> dict[str, Any]:
        """Counts for status and metrics."""
        return {
            "points": len(self.id_map),
            "segments": len(self.sealed),
            "sealed_points": sum(s.count for s in self.sealed),
            "memtable_points": sum(m.count for m in [*self.frozen, self.active]),
            "tombstones": len(self.tombstones),
            "indexing_lag": self.pending(),
            "graph_rows_built": self.graph_rows["built"],
            "graph_rows_adopted": self.graph_rows["adopted"],
        }
