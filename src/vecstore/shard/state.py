"""The shard state machine: `apply(command) -> result`, deterministic, plus its reads.

Every replica applies the same commands in the same order and ends with the same logical
state (compare `digest()`). Rejected commands raise before changing anything. Ingest
batches are fenced per (topic, partition): offsets at or below the applied mark are
skipped and counted, and the mark advances in the same apply.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy.typing as npt

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DropCollection,
    IngestBatch,
    IngestRecord,
    OverwritePayload,
    PointCommand,
    SetPayload,
    Upsert,
)
from vecstore.cluster.errors import CollectionConflict, CollectionNotFound, VecStoreError
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard import reads, search, snapshot
from vecstore.shard.collection import Collection
from vecstore.shard.indexer import Indexer
from vecstore.shard.records import Record, ScoredPoint, SearchPlan
from vecstore.shard.scorer import Scorer
from vecstore.shard.settings import ShardSettings

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
Result = dict[str, Any]


@dataclass
class IngestCounters:
    """Per (topic, partition): records applied, skipped as duplicates, and rejected."""

    applied: int = 0
    skipped: int = 0
    rejected: int = 0


class Shard:
    """One shard replica's state: collections, ingest offsets, and background indexing."""

    def __init__(self, settings: ShardSettings) -> None:
        self.settings = settings
        self.scorer = Scorer(settings.gpu)
        self.collections: dict[str, Collection] = {}
        self.applied: dict[TopicPartition, int] = {}
        self.counters: dict[TopicPartition, IngestCounters] = {}
        self._lock = threading.RLock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.indexer = Indexer(self) if settings.background else None
        if self.indexer is not None:
            self.indexer.start()

    # ---- apply ---------------------------------------------------------------------------

    def apply(self, command: Command) -> Result:
        """Apply one committed command; raise a VecStoreError (state unchanged) if it is invalid."""
        with self._lock:
            match command:
                case CreateCollection(schema=schema):
                    return self._create(schema)
                case DropCollection(name=name):
                    return self._drop(name)
                case IngestBatch():
                    return self._ingest(command)
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
        directory = self.settings.data_dir / "collections" / f"{schema.name}.{secrets.token_hex(4)}"
        directory.mkdir(parents=True)
        self.collections[schema.name] = Collection(schema, self.settings, self.scorer, directory)
        return {"status": "ok", "created": True}

    def _drop(self, name: str) -> Result:
        collection = self.collections.pop(name, None)
        if collection is None:
            return {"status": "ok", "dropped": False}
        with collection.lock.write():
            collection.close()
        shutil.rmtree(collection.directory, ignore_errors=True)
        return {"status": "ok", "dropped": True}

    def _apply_point_command(self, command: PointCommand) -> Result:
        collection = self.collection(command.collection)
        with collection.lock.write():
            if isinstance(command, Upsert):
                count = collection.upsert(command)
                result = {"status": "ok", "upserted": count}
            elif isinstance(command, DeletePoints):
                result = {"status": "ok", "deleted": collection.delete(command)}
            else:
                assert isinstance(command, (SetPayload, OverwritePayload, DeletePayloadKeys))
                result = {"status": "ok", "updated": collection.change_payloads(command)}
        if self.indexer is not None:
            self.indexer.wake()
        return result

    def _ingest(self, batch: IngestBatch) -> Result:
        partitions = []
        for part in batch.partitions:
            position = (part.topic, part.partition)
            high = self.applied.get(position, -1)
            counters = self.counters.setdefault(position, IngestCounters())
            skipped = 0
            fresh: list[IngestRecord] = []
            for record in part.records:
                if record.offset <= high:
                    skipped += 1
                    continue
                fresh.append(record)
                high = record.offset
            errors: list[dict[str, Any]] = []
            for run in _upsert_runs(fresh):
                errors += self._apply_records(run)
            applied = len(fresh)
            self.applied[position] = high
            counters.applied += applied - len(errors)
            counters.rejected += len(errors)
            counters.skipped += skipped
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

    def search(
        self,
        name: str,
        queries: npt.ArrayLike,
        k: int,
        condition: Filter | None = None,
        **options: Any,
    ) -> list[list[ScoredPoint]]:
        """Batch top-k search; see `vecstore.shard.search.search` for options."""
        return search.search(self.collection(name), queries, k, condition, **options)

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
                    ]
                    for _, c in sorted(self.collections.items())
                ],
                "applied": sorted([t, p, o] for (t, p), o in self.applied.items()),
            }
        return hashlib.sha256(msgpack.packb(state)).hexdigest()[:32]

    def status(self) -> dict[str, Any]:
        """Counts for status pages and metrics."""
        with self._lock:
            return {
                "collections": {name: c.stats() for name, c in sorted(self.collections.items())},
                "ingest": [
                    {
                        "topic": topic,
                        "partition": partition,
                        "applied_offset": self.applied.get((topic, partition), -1),
                        "records_applied": counters.applied,
                        "records_skipped": counters.skipped,
                        "records_rejected": counters.rejected,
                    }
                    for (topic, partition), counters in sorted(self.counters.items())
                ],
                "indexing_lag": sum(c.pending() for c in self.collections.values()),
                "scorer": self.scorer.backend,
            }

    # ---- maintenance ---------------------------------------------------------------------

    def wait_indexed(self, timeout: float = 60.0) -> bool:
        """Block until every point is in an HNSW index (or `timeout`); True if caught up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.indexer is None:
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

    def close(self) -> None:
        """Stop the indexer and release segment maps."""
        if self.indexer is not None:
            self.indexer.stop()
        with self._lock:
            for collection in self.collections.values():
                collection.close()

    def snapshot(self, path: Path) -> None:
        """Write a snapshot directory at `path` (which must not exist)."""
        snapshot.write_snapshot(self, path)

    def restore(self, path: Path) -> None:
        """Replace this shard's state with the snapshot directory at `path`."""
        snapshot.restore_snapshot(self, path)

    def snapshot_to_file(self, file: Path) -> None:
        """Write the snapshot as one tar file."""
        snapshot.write_snapshot_file(self, file)

    def restore_from_file(self, file: Path) -> None:
        """Restore from one tar file written by `snapshot_to_file`."""
        snapshot.restore_snapshot_file(self, file)


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
