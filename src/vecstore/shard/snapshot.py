"""Snapshots of a whole shard: a directory (or one tar file) that restores to equal state.

Layout: `manifest.msgpack` (schemas, id allocation, tombstones, payload overrides,
applied offsets and counters) plus, per collection, hard links to its sealed segment
directories and the memtable rows. Sealed files are immutable, so linking is safe.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from vecstore.cluster.errors import MalformedCommand, VecStoreError
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.collection import Collection
from vecstore.shard.memtable import MemTable
from vecstore.shard.segment import SealedSegment

if TYPE_CHECKING:
    from vecstore.shard.state import IngestCounters, Shard

SNAPSHOT_FORMAT = 1


def write_snapshot(shard: Shard, path: Path) -> None:
    """Write the shard's state into a new directory `path` (consistent: applies wait)."""
    path.mkdir(parents=True)
    with ExitStack() as stack:
        stack.enter_context(shard._lock)
        collections = sorted(shard.collections.items())
        for _, collection in collections:
            stack.enter_context(collection.lock.read())
        manifest: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "applied": [[t, p, o] for (t, p), o in sorted(shard.applied.items())],
            "counters": [
                [t, p, c.applied, c.skipped, c.rejected] for (t, p), c in sorted(shard.counters.items())
            ],
            "collections": [
                _write_collection(collection, path / f"collection-{number}")
                for number, (_, collection) in enumerate(collections)
            ],
        }
    (path / "manifest.msgpack").write_bytes(msgpack.packb(manifest))


def _write_collection(collection: Collection, directory: Path) -> dict[str, Any]:
    directory.mkdir()
    segments = []
    for segment in collection.sealed:
        target = directory / segment.path.name
        _link_tree(segment.path, target)
        segments.append(segment.path.name)
    memtables = [m for m in [*collection.frozen, collection.active] if m.count]
    rows_ids: list[Any] = []
    rows_payloads: list[Any] = []
    vectors = [m.vectors() for m in memtables]
    for memtable in memtables:
        rows_ids.extend(memtable.ext_ids)
        rows_payloads.extend(memtable.payloads)
    if vectors:
        np.save(directory / "memtable-vectors.npy", np.concatenate(vectors))
    return {
        "schema": collection.schema.to_dict(),
        "next_key": collection.next_key,
        "digest_sum": collection.digest_sum,
        "tombstones": sorted(collection.tombstones),
        "overrides": [[k, v] for k, v in sorted(collection.overrides.items())],
        "segments": segments,
        "memtable_key_lo": memtables[0].key_lo if memtables else collection.next_key,
        "memtable_ids": rows_ids,
        "memtable_payloads": rows_payloads,
        "directory": directory.name,
    }


def _link_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for item in source.iterdir():
        try:
            os.link(item, target / item.name)
        except OSError:  # another filesystem: copy instead
            shutil.copy2(item, target / item.name)


def restore_snapshot(shard: Shard, path: Path) -> None:
    """Replace the shard's state with the snapshot at `path` (a directory)."""
    try:
        manifest = msgpack.unpackb((path / "manifest.msgpack").read_bytes(), strict_map_key=False)
    except (OSError, ValueError, msgpack.UnpackException) as err:
        raise MalformedCommand(f"snapshot at {path} is unreadable: {err}") from None
    if not isinstance(manifest, dict):
        raise MalformedCommand(f"snapshot manifest at {path} is not a map")
    if manifest.get("format") != SNAPSHOT_FORMAT:
        raise MalformedCommand(f"snapshot format {manifest.get('format')!r} is not supported")
    from vecstore.shard.state import IngestCounters

    with shard._lock:
        # build everything first: a snapshot with broken entries leaves the shard as it was
        restored: dict[str, Collection] = {}
        try:
            for entry in manifest["collections"]:
                collection = _restore_collection(shard, path / entry["directory"], entry)
                restored[collection.schema.name] = collection
            applied = {(t, p): o for t, p, o in manifest["applied"]}
            counters: dict[tuple[str, int], IngestCounters] = {
                (t, p): IngestCounters(a, s, r) for t, p, a, s, r in manifest["counters"]
            }
        except (KeyError, TypeError, ValueError, OSError, VecStoreError) as err:
            for collection in restored.values():
                collection.close()
                shutil.rmtree(collection.directory, ignore_errors=True)
            raise MalformedCommand(f"snapshot at {path} is inconsistent: {err!r}") from None
        for collection in shard.collections.values():
            with collection.lock.write():
                collection.close()
            shutil.rmtree(collection.directory, ignore_errors=True)
        shard.collections = restored
        shard.applied = applied
        shard.counters = counters
    if shard.indexer is not None:
        shard.indexer.wake()


def _restore_collection(shard: Shard, source: Path, entry: dict[str, Any]) -> Collection:
    schema = CollectionSchema.from_dict(entry["schema"])
    directory = shard.settings.data_dir / "collections" / f"{schema.name}.{os.urandom(4).hex()}"
    directory.mkdir(parents=True)
    collection = Collection(schema, shard.settings, shard.scorer, directory)
    for name in entry["segments"]:
        _link_tree(source / name, directory / name)
        collection.sealed.append(SealedSegment(directory / name))
    collection.segment_seq = len(entry["segments"])
    memtable = MemTable(schema, entry["memtable_key_lo"])
    if entry["memtable_ids"]:
        vectors = np.load(source / "memtable-vectors.npy")
        memtable.append(list(entry["memtable_ids"]), vectors, list(entry["memtable_payloads"]))
    collection.active = memtable
    collection.next_key = entry["next_key"]
    collection.digest_sum = entry["digest_sum"]
    collection.tombstones = set(entry["tombstones"])
    collection.overrides = dict(entry["overrides"])
    for container in collection.containers():
        keys = np.asarray(container.keys()).tolist()
        for key in keys:
            if key in collection.tombstones:
                container.dead += 1
            else:
                collection.id_map[container.ext_id(key)] = key
    return collection


def write_snapshot_file(shard: Shard, file: Path) -> None:
    """The snapshot as one uncompressed tar file (what a Raft peer receives)."""
    with tempfile.TemporaryDirectory(dir=shard.settings.data_dir) as scratch:
        directory = Path(scratch) / "snapshot"
        write_snapshot(shard, directory)
        partial = file.with_name(file.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(directory, arcname="snapshot")
        partial.replace(file)


def restore_snapshot_file(shard: Shard, file: Path) -> None:
    """Restore from `write_snapshot_file`'s output."""
    with tempfile.TemporaryDirectory(dir=shard.settings.data_dir) as scratch:
        try:
            with tarfile.open(file, "r") as archive:
                archive.extractall(scratch, filter="data")
        except (OSError, tarfile.TarError) as err:
            raise MalformedCommand(f"snapshot file {file} is unreadable: {err}") from None
        restore_snapshot(shard, Path(scratch) / "snapshot")
