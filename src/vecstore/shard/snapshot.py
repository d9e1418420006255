"""Snapshots of a whole shard: a directory (or one tar file) that restores to equal state.

Layout: `manifest.msgpack` (schemas, id allocation, tombstones, payload overrides,
applied offsets and counters) plus, per collection, hard links to its sealed segment
directories and the memtable rows. Sealed files are immutable, so linking is safe.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from vecstore.cluster.errors import MalformedCommand, VecStoreError
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard import named
from vecstore.shard.collection import Collection
from vecstore.shard.ingest_fence import IngestFence
from vecstore.shard.memtable import MemTable
from vecstore.shard.multi import MultiVectors
from vecstore.shard.ownership import Ownership
from vecstore.shard.scorer import Scorer
from vecstore.shard.settings import ShardSettings
from vecstore.shard.sparse import SparseVectors

SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class ShardImage:
    """What a snapshot holds: the collections, the ingest fence and the topology fence."""

    collections: list[Collection]
    fence: IngestFence
    ownership: Ownership | None
    aliases: dict[str, str] = field(default_factory=dict)


def write_snapshot(
    path: Path,
    collections: Sequence[Collection],
    fence: IngestFence,
    ownership: Ownership | None,
    aliases: dict[str, str] | None = None,
) -> None:
    """Write the shard's state into the existing, empty directory `path`.
    The caller keeps applies out (the shard holds its lock); each collection is read-locked."""
    with ExitStack() as stack:
        ordered = sorted(collections, key=lambda c: c.schema.name)
        for collection in ordered:
            stack.enter_context(collection.lock.read())
        manifest: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            **fence.to_manifest(),
            "ownership": None if ownership is None else ownership.to_manifest(),
            "aliases": sorted((aliases or {}).items()),
            "collections": [
                _write_collection(collection, path / f"collection-{number}")
                for number, collection in enumerate(ordered)
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
    for name, sparse in collection.sparse.items():
        sparse.save(directory / f"sparse-{name}")
    for name, matrices in collection.multi.items():
        matrices.save(directory / f"multi-{name}")
    return {
        **collection.logical_state(),
        "sparse": sorted(collection.sparse),
        "multi": sorted(collection.multi),
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


def read_snapshot(path: Path, settings: ShardSettings, scorer: Scorer) -> ShardImage:
    """The state in the snapshot directory at `path`, its collections in new directories
    under `settings.data_dir`. All or nothing: MalformedCommand, with nothing left
    on disk, when any part of it does not read back."""
    try:
        manifest = msgpack.unpackb((path / "manifest.msgpack").read_bytes(), strict_map_key=False)
    except (OSError, ValueError, msgpack.UnpackException) as err:
        raise MalformedCommand(f"snapshot at {path} is unreadable: {err}") from None
    if not isinstance(manifest, dict):
        raise MalformedCommand(f"snapshot manifest at {path} is not a map")
    if manifest.get("format") != SNAPSHOT_FORMAT:
        raise MalformedCommand(f"snapshot format {manifest.get('format')!r} is not supported")
    restored: list[Collection] = []
    try:
        for entry in manifest["collections"]:
            # one at a time: those read before a failure are removed below
            restored.append(_read_collection(path / entry["directory"], entry, settings, scorer))  # noqa: PERF401
        fence = IngestFence.from_manifest(manifest)
        raw_ownership = manifest.get("ownership")  # absent from snapshots of older versions
        ownership = None if raw_ownership is None else Ownership.from_manifest(raw_ownership)
    except (KeyError, TypeError, ValueError, OSError, VecStoreError) as err:
        for collection in restored:
            collection.close()
            shutil.rmtree(collection.directory, ignore_errors=True)
        raise MalformedCommand(f"snapshot at {path} is inconsistent: {err!r}") from None
    aliases = {str(alias): str(target) for alias, target in manifest.get("aliases", [])}  # older: none
    return ShardImage(restored, fence, ownership, aliases)


def _read_collection(
    source: Path, entry: dict[str, Any], settings: ShardSettings, scorer: Scorer
) -> Collection:
    schema = CollectionSchema.from_dict(entry["schema"])
    directory = settings.data_dir / "collections" / named.directory_name(schema.name)
    directory.mkdir(parents=True)
    try:
        for name in entry["segments"]:
            _link_tree(source / name, directory / name)
        memtable = MemTable(schema, entry["memtable_key_lo"])
        if entry["memtable_ids"]:
            vectors = np.load(source / "memtable-vectors.npy")
            memtable.append(list(entry["memtable_ids"]), vectors, list(entry["memtable_payloads"]))
        collection = Collection.restored(
            schema,
            settings,
            scorer,
            directory,
            segments=[directory / name for name in entry["segments"]],
            memtable=memtable,
            state=entry,
        )
        for name in entry.get("sparse", []):  # absent from snapshots of older versions
            if name not in collection.sparse:
                raise ValueError(f"snapshot has sparse vector {name!r} that the schema lacks")
            _link_tree(source / f"sparse-{name}", directory / f"sparse-{name}")
            collection.sparse[name] = SparseVectors.load(directory / f"sparse-{name}")
        for name in entry.get("multi", []):
            if name not in collection.multi:
                raise ValueError(f"snapshot has multivector {name!r} that the schema lacks")
            _link_tree(source / f"multi-{name}", directory / f"multi-{name}")
            held = collection.multi[name]
            collection.multi[name] = MultiVectors.load(
                directory / f"multi-{name}", held.dimension, held.metric
            )
        return collection
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def pack(directory: Path, file: Path) -> None:
    """A snapshot directory as one uncompressed tar file, written whole or not at all."""
    partial = file.with_name(file.name + ".partial")
    with tarfile.open(partial, "w") as archive:
        archive.add(directory, arcname="snapshot")
    partial.replace(file)


def unpack(file: Path, scratch: Path) -> Path:
    """Extract `pack`'s output under `scratch`; the snapshot directory."""
    try:
        with tarfile.open(file, "r") as archive:
            archive.extractall(scratch, filter="data")
    except (OSError, tarfile.TarError) as err:
        raise MalformedCommand(f"snapshot file {file} is unreadable: {err}") from None
    return scratch / "snapshot"
