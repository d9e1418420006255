"""The shard state machine: `apply(command) -> result`, deterministic, plus its reads.

Every replica applies the same commands in the same order and ends with the same logical
state (compare `digest()`). Rejected commands raise before changing anything. Ingest
batches are fenced per (topic, partition) (`ingest_fence`): offsets at or below the applied
mark are skipped and counted, and the mark advances in the same apply.

Indexing, sealing and compaction change only the physical layout: `index_step()` does one
bounded step of it. The shard starts no thread: the node drives the steps from its indexer
thread (`vecstore.node.indexer`, attached with `drive_with`); without a driver, callers
step by hand (`wait_indexed`, `index_until_idle`, `maintain`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy.typing as npt

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DeleteVectors,
    DropCollection,
    FenceMoving,
    IngestBatch,
    IngestRecord,
    InstallTopology,
    MigrateIn,
    OverwritePayload,
    PointCommand,
    PrepareMigration,
    Selector,
    SetPayload,
    SetPayloadIndex,
    SparseVector,
    UpdateAliases,
    UpdateVectors,
    Upsert,
)
from vecstore.cluster.errors import (
    CollectionConflict,
    CollectionNotFound,
    Conflict,
    InvalidRequest,
    InvalidVector,
    NotFound,
    VecStoreError,
)
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema, Metric, space_name
from vecstore.cluster.topology import Topology
from vecstore.shard import named, reads, search, snapshot
from vecstore.shard.collection import Collection
from vecstore.shard.graphs import GraphAsk, GraphSource, ShippedGraph, Verdict
from vecstore.shard.ingest_fence import IngestFence
from vecstore.shard.memtable import FloatMatrix, MemTable
from vecstore.shard.ownership import Ownership
from vecstore.shard.records import Record, ScoredPoint, SearchPlan
from vecstore.shard.scorer import Scorer
from vecstore.shard.settings import ShardSettings

log = logging.getLogger(__name__)

Result = dict[str, Any]


class Shard:
    """One shard replica's state: collections and ingest offsets, with the step functions
    of their physical maintenance."""

    def __init__(self, settings: ShardSettings) -> None:
        self.settings = settings
        self.scorer = Scorer(settings.gpu)
        self.collections: dict[str, Collection] = {}
        self.fence = IngestFence()
        self.ownership: Ownership | None = None
        self.aliases: dict[str, str] = {}
        """Collection aliases: alias -> collection (`UpdateAliases`)."""
        self._lock = threading.RLock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._wake: Callable[[], None] | None = None
        self.graph_source: GraphSource | None = None
        """Where a follower gets graphs its leader built (set by the node; None: build every
        graph here). Called by `index_step` only."""

    def drive_with(self, wake: Callable[[], None]) -> None:
        """Hand physical maintenance to a driver that calls `index_step` from its own thread
        (the node's indexer): `wake()` is called after every change that may need work, and
        `wait_indexed` then waits for the driver instead of indexing itself."""
        self._wake = wake

    def _changed(self) -> None:
        if self._wake is not None:
            self._wake()

    # ---- apply ---------------------------------------------------------------------------

    def apply(self, command: Command) -> Result:
        """Apply one committed command; raise a VecStoreError (state unchanged) if it is invalid."""
        with self._lock:
            match command:
                case CreateCollection(schema=schema):
                    return self._create(schema)
                case DropCollection(name=name):
                    return self._drop(name)
                case UpdateAliases(actions=actions):
                    return self._update_aliases(actions)
                case SetPayloadIndex(collection=name, key=key, schema=field_schema):
                    collection = self.collection(name)
                    with collection.lock.write():
                        if field_schema is None:
                            existed = collection.payload_fields.pop(key, None) is not None
                        else:
                            existed = key in collection.payload_fields
                            collection.payload_fields[key] = field_schema
                    return {"status": "ok", "changed": field_schema is not None or existed}
                case IngestBatch():
                    return self._ingest(command)
                case InstallTopology() | PrepareMigration() | FenceMoving():
                    return self._apply_topology(command)
                case MigrateIn(command=copy):
                    if self.ownership is None:
                        raise Conflict("this shard has no migration prepared; the copy is refused")
                    copied = _ids_of(copy)
                    if copied is None:
                        raise InvalidRequest("a migration copy names its point ids")
                    self.ownership.check_copy(copied)
                    return self._apply_point_command(copy, fenced=False)
                case _:
                    return self._apply_point_command(command)

    def _create(self, schema: CollectionSchema) -> Result:
        schema.validate()
        existing = self.collections.get(schema.name)
        if existing is not None:
            if existing.schema != schema:
                raise CollectionConflict(
                    f"collection {schema.name!r} exists with a different schema: {existing.schema.to_dict()}"
                )
            return {"status": "ok", "created": False}
        spaces = [schema.space_schema(vector_name) for vector_name in schema.dense_spaces()]
        for created in [schema, *spaces]:
            directory = self.settings.data_dir / "collections" / named.directory_name(created.name)
            directory.mkdir(parents=True)
            self.collections[created.name] = Collection(created, self.settings, self.scorer, directory)
        return {"status": "ok", "created": True}

    def _update_aliases(self, actions: tuple[tuple[str, str, str], ...]) -> Result:
        """Apply alias actions in order, all or nothing (checked on a copy first)."""
        aliases = dict(self.aliases)
        for kind, alias, other in actions:
            if kind == "create":
                if other not in self.collections or named.is_space(other):
                    raise CollectionNotFound(other)
                if alias in self.collections:
                    raise Conflict(f"{alias!r} is a collection; an alias cannot take its name")
                aliases[alias] = other
            elif alias not in aliases:
                raise NotFound(f"Not found: Alias {alias} does not exist")
            elif kind == "delete":
                del aliases[alias]
            else:
                if other in self.collections:
                    raise Conflict(f"{other!r} is a collection; an alias cannot take its name")
                aliases[other] = aliases.pop(alias)
        self.aliases = aliases
        return {"status": "ok", "aliases": len(aliases)}

    def _drop(self, name: str) -> Result:
        collection = self.collections.get(name)
        if collection is None:
            return {"status": "ok", "dropped": False}
        for space in named.spaces_of(self.collections, collection.schema).values():
            self._drop_one(space.schema.name)
        self.aliases = {alias: target for alias, target in self.aliases.items() if target != name}
        return self._drop_one(name)

    def _drop_one(self, name: str) -> Result:
        collection = self.collections.pop(name)
        with collection.lock.write():
            collection.close()
        shutil.rmtree(collection.directory, ignore_errors=True)
        return {"status": "ok", "dropped": True}

    def _apply_point_command(self, command: PointCommand, fenced: bool = True) -> Result:
        collection = self.collection(command.collection)
        command = self._resolved(command)
        if fenced and self.ownership is not None:
            self._check_ownership(collection, command)
        if collection.schema.named:
            result = named.apply(collection, named.spaces_of(self.collections, collection.schema), command)
            self._changed()
            return result
        if isinstance(command, UpdateVectors) and command.default_only:
            with collection.lock.write():
                result = {"status": "ok", "updated": named.update_default(collection, command)}
            self._changed()
            return result
        by_name = isinstance(command, (UpdateVectors, DeleteVectors))
        if by_name or (isinstance(command, Upsert) and command.named):
            raise InvalidVector(
                f"collection {command.collection!r} has one unnamed vector; it has no named vectors"
            )
        with collection.lock.write():
            if isinstance(command, Upsert):
                count = collection.upsert(command)
                result = {"status": "ok", "upserted": count}
            elif isinstance(command, DeletePoints):
                result = {"status": "ok", "deleted": collection.delete(command)}
            else:
                assert isinstance(command, (SetPayload, OverwritePayload, DeletePayloadKeys))
                result = {"status": "ok", "updated": collection.change_payloads(command)}
        self._changed()
        return result

    def _resolved(self, command: PointCommand) -> Any:
        """The command with `has_vector` conditions of its filter resolved into ids."""
        selector = getattr(command, "selector", None)
        if selector is None or selector.filter is None:
            return command
        rows = self.collection(command.collection)
        resolved = named.resolve(self.collections, rows, selector.filter)
        if resolved is selector.filter:
            return command
        return dataclasses.replace(command, selector=Selector(filter=resolved))  # type: ignore[arg-type]

    def resolve(self, name: str, condition: Filter | None) -> Filter | None:
        """A read's filter with its `has_vector` conditions resolved into ids."""
        return named.resolve(self.collections, self.collection(name), condition)

    def dry_run(self, command: SetPayload | OverwritePayload | DeletePayloadKeys) -> Result:
        """Whether a payload change would apply here, without applying it (a router asks
        every shard before a multi-shard change: an input error then stops it everywhere)."""
        command = self._resolved(command)
        collection = self.collection(command.collection)
        with collection.lock.read():
            planned = collection.plan_payload_changes(command)
        return {"status": "ok", "would_update": len(planned), "epoch": self.epoch}

    def _check_ownership(self, collection: Collection, command: PointCommand) -> None:
        """The topology fence (before anything changes), and what the catch-up must re-copy."""
        ownership = self.ownership
        assert ownership is not None
        ids = _ids_of(command)
        if ids is None:
            ownership.check_filter_write()
            if ownership.pending is not None:
                selector = command.selector  # type: ignore[union-attr]
                with collection.lock.read():
                    touched = [point_id for point_id, _ in collection.select(selector)]
                ownership.note_written(command.collection, touched)
            return
        ownership.check_writes(ids)
        ownership.note_written(command.collection, ids)

    def _apply_topology(self, command: InstallTopology | PrepareMigration | FenceMoving) -> Result:
        if self.ownership is not None and self.ownership.shard_id != command.shard_id:
            raise Conflict(
                f"this is shard {self.ownership.shard_id}; a topology command for shard "
                f"{command.shard_id} was sent to it"
            )
        match command:
            case InstallTopology(topology=raw, inherit=inherit):
                marks: dict[int, dict[tuple[str, int], int]] = {}
                for origin, topic, partition, offset in inherit:
                    marks.setdefault(origin, {})[(topic, partition)] = offset
                installed = self._install(command.shard_id, Topology.from_dict(raw), marks)
                return {"status": "ok", "installed": installed, **self._ownership_status()}
            case PrepareMigration(current=current, pending=pending):
                now = Topology.from_dict(current)
                if self.ownership is None or self.ownership.epoch < now.epoch:
                    self._install(command.shard_id, now)  # never again once prepared: keeps `dirty`
                assert self.ownership is not None
                self.ownership.prepare(Topology.from_dict(pending))
            case FenceMoving(epoch=epoch):
                if self.ownership is None:
                    raise Conflict("this shard has no migration prepared; nothing to fence")
                self.ownership.fence(epoch)
        return {"status": "ok", **self._ownership_status()}

    def _install(
        self, shard_id: int, topology: Topology, marks: dict[int, dict[tuple[str, int], int]] | None = None
    ) -> bool:
        """Make `topology` current and delete the points this shard no longer owns (a shard
        not in it, a target before its cutover or a removed shard, owns none)."""
        if self.ownership is None:
            self.ownership = Ownership(shard_id, topology)
        else:
            origins_before, epoch_before = self.ownership.origins(), self.ownership.epoch
            applied = self.fence.effective_marks(origins_before)
            if not self.ownership.install(topology):
                return False
            if topology.epoch > epoch_before:  # a cutover: the offsets of the points that came
                self.fence.inherit(origins_before, marks or {})
                rows = tuple((t, p, o) for (t, p), o in sorted(applied.items()))
                self.ownership.handover = (topology.epoch, rows)
        ownership = self.ownership
        for name, collection in self.collections.items():
            with collection.lock.read():
                gone = tuple(i for i, _ in collection.live_items() if not ownership.owns(i))
            if gone:
                self._apply_point_command(DeletePoints(name, Selector(ids=gone)), fenced=False)
        return True

    def _origin_of(self, record: IngestRecord) -> int | None:
        ids = _ids_of(record.command)
        if self.ownership is None or not ids:
            return None
        return self.ownership.origin(ids[0])

    def _ownership_status(self) -> Result:
        if self.ownership is None:
            return {"ownership": None}
        marks = self.fence.effective_marks(self.ownership.origins())
        rows = [[t, p, o] for (t, p), o in sorted(marks.items())]
        return {"ownership": {**self.ownership.status(), "ingest_marks": rows}}

    def topology_status(self) -> Result:
        """The topology fence (`ownership`: None before any topology was installed)."""
        with self._lock:
            return self._ownership_status()

    @property
    def epoch(self) -> int | None:
        """The topology epoch writes are checked against (None: no topology installed)."""
        ownership = self.ownership
        return None if ownership is None else ownership.epoch

    def dirty_points(self, collection: str) -> list[PointId]:
        """The points moving away that were written since the migration was prepared."""
        with self._lock:
            if self.ownership is None:
                return []
            return sorted(self.ownership.dirty.get(collection, set()), key=repr)

    def _ingest(self, batch: IngestBatch) -> Result:
        if self.ownership is not None:  # refuse the whole batch: a rejected record would be lost
            self.ownership.check_writes(
                point_id
                for part in batch.partitions
                for record in part.records
                for point_id in _ids_of(record.command) or ()
            )
        partitions = []
        for part in batch.partitions:
            position = (part.topic, part.partition)
            fresh = self.fence.fresh(position, part.records, self._origin_of)
            high = fresh[-1].offset if fresh else self.fence.high(position)
            skipped = len(part.records) - len(fresh)
            errors: list[dict[str, Any]] = []
            for run in _upsert_runs(fresh):
                errors += self._apply_records(run)
            applied = len(fresh)
            self.fence.advance(position, high, applied - len(errors), len(errors), skipped)
            partitions.append(
                {
                    "topic": part.topic,
                    "partition": part.partition,
                    "applied": applied - len(errors),
                    "skipped": skipped,
                    "rejected": errors,
                    "high_offset": high,
                }
            )
        return {"status": "ok", "partitions": partitions}

    def _apply_records(self, run: list[IngestRecord]) -> list[dict[str, Any]]:
        """Apply a run of records; returns the rejected ones (deterministic on every replica).

        A run of upserts to one collection is applied as one upsert (one validation pass,
        one memtable append); if any record in it is invalid, the run is applied record by
        record so that only the invalid ones are rejected.
        """
        if len(run) > 1:
            first = run[0].command
            assert isinstance(first, Upsert)
            commands = [r.command for r in run if isinstance(r.command, Upsert)]
            if all(c.dimension == first.dimension for c in commands):
                combined = Upsert(
                    first.collection,
                    tuple(i for c in commands for i in c.ids),
                    first.dimension,
                    b"".join(c.vectors for c in commands),
                    tuple(p for c in commands for p in c.payloads),
                )
                try:
                    self._apply_point_command(combined)
                except VecStoreError:
                    pass
                else:
                    return []
        errors = []
        for record in run:
            try:
                self._apply_point_command(record.command)
            except VecStoreError as err:
                # the offset still advances: the record is consumed, and counted as rejected
                errors.append({"offset": record.offset, "error": err.message})
        return errors

    # ---- reads ---------------------------------------------------------------------------

    def collection(self, name: str) -> Collection:
        """The named collection, or CollectionNotFound."""
        found = self.collections.get(name)
        if found is None:
            raise CollectionNotFound(name)
        return found

    def searched(self, name: str, using: str | None = None) -> Collection:
        """The collection (or, with `using`, the space of a named vector) a search reads."""
        collection = self.collection(name)
        collection.schema.searched(using)  # raises unless `using` fits the collection
        return self.collection(space_name(name, using or "")) if collection.schema.named else collection

    def sparse_search(
        self,
        name: str,
        using: str,
        queries: list[SparseVector],
        k: int,
        condition: Filter | None = None,
        *,
        with_payload: bool = True,
        score_threshold: float | None = None,
    ) -> list[list[ScoredPoint]]:
        """Exact top-k of sparse queries (dot products) over the sparse vector `using`."""
        rows = self.collection(name)
        if using not in rows.sparse:
            if using in {n for n, _ in rows.schema.vectors}:
                raise InvalidRequest(f"vector {using!r} is dense: query it with a list of numbers")
            rows.schema.sparse(using)  # raises, naming the vectors there are
        with rows.reading():
            allowed = None if condition is None else set(named.ids_of(rows, rows.matching_keys(condition)))
            space = rows.sparse[using]
            answers = []
            for query in queries:
                found = space.search(query, k, allowed=allowed)
                answers.append(
                    [
                        ScoredPoint(
                            point_id,
                            score,
                            rows.payload_of(rows.id_map[point_id]) if with_payload else None,
                        )
                        for point_id, score in found
                        if score_threshold is None or score >= score_threshold
                    ]
                )
        return answers

    def multi_search(
        self,
        name: str,
        using: str,
        queries: list[FloatMatrix],
        k: int,
        condition: Filter | None = None,
        *,
        with_payload: bool = True,
        score_threshold: float | None = None,
    ) -> list[list[ScoredPoint]]:
        """Exact top-k of multivector queries (MaxSim) over the multivector `using`."""
        rows = self.collection(name)
        if using not in rows.multi:
            if rows.schema.named and using in {n for n, _ in rows.schema.vectors}:
                raise InvalidRequest(
                    f"vector {using!r} is one vector per point: query it with a list of numbers"
                )
            rows.schema.vector(using)  # raises, naming the vectors there are
        space = rows.multi[using]
        for query in queries:
            if query.shape[1] != space.dimension:
                raise InvalidVector(
                    f"multivector query has vectors of {query.shape[1]} dimensions, {using!r} expects "
                    f"{space.dimension}"
                )
        lower_is_better = space.metric is Metric.L2
        with rows.reading():
            allowed = None if condition is None else set(named.ids_of(rows, rows.matching_keys(condition)))
            answers = []
            for query in queries:
                found = space.search(query, k, allowed=allowed)
                answers.append(
                    [
                        ScoredPoint(
                            point_id,
                            score,
                            rows.payload_of(rows.id_map[point_id]) if with_payload else None,
                        )
                        for point_id, score in found
                        if score_threshold is None
                        or (score <= score_threshold if lower_is_better else score >= score_threshold)
                    ]
                )
        return answers

    def sparse_stats(self, name: str, using: str, indices: list[int]) -> tuple[int, list[int]]:
        """Points having the sparse vector `using`, and per index how many of them use it
        (the shard's part of the collection's IDF statistics)."""
        rows = self.collection(name)
        if using not in rows.sparse:
            rows.schema.sparse(using)
        with rows.reading():
            space = rows.sparse[using]
            return len(space), [int(n) for n in space.document_frequencies(indices)]

    def spaces(self, name: str) -> dict[str, Collection]:
        """Vector name -> space, of a collection of named vectors ({} for others)."""
        return named.spaces_of(self.collections, self.collection(name).schema)

    def search(
        self,
        name: str,
        queries: npt.ArrayLike,
        k: int,
        condition: Filter | None = None,
        using: str | None = None,
        **options: Any,
    ) -> list[list[ScoredPoint]]:
        """Batch top-k search (`using`: which named vector); see `vecstore.shard.search.search`
        for options."""
        return search.search(self.searched(name, using), queries, k, condition, **options)

    def explain(self, name: str, k: int, condition: Filter | None = None, exact: bool = False) -> SearchPlan:
        """The plan a search would run."""
        return search.explain(self.collection(name), k, condition, exact)

    def get(self, name: str, ids: list[object], **options: bool) -> list[Record]:
        """Points by id."""
        return reads.get(self.collection(name), ids, **options)

    def scroll(self, name: str, **options: Any) -> tuple[list[Record], PointId | None]:
        """A page of points in id order."""
        return reads.scroll(self.collection(name), **options)

    def count(self, name: str, condition: Filter | None = None) -> int:
        """Points matching a filter."""
        return reads.count(self.collection(name), condition)

    def digest(self) -> str:
        """A cheap checksum of the logical content; equal on replicas that applied the same log."""
        with self._lock:
            state = {
                "collections": [
                    [
                        c.schema.to_dict(),
                        len(c.id_map),
                        c.next_key,
                        c.digest_sum,
                        *([[name, s.digest()] for name, s in sorted(c.sparse.items())] if c.sparse else []),
                        *([sorted(c.payload_fields.items())] if c.payload_fields else []),
                        *([[name, m.digest()] for name, m in sorted(c.multi.items())] if c.multi else []),
                    ]
                    for _, c in sorted(self.collections.items())
                ],
                "applied": self.fence.digest_rows(),
                **({"aliases": sorted(self.aliases.items())} if self.aliases else {}),
                "ownership": None if self.ownership is None else self.ownership.digest_row(),
            }
        return hashlib.sha256(msgpack.packb(state)).hexdigest()[:32]

    def status(self) -> dict[str, Any]:
        """Counts for status pages and metrics."""
        with self._lock:
            return {
                "collections": {name: c.stats() for name, c in sorted(self.collections.items())},
                "ingest": self.fence.status(),
                **self._ownership_status(),
                "indexing_lag": sum(c.pending() for c in self.collections.values()),
                "exact_tail": sum(c.exact_tail() for c in self.collections.values()),
                "scorer": self.scorer.backend,
            }

    def graph_for(self, ask: GraphAsk) -> ShippedGraph | Verdict:
        """The graph this replica can ship to a follower (`vecstore.shard.graphs`); ABSENT
        for an unknown collection."""
        collection = self.collections.get(ask.collection)
        if collection is None or collection.dropped:
            return Verdict.ABSENT
        return collection.graph_for(ask)

    def graph_rows(self) -> dict[str, int]:
        """Rows put into memtable graphs here ("built") and taken from a leader ("adopted")."""
        totals = {"built": 0, "adopted": 0}
        for collection in list(self.collections.values()):
            for how, rows in collection.graph_rows.items():
                totals[how] += rows
        return totals

    def unindexed_bytes(self) -> int:
        """Bytes of full-precision vectors applied but not yet in an HNSW graph (lock-free:
        the event loop asks, and apply may hold the shard lock for a while)."""
        collections = list(self.collections.values())  # one C-level copy: safe against apply
        return sum(c.pending() * c.schema.dimension * 4 for c in collections)

    # ---- maintenance ---------------------------------------------------------------------

    def index_step(self) -> bool:
        """One bounded step of physical maintenance over every collection; True if it did
        work. Per collection: freeze a full memtable; index a chunk of buffered vectors
        (frozen memtables first); write out a frozen memtable now indexed; and one piece of
        compaction. While fresh rows wait the piece is as small as their chunk, so
        writes at the indexing rate neither starve merges nor wait for a whole one."""
        busy = False
        for collection in list(self.collections.values()):
            if collection.dropped:
                continue
            busy = collection.freeze() or busy
            fresh = collection.index_pending(self.graph_source)
            wrote = collection.write_frozen()
            if fresh or wrote:
                busy = True
            elif _mostly_dead(collection.active, self.settings.compaction_dead_ratio):
                # deleted rows stay in a memtable's graph (a resharding source deletes a third
                # of its points at once): sealed, the segment is then compacted without them
                busy = collection.seal(force=True) or busy
            chunk = self.settings.index_chunk if fresh else self.settings.merge_chunk
            busy = collection.compact_step(chunk, self.graph_source) or busy
        return busy

    def wait_indexed(self, timeout: float = 60.0) -> bool:
        """Block until every point is in an HNSW index (or `timeout`); True if caught up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._wake is None:
                self.maintain(seal=False, compact=False)
            if all(c.pending() == 0 for c in list(self.collections.values())):
                return True
            time.sleep(0.01)
        return False

    def maintain(self, seal: bool = True, compact: bool = True, force: bool = False) -> None:
        """Run indexing, sealing and compaction now, in the caller's thread (tests, bench)."""
        for collection in list(self.collections.values()):
            while collection.index_pending():
                pass
            if seal:
                collection.seal(force=force)
            if compact:
                while collection.compact(force=force):
                    pass

    def index_until_idle(self) -> int:
        """Run `index_step` in the caller's thread until there is no work; the steps run.
        Only for a shard without a driver (tests, benchmarks, the in-process demo)."""
        steps = 0
        while self.index_step():
            steps += 1
        return steps

    def close(self) -> None:
        """Release segment maps (stop the driver first: no step may run after this)."""
        with self._lock:
            for collection in self.collections.values():
                collection.close()

    def snapshot(self, path: Path) -> None:
        """Write a snapshot directory at `path` (which must not exist); consistent: applies
        wait until it is written."""
        path.mkdir(parents=True)
        with self._lock:
            snapshot.write_snapshot(
                path, list(self.collections.values()), self.fence, self.ownership, self.aliases
            )

    def restore(self, path: Path) -> None:
        """Replace this shard's state with the snapshot directory at `path`; a snapshot that
        does not read back whole leaves the shard as it was (MalformedCommand)."""
        with self._lock:
            image = snapshot.read_snapshot(path, self.settings, self.scorer)
            for collection in self.collections.values():
                with collection.lock.write():
                    collection.close()
                shutil.rmtree(collection.directory, ignore_errors=True)
            self.collections = {c.schema.name: c for c in image.collections}
            self.fence = image.fence
            self.ownership = image.ownership
            self.aliases = image.aliases
        self._changed()

    def snapshot_to_file(self, file: Path) -> None:
        """Write the snapshot as one uncompressed tar file (what a Raft peer receives)."""
        with tempfile.TemporaryDirectory(dir=self.settings.data_dir) as scratch:
            directory = Path(scratch) / "snapshot"
            self.snapshot(directory)
            snapshot.pack(directory, file)

    def restore_from_file(self, file: Path) -> None:
        """Restore from one tar file written by `snapshot_to_file`."""
        with tempfile.TemporaryDirectory(dir=self.settings.data_dir) as scratch:
            self.restore(snapshot.unpack(file, Path(scratch)))


DEAD_SEAL_MIN_ROWS = 1_000
"""A memtable this large whose deleted share passes the compaction ratio is sealed early."""


def _mostly_dead(memtable: MemTable, ratio: float) -> bool:
    return memtable.count >= DEAD_SEAL_MIN_ROWS and memtable.dead > ratio * memtable.count


def _ids_of(command: PointCommand) -> tuple[PointId, ...] | None:
    """The point ids a command names (None for a write by filter)."""
    return command.ids if isinstance(command, (Upsert, UpdateVectors)) else command.selector.ids


def _upsert_runs(records: list[IngestRecord]) -> list[list[IngestRecord]]:
    """Split records, in order, into runs of upserts to one collection with distinct ids
    (applied together) and single other records."""
    runs: list[list[IngestRecord]] = []
    seen: set[PointId] = set()
    for record in records:
        command = record.command
        current = runs[-1] if runs else None
        if (
            isinstance(command, Upsert)
            and current is not None
            and isinstance(current[0].command, Upsert)
            and current[0].command.collection == command.collection
            and seen.isdisjoint(command.ids)
        ):
            current.append(record)
            seen.update(command.ids)
            continue
        runs.append([record])
        seen = set(command.ids) if isinstance(command, Upsert) else set()
    return runs
