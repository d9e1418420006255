"""Sealed segments: immutable files of one key range, read through memory maps.

A segment directory holds the usearch index (opened with view=True), full-precision
vectors, sorted keys, external ids and payloads. It is written once, never modified,
and can therefore be hard-linked into snapshots. Never call `rename` on a view.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
from usearch.index import Index

from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.memtable import FloatMatrix, KeyArray, _batch_arrays, new_index, search_threads

Payload = dict[str, Any]

INDEX_FILE = "index.usearch"
"""The segment's HNSW graph (usearch's own format); absent for rows of named vectors."""


@dataclass(frozen=True)
class PackedPayloads:
    """Payloads already msgpack-packed, in row order: their bytes (in chunks of any size)
    and each one's length. Compaction copies stored payloads this way, unparsed."""

    chunks: list[bytes]
    lengths: npt.NDArray[np.uint64]

    @classmethod
    def join(cls, parts: Sequence[PackedPayloads]) -> PackedPayloads:
        """The payloads of `parts`, one after the other."""
        chunks = [chunk for part in parts for chunk in part.chunks]
        lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.uint64)
        return cls(chunks, lengths.astype(np.uint64))


SEGMENT_FORMAT = 1
PAYLOAD_CHUNK = 1 << 20
"""Bytes of the payload file decoded at a time when streaming every payload."""


class SealedSegment:
    """A read-only, memory-mapped segment."""

    def __init__(self, path: Path) -> None:
        self.path = path
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != SEGMENT_FORMAT:
            raise ValueError(f"segment {path} has unknown format {meta.get('format')!r}")
        self.key_lo: int = meta["key_lo"]
        self.key_hi: int = meta["key_hi"]
        self.dead = 0
        # plain ndarray views of the maps: numpy's memmap subclass costs on every small read
        self._keys: KeyArray = np.load(path / "keys.npy", mmap_mode="r").view(np.ndarray)
        self._vectors: FloatMatrix = np.load(path / "vectors.npy", mmap_mode="r")
        self._offsets: npt.NDArray[np.uint64] = np.load(path / "payload_offsets.npy", mmap_mode="r")
        self._payload_blob = (
            np.memmap(path / "payloads.bin", dtype=np.uint8, mode="r")
            if int(self._offsets[-1])
            else np.zeros(0, np.uint8)
        )
        self.ext_ids: list[PointId] = msgpack.unpackb((path / "ids.msgpack").read_bytes())
        self.count = len(self.ext_ids)
        index_file = path / INDEX_FILE
        self.index: Index | None = Index.restore(str(index_file), view=True) if index_file.exists() else None
        if self.index is not None and "expansion_search" in meta:  # not saved by usearch: views get 64
            # usearch declares this setter apart from its getter, which mypy reads as read-only
            self.index.expansion_search = meta["expansion_search"]  # type: ignore[misc]

    def contains(self, key: int) -> bool:
        """True if `key` is stored in this segment."""
        if not self.key_lo <= key < self.key_hi:
            return False
        row = int(np.searchsorted(self._keys, np.uint64(key)))
        return row < self.count and int(self._keys[row]) == key

    def rows_of(self, keys: KeyArray) -> npt.NDArray[np.int64]:
        """Row numbers of keys known to be in this segment."""
        return self._keys.searchsorted(keys).astype(np.int64)

    def keys(self) -> KeyArray:
        """All keys, ascending (memory-mapped)."""
        return self._keys

    def vectors_of(self, keys: KeyArray) -> FloatMatrix:
        """Full-precision vectors of keys in this segment."""
        return np.asarray(self._vectors[self.rows_of(keys)], dtype=np.float32)

    def all_vectors(self) -> FloatMatrix:
        """All vectors (memory-mapped, in key order)."""
        return self._vectors

    def ext_id(self, key: int) -> PointId:
        """External id of a stored key."""
        # a Python int against uint64 keys would make numpy convert the whole array to float64
        return self.ext_ids[int(np.searchsorted(self._keys, np.uint64(key)))]

    def payload(self, key: int) -> Payload:
        """The payload stored with a key (the collection applies overrides on top)."""
        row = int(np.searchsorted(self._keys, np.uint64(key)))
        start, stop = int(self._offsets[row]), int(self._offsets[row + 1])
        decoded: Payload = msgpack.unpackb(self._payload_blob[start:stop].tobytes())
        return decoded

    def payloads(self) -> Iterator[Payload]:
        """Every stored payload in row order, streamed from the file (overrides not applied)."""
        unpacker = msgpack.Unpacker()
        for start in range(0, len(self._payload_blob), PAYLOAD_CHUNK):
            unpacker.feed(self._payload_blob[start : start + PAYLOAD_CHUNK].tobytes())
            yield from unpacker

    def packed_payloads(self, rows: npt.NDArray[np.int64], replace: Mapping[int, Payload]) -> PackedPayloads:
        """The stored payloads of `rows` (ascending) as packed bytes, without decoding them;
        the rows in `replace` get that payload instead. Consecutive rows are one slice."""
        offsets = np.asarray(self._offsets, dtype=np.int64)
        lengths = (offsets[rows + 1] - offsets[rows]).astype(np.uint64)
        count = len(rows)
        swapped = np.searchsorted(rows, np.fromiter(replace, np.int64, len(replace)))
        bounds = {0, count, *(np.flatnonzero(np.diff(rows) != 1) + 1).tolist()}
        bounds.update(swapped.tolist())
        bounds.update((swapped + 1).tolist())
        chunks: list[bytes] = []
        edges = sorted(b for b in bounds if 0 <= b <= count)
        for start, stop in itertools.pairwise(edges):
            first = int(rows[start])
            if first in replace:  # a run of one row, cut out above
                chunk = msgpack.packb(replace[first])
                lengths[start] = len(chunk)
            else:
                chunk = self._payload_blob[offsets[first] : offsets[int(rows[stop - 1]) + 1]].tobytes()
            chunks.append(chunk)
        return PackedPayloads(chunks, lengths)

    def search(self, queries: FloatMatrix, count: int) -> tuple[KeyArray, FloatMatrix]:
        """HNSW search over the whole segment (tombstones included; callers filter)."""
        if self.index is None or self.count == 0:
            empty = (queries.shape[0], 0)
            return np.zeros(empty, np.uint64), np.zeros(empty, np.float32)
        found = self.index.search(queries, count, threads=search_threads(queries))
        return _batch_arrays(found, queries.shape[0])

    def close(self) -> None:
        """Drop the maps (the files stay until removed)."""
        self.index = None


def write_segment(
    path: Path,
    schema: CollectionSchema,
    key_lo: int,
    key_hi: int,
    keys: KeyArray,
    ext_ids: Sequence[PointId],
    vectors: FloatMatrix,
    payloads: Sequence[Payload] | PackedPayloads,
    index: Index | None = None,
    threads: int = 0,
) -> SealedSegment:
    """Write a segment directory atomically (temp dir, then rename) and open it.

    `index` is an already-built usearch index over exactly these keys; without it one is
    built here (compaction does that in the background thread).
    """
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    np.save(tmp / "keys.npy", np.ascontiguousarray(keys, dtype=np.uint64))
    np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
    packed = payloads if isinstance(payloads, PackedPayloads) else _pack(payloads)
    offsets = np.zeros(len(packed.lengths) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum(packed.lengths, dtype=np.uint64)
    np.save(tmp / "payload_offsets.npy", offsets)
    with (tmp / "payloads.bin").open("wb") as out:
        for chunk in packed.chunks:
            out.write(chunk)
    (tmp / "ids.msgpack").write_bytes(msgpack.packb(list(ext_ids)))
    if not schema.named:
        if index is None:
            index = new_index(schema)
            if len(keys):
                index.add(np.asarray(keys, np.uint64), np.asarray(vectors, np.float32), threads=threads)
        index.save(str(tmp / INDEX_FILE))
    meta = {
        "format": SEGMENT_FORMAT,
        "key_lo": key_lo,
        "key_hi": key_hi,
        "count": len(keys),
        "expansion_search": schema.hnsw.expansion_search,
    }
    (tmp / "meta.json").write_text(json.dumps(meta))
    tmp.rename(path)
    return SealedSegment(path)


def _pack(payloads: Sequence[Payload]) -> PackedPayloads:
    blobs = [msgpack.packb(p) for p in payloads]
    return PackedPayloads(blobs, np.fromiter((len(b) for b in blobs), np.uint64, len(blobs)))
