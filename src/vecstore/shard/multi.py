"""Multivectors (ColBERT-style late interaction) of one named vector on one shard replica.

A point holds a matrix: one row per token, each of the vector's dimension. A query is a
matrix too, scored against a point by MaxSim: the sum over query rows of the best similarity
to any of the point's rows (cosine, dot, or minus the squared euclidean distance; for l2 the
answered score is the square root of the summed distances, lower is better), as Qdrant and
qdrant-client's local mode score them. Search is exact: one matrix product of the query
against every stored row (kept packed, unit rows for cosine), then the best row per point
(`np.maximum.reduceat`) summed over the query; a shard of some hundred thousand rows
answers in milliseconds; keyed by point id, persisted like the sparse
vectors (`save` / `load`, memory-mapped).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgpack
import numpy as np
import numpy.typing as npt

from vecstore.cluster.ids import PointId, point_id_sort_key, point_id_to_routing_key
from vecstore.cluster.schema import Metric

Matrix = npt.NDArray[np.float32]
DIGEST_MOD = 2**64
FORMAT = 1


def _hash(point_id: PointId, matrix: Matrix) -> int:
    digest = hashlib.blake2b(point_id_to_routing_key(point_id).encode(), digest_size=8)
    digest.update(np.int64(matrix.shape[0]).tobytes())
    digest.update(np.ascontiguousarray(matrix, dtype="<f4").tobytes())
    return int.from_bytes(digest.digest(), "little")


class MultiVectors:
    """One multivector space: upserts, deletes, exact MaxSim search, persistence."""

    def __init__(self, dimension: int, metric: Metric) -> None:
        self.dimension = dimension
        self.metric = metric
        self._matrices: dict[PointId, Matrix] = {}
        self._digest = 0
        self._packed: tuple[list[PointId], npt.NDArray[np.float64], npt.NDArray[np.int64]] | None = None
        """Every matrix's rows in one array (unit rows for cosine) and where each point's start:
        one matrix product scores a query against all points. Rebuilt after a change."""

    def __len__(self) -> int:
        return len(self._matrices)

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._matrices

    def ids(self) -> list[PointId]:
        """Every point with a multivector here."""
        return list(self._matrices)

    def get(self, point_id: PointId) -> Matrix | None:
        """One point's matrix (rows as stored)."""
        return self._matrices.get(point_id)

    def upsert(self, ids: Sequence[PointId], matrices: Sequence[Matrix]) -> None:
        """Set the matrices of points (replacing theirs); shapes are the caller's to check."""
        for point_id, matrix in zip(ids, matrices, strict=True):
            self._remove(point_id)
            stored = np.array(matrix, dtype=np.float32, copy=True).reshape(-1, self.dimension)
            self._matrices[point_id] = stored
            self._digest = (self._digest + _hash(point_id, stored)) % DIGEST_MOD
        self._packed = None

    def delete(self, ids: Iterable[PointId]) -> None:
        """Remove the matrices of points (missing ones ignored)."""
        for point_id in ids:
            self._remove(point_id)

    def _remove(self, point_id: PointId) -> None:
        old = self._matrices.pop(point_id, None)
        if old is not None:
            self._digest = (self._digest - _hash(point_id, old)) % DIGEST_MOD
            self._packed = None

    def digest(self) -> int:
        """Order-independent hash of the content."""
        return self._digest

    def search(
        self, query: Matrix, limit: int, allowed: set[PointId] | None = None
    ) -> list[tuple[PointId, float]]:
        """The `limit` best points by MaxSim, best first (ties by id)."""
        query = np.asarray(query, dtype=np.float32).reshape(-1, self.dimension)
        ids, rows, starts = self._pack()
        if not ids:
            return []
        prepared = (_unit(query) if self.metric is Metric.COSINE else query).astype(np.float64)
        products = prepared @ rows.T  # (query vectors, all stored vectors)
        if self.metric is Metric.L2:  # minus the squared distance, as the core compares them
            products = 2 * products - np.einsum("ij,ij->i", rows, rows)[None, :]
            products -= np.einsum("ij,ij->i", prepared, prepared)[:, None]
        best = np.maximum.reduceat(products, starts, axis=1)  # per query vector and point
        scores = best.sum(axis=0)
        if self.metric is Metric.L2:
            scores = np.sqrt(np.abs(scores))
        lower_is_better = self.metric is Metric.L2
        scored = [
            (point_id, float(score))
            for point_id, score in zip(ids, scores.tolist(), strict=True)
            if allowed is None or point_id in allowed
        ]
        scored.sort(key=lambda item: (item[1] if lower_is_better else -item[1], point_id_sort_key(item[0])))
        return scored[:limit]

    def _pack(self) -> tuple[list[PointId], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        if self._packed is None:
            ids = list(self._matrices)
            matrices = [self._matrices[i] for i in ids]
            counts = np.array([len(m) for m in matrices], dtype=np.int64)
            starts = np.zeros(len(ids), dtype=np.int64)
            if len(ids) > 1:
                starts[1:] = np.cumsum(counts)[:-1]
            rows = np.concatenate(matrices) if ids else np.zeros((0, self.dimension), np.float32)
            if self.metric is Metric.COSINE:
                rows = _unit(rows)
            self._packed = (ids, rows.astype(np.float64), starts)
        return self._packed

    def save(self, directory: Path) -> None:
        """Write the space to a new directory, atomically (ids in sort order: the same files on
        every replica)."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ids = sorted(self._matrices, key=point_id_sort_key)
        counts = np.array([self._matrices[i].shape[0] for i in ids], dtype=np.int64)
        rows = (
            np.concatenate([self._matrices[i] for i in ids])
            if ids
            else np.zeros((0, self.dimension), np.float32)
        )
        np.save(tmp / "counts.npy", counts)
        np.save(tmp / "rows.npy", rows.astype(np.float32))
        (tmp / "ids.msgpack").write_bytes(msgpack.packb(ids))
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "dimension": self.dimension}))
        with (tmp / "meta.json").open("rb") as meta:
            os.fsync(meta.fileno())
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path, dimension: int, metric: Metric) -> MultiVectors:
        """A space written by `save` (its rows memory-mapped)."""
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("dimension") != dimension:
            raise ValueError(f"multivector files at {directory} do not match the schema")
        space = cls(dimension, metric)
        ids = msgpack.unpackb((directory / "ids.msgpack").read_bytes())
        counts = np.load(directory / "counts.npy")
        rows = np.load(directory / "rows.npy", mmap_mode="r")
        start = 0
        for point_id, count in zip(ids, counts.tolist(), strict=True):
            matrix = np.asarray(rows[start : start + count])
            space._matrices[point_id] = matrix
            space._digest = (space._digest + _hash(point_id, matrix)) % DIGEST_MOD
            start += count
        return space


def _unit(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit
