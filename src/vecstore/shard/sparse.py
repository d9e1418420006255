"""One sparse vector space of one collection on one shard replica: storage, exact search, files.

Scores are exact dot products found through an inverted index (postings per index), never by
scanning every point. Pure and single-threaded: the caller holds the shard's lock; nothing here
awaits, starts a thread or touches the network.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from vecstore.cluster.errors import InvalidRequest, InvalidVector
from vecstore.cluster.ids import PointId, normalize_point_id, point_id_sort_key, point_id_to_routing_key

MAX_SPARSE_INDEX = 2**32 - 1
FORMAT_VERSION = 1
_DIGEST_MODULUS = 2**64
_ARRAY_FILES = ("indptr", "indices", "values", "hashes", "terms", "term_ptr", "post_rows", "post_values")

SparseInput = tuple[Sequence[int] | npt.NDArray[Any], Sequence[float] | npt.NDArray[Any]]
SparseArrays = tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]


def idf_weights(n_total: int, doc_freqs: Iterable[int]) -> list[float]:
    """Qdrant's `idf` modifier: ln((N - n + 0.5) / (n + 0.5) + 1) per index.

    N counts the points that hold this sparse vector (an empty one included), n those of them
    whose vector has the index; both are summed over every shard by the router first.
    """
    return [math.log((n_total - df + 0.5) / (df + 0.5) + 1) for df in doc_freqs]


def validate_sparse(indices: Any, values: Any, what: str = "sparse vector") -> SparseArrays:
    """Check one sparse vector and return it sorted by index as (uint32, float32) arrays.

    Raises InvalidVector saying what was wrong: different lengths, an index outside
    0..2**32-1 or repeated, a value that is not a finite float32.
    """
    try:
        raw_indices = np.asarray(indices)
        raw_values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidVector(f"{what} must have a list of integer indices and a list of numbers") from None
    if raw_indices.ndim != 1 or raw_values.ndim != 1:
        raise InvalidVector(f"{what} must have flat lists of indices and values")
    if len(raw_indices) != len(raw_values):
        raise InvalidVector(
            f"{what} has {len(raw_indices)} indices and {len(raw_values)} values; they must be equally many"
        )
    if len(raw_indices) == 0:
        return np.empty(0, np.uint32), np.empty(0, np.float32)
    if raw_indices.dtype.kind not in "iu":
        raise InvalidVector(f"{what} indices must be integers in 0..{MAX_SPARSE_INDEX}")
    if raw_indices.min() < 0 or raw_indices.max() > MAX_SPARSE_INDEX:
        raise InvalidVector(f"{what} has an index outside 0..{MAX_SPARSE_INDEX}")
    with np.errstate(over="ignore"):
        stored_values = raw_values.astype(np.float32)
    if not np.isfinite(stored_values).all():
        raise InvalidVector(f"{what} has a value that is NaN, infinite or beyond float32 range")
    order = np.argsort(raw_indices, kind="stable")
    sorted_indices = raw_indices[order].astype(np.uint32)
    if len(sorted_indices) > 1 and not (np.diff(sorted_indices) != 0).all():
        repeated = int(sorted_indices[1:][np.diff(sorted_indices) == 0][0])
        raise InvalidVector(f"{what} repeats index {repeated}; indices must be unique")
    return sorted_indices, stored_values[order]


def _point_hash(point_id: PointId, indices: npt.NDArray[np.uint32], values: npt.NDArray[np.float32]) -> int:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(point_id_to_routing_key(point_id).encode())
    digest.update(b"\0")
    digest.update(indices.astype("<u4").tobytes())
    digest.update(values.astype("<f4").tobytes())
    return int.from_bytes(digest.digest(), "little")


def _gather_positions(indptr: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Positions in the CSR data arrays of `rows`, concatenated in the order of `rows`."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    if len(rows) == 0 or int(lengths.sum()) == 0:
        return np.empty(0, np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


@dataclass
class _Chunk:
    """Immutable CSR rows plus their postings; only `alive` (the tombstones) ever changes."""

    ids: list[PointId]
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float32]
    hashes: npt.NDArray[np.uint64]
    terms: npt.NDArray[np.uint32]
    term_ptr: npt.NDArray[np.int64]
    post_rows: npt.NDArray[np.int64]
    post_values: npt.NDArray[np.float32]
    alive: npt.NDArray[np.bool_]
    live: int
    mapped: bool

    @classmethod
    def build(
        cls,
        ids: list[PointId],
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.uint32],
        values: npt.NDArray[np.float32],
        hashes: npt.NDArray[np.uint64],
    ) -> _Chunk:
        rows = np.repeat(np.arange(len(ids), dtype=np.int64), np.diff(indptr))
        order = np.argsort(indices, kind="stable")  # stable: rows stay ascending within a term
        by_term = indices[order]
        terms, starts = np.unique(by_term, return_index=True)
        term_ptr = np.append(starts.astype(np.int64), np.int64(len(by_term)))
        return cls(
            ids=ids,
            indptr=indptr,
            indices=indices,
            values=values,
            hashes=hashes,
            terms=terms.astype(np.uint32),
            term_ptr=term_ptr,
            post_rows=rows[order],
            post_values=values[order],
            alive=np.ones(len(ids), dtype=np.bool_),
            live=len(ids),
            mapped=False,
        )

    def row(self, row: int) -> SparseArrays:
        start, stop = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.indices[start:stop], self.values[start:stop]

    def live_rows(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.alive).astype(np.int64)

    def postings(self, term: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        position = int(np.searchsorted(self.terms, term))
        if position == len(self.terms) or int(self.terms[position]) != term:
            return None
        start, stop = int(self.term_ptr[position]), int(self.term_ptr[position + 1])
        return self.post_rows[start:stop], self.post_values[start:stop]

    def nbytes(self) -> int:
        arrays = (self.indptr, self.indices, self.values, self.hashes, self.terms, self.term_ptr)
        return sum(a.nbytes for a in (*arrays, self.post_rows, self.post_values, self.alive))


def _concat_rows(parts: Sequence[tuple[_Chunk, npt.NDArray[np.int64]]]) -> _Chunk:
    """A new chunk holding the given rows of the given chunks, in that order."""
    ids: list[PointId] = []
    lengths, indices, values, hashes = [], [], [], []
    for chunk, rows in parts:
        ids.extend(chunk.ids[int(r)] for r in rows)
        positions = _gather_positions(chunk.indptr, rows)
        lengths.append(chunk.indptr[rows + 1] - chunk.indptr[rows])
        indices.append(np.asarray(chunk.indices[positions]))
        values.append(np.asarray(chunk.values[positions]))
        hashes.append(np.asarray(chunk.hashes[rows]))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate([np.empty(0, np.int64), *lengths]))])
    return _Chunk.build(
        ids,
        indptr.astype(np.int64),
        np.concatenate([np.empty(0, np.uint32), *indices]),
        np.concatenate([np.empty(0, np.float32), *values]),
        np.concatenate([np.empty(0, np.uint64), *hashes]),
    )


class SparseVectors:
    """Sparse vectors keyed by point id: upsert, delete, get, exact top-k search, save and load.

    Writes append immutable chunks (each with its own postings) and tombstone replaced rows;
    small trailing chunks are merged so a space holds O(log n) of them. A loaded space keeps
    its memory-mapped base chunk untouched and layers new writes on top.
    """

    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []
        self._location: dict[PointId, tuple[_Chunk, int]] = {}
        self._digest = 0

    def __len__(self) -> int:
        return len(self._location)

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._location

    def ids(self) -> list[PointId]:
        """Every point id held, in the canonical id order (integers first, then UUIDs)."""
        return sorted(self._location, key=point_id_sort_key)

    def get(self, point_id: PointId) -> SparseArrays | None:
        """The point's (indices, values), sorted by index, or None if it has no vector here."""
        found = self._location.get(point_id)
        if found is None:
            return None
        indices, values = found[0].row(found[1])
        return np.array(indices, dtype=np.uint32), np.array(values, dtype=np.float32)

    def digest(self) -> int:
        """Order-independent 64-bit hash of the content, the same whatever the history."""
        return self._digest

    def nbytes(self) -> int:
        return sum(chunk.nbytes() for chunk in self._chunks)

    def upsert(self, ids: Sequence[PointId], vectors: Sequence[SparseInput]) -> None:
        """Store (replace) the vectors of `ids`; within one call a later repeat of an id wins.

        Every vector is validated before anything changes, so a bad one leaves the space as it was.
        """
        if len(ids) != len(vectors):
            raise InvalidRequest(f"{len(ids)} point ids but {len(vectors)} sparse vectors; expected as many")
        latest: dict[PointId, SparseArrays] = {}
        for raw_id, (indices, values) in zip(ids, vectors, strict=True):
            point_id = normalize_point_id(raw_id)
            latest.pop(point_id, None)
            latest[point_id] = validate_sparse(indices, values, f"sparse vector of point {point_id!r}")
        if not latest:
            return
        new_ids = list(latest)
        arrays = list(latest.values())
        hashes = np.array([_point_hash(p, i, v) for p, (i, v) in latest.items()], dtype=np.uint64)
        lengths = np.array([len(i) for i, _ in arrays], dtype=np.int64)
        chunk = _Chunk.build(
            new_ids,
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.concatenate([np.empty(0, np.uint32), *(i for i, _ in arrays)]),
            np.concatenate([np.empty(0, np.float32), *(v for _, v in arrays)]),
            hashes,
        )
        self._forget(new_ids)
        self._chunks.append(chunk)
        for row, point_id in enumerate(new_ids):
            self._location[point_id] = (chunk, row)
        self._digest = (self._digest + int(hashes.sum(dtype=np.uint64))) % _DIGEST_MODULUS
        self._merge_tail()

    def delete(self, ids: Iterable[PointId]) -> int:
        """Remove the vectors of `ids` (absent ones are ignored); returns how many were removed."""
        removed = self._forget(ids)
        self._chunks = [chunk for chunk in self._chunks if chunk.live > 0]
        return removed

    def _forget(self, ids: Iterable[PointId]) -> int:
        removed = 0
        for point_id in ids:
            found = self._location.pop(point_id, None)
            if found is None:
                continue
            chunk, row = found
            chunk.alive[row] = False
            chunk.live -= 1
            self._digest = (self._digest - int(chunk.hashes[row])) % _DIGEST_MODULUS
            removed += 1
        return removed

    def _merge_tail(self) -> None:
        """Merge trailing in-memory chunks while the last is at least half the one before it."""
        self._chunks = [chunk for chunk in self._chunks if chunk.live > 0]
        while len(self._chunks) >= 2:
            previous, last = self._chunks[-2], self._chunks[-1]
            if previous.mapped or 2 * last.live < previous.live:
                return
            merged = _concat_rows([(previous, previous.live_rows()), (last, last.live_rows())])
            self._chunks[-2:] = [merged]
            for row, point_id in enumerate(merged.ids):
                self._location[point_id] = (merged, row)

    def document_frequencies(self, indices: Sequence[int]) -> list[int]:
        """How many points held here have each of `indices` in their vector (for IDF)."""
        counts = []
        for term in indices:
            count = 0
            for chunk in self._chunks:
                found = chunk.postings(int(term))
                if found is not None:
                    count += int(np.count_nonzero(chunk.alive[found[0]]))
            counts.append(count)
        return counts

    def search(
        self,
        query: SparseInput,
        limit: int,
        allowed: Collection[PointId] | None = None,
        idf: Mapping[int, float] | None = None,
    ) -> list[tuple[PointId, float]]:
        """The `limit` best points by dot product with `query`, best first, ties by point id.

        Only points sharing at least one index with the query are returned (as in Qdrant: no
        overlap is no match, while an overlap scoring 0 is one). `allowed` restricts the answer
        to those ids; `idf` maps each query index to the weight its value is multiplied by.
        """
        if limit < 0:
            raise InvalidRequest(f"limit is {limit}; expected a non-negative integer")
        query_indices, query_values = validate_sparse(*query, what="query sparse vector")
        weights = query_values.astype(np.float64)
        if idf is not None:
            missing = [int(i) for i in query_indices if int(i) not in idf]
            if missing:
                raise InvalidRequest(f"no idf weight for query index {missing[0]}")
            weights = weights * np.array([idf[int(i)] for i in query_indices], dtype=np.float64)
        if limit == 0 or len(query_indices) == 0:
            return []
        candidates: list[tuple[_Chunk, npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []
        for chunk in self._chunks:
            rows, scores = self._score_chunk(chunk, query_indices, weights)
            if allowed is not None:
                rows, scores = self._keep_allowed(chunk, rows, scores, allowed)
            if len(rows):
                candidates.append((chunk, rows, scores))
        return self._top(candidates, limit)

    @staticmethod
    def _score_chunk(
        chunk: _Chunk, query_indices: npt.NDArray[np.uint32], weights: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        row_parts, contribution_parts = [], []
        # query indices ascending, so each point's products are summed in index order, in
        # float64, then rounded to float32: the arithmetic of Qdrant's local mode
        for term, weight in zip(query_indices.tolist(), weights.tolist(), strict=True):
            found = chunk.postings(term)
            if found is not None:
                row_parts.append(found[0])
                contribution_parts.append(found[1].astype(np.float64) * weight)
        if not row_parts:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        rows, inverse = np.unique(np.concatenate(row_parts), return_inverse=True)
        sums = np.bincount(inverse, weights=np.concatenate(contribution_parts), minlength=len(rows))
        keep = chunk.alive[rows]
        return rows[keep], sums[keep].astype(np.float32)

    @staticmethod
    def _keep_allowed(
        chunk: _Chunk,
        rows: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float32],
        allowed: Collection[PointId],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        keep = np.fromiter((chunk.ids[r] in allowed for r in rows.tolist()), dtype=np.bool_, count=len(rows))
        return rows[keep], scores[keep]

    @staticmethod
    def _top(
        candidates: list[tuple[_Chunk, npt.NDArray[np.int64], npt.NDArray[np.float32]]], limit: int
    ) -> list[tuple[PointId, float]]:
        if not candidates:
            return []
        all_scores = np.concatenate([scores for _, _, scores in candidates])
        if len(all_scores) > limit:
            # every candidate tied with the limit-th score competes on id, so keep them all
            threshold = np.partition(all_scores, len(all_scores) - limit)[len(all_scores) - limit]
        else:
            threshold = np.float32(-np.inf)
        hits: list[tuple[PointId, float]] = []
        for chunk, rows, scores in candidates:
            keep = scores >= threshold
            hits.extend(
                (chunk.ids[r], s) for r, s in zip(rows[keep].tolist(), scores[keep].tolist(), strict=True)
            )
        return heapq.nsmallest(limit, hits, key=lambda hit: (-hit[1], point_id_sort_key(hit[0])))

    def save(self, directory: Path) -> None:
        """Write the live content, in id order, as plain files into `directory` (must not exist).

        Written into a sibling temporary folder and renamed into place, so `directory` is either
        complete or absent; the files are never modified afterwards (snapshots hard-link them).
        """
        directory = Path(directory)
        if directory.exists():
            raise FileExistsError(f"{directory} exists; sparse vectors are saved into a new folder")
        located = [self._location[point_id] for point_id in self.ids()]
        merged = _concat_rows(_coalesce(located))
        temporary = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex}")
        temporary.mkdir(parents=True)
        for name in _ARRAY_FILES:
            with (temporary / f"{name}.npy").open("wb") as handle:
                np.save(handle, getattr(merged, name))
                handle.flush()
                os.fsync(handle.fileno())
        manifest = {"format": FORMAT_VERSION, "ids": merged.ids, "digest": self._digest}
        with (temporary / "ids.msgpack").open("wb") as handle:
            handle.write(msgpack.packb(manifest))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(directory)
        _fsync_directory(directory.parent)

    @classmethod
    def load(cls, directory: Path) -> SparseVectors:
        """Open what `save` wrote, memory-mapped; the result accepts upserts and deletes."""
        directory = Path(directory)
        manifest = msgpack.unpackb((directory / "ids.msgpack").read_bytes())
        if manifest.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"{directory}: sparse format {manifest.get('format')!r}, expected {FORMAT_VERSION}"
            )
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in _ARRAY_FILES}
        ids: list[PointId] = list(manifest["ids"])
        if len(arrays["indptr"]) != len(ids) + 1 or len(arrays["hashes"]) != len(ids):
            raise ValueError(f"{directory}: {len(ids)} ids do not match the saved arrays")
        space = cls()
        space._digest = int(manifest["digest"])
        if not ids:
            return space
        chunk = _Chunk(
            ids=ids,
            **arrays,
            alive=np.ones(len(ids), dtype=np.bool_),
            live=len(ids),
            mapped=True,
        )
        space._chunks.append(chunk)
        space._location = {point_id: (chunk, row) for row, point_id in enumerate(ids)}
        return space


def _coalesce(located: list[tuple[_Chunk, int]]) -> list[tuple[_Chunk, npt.NDArray[np.int64]]]:
    """Group runs of consecutive rows from the same chunk (fewer numpy calls)."""
    joined: list[tuple[_Chunk, list[int]]] = []
    for chunk, row in located:
        if joined and joined[-1][0] is chunk:
            joined[-1][1].append(row)
        else:
            joined.append((chunk, [row]))
    return [(chunk, np.array(rows, dtype=np.int64)) for chunk, rows in joined]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
