"""Exact batch scoring on numpy or cupy behind one interface.

Distances follow usearch's convention (lower is closer): cosine 1-cos, dot 1-x.y,
l2 squared euclidean. One matrix product scores a whole batch of queries.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from vecstore.cluster.errors import Unavailable
from vecstore.cluster.schema import Metric
from vecstore.shard.settings import GpuMode

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]


def _load_cupy() -> Any | None:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # no cupy, no driver, no device: all mean "use numpy"
        return None
    return cupy


class Scorer:
    """Exact distances and top-k on numpy or cupy (`backend` says which)."""

    def __init__(self, mode: GpuMode = GpuMode.AUTO) -> None:
        self._xp: Any = np
        self.backend = "numpy"
        if mode is not GpuMode.OFF:
            cupy = _load_cupy()
            if cupy is not None:
                self._xp = cupy
                self.backend = "cupy"
            elif mode is GpuMode.ON:
                raise Unavailable("VECSTORE_GPU=on but cupy or a CUDA device is not available")
        log.debug("scorer backend %s", self.backend)

    def distances(self, queries: FloatArray, candidates: FloatArray, metric: Metric) -> FloatArray:
        """All query-to-candidate distances, shape (queries, candidates)."""
        xp = self._xp
        q = xp.asarray(queries, dtype=xp.float32)
        c = xp.asarray(candidates, dtype=xp.float32)
        if metric is Metric.COSINE:
            q = q / _safe_norm(xp, q)
            c = c / _safe_norm(xp, c)
            result = 1.0 - q @ c.T
        elif metric is Metric.DOT:
            result = 1.0 - q @ c.T
        else:
            q_sq = (q * q).sum(axis=1)[:, None]
            c_sq = (c * c).sum(axis=1)[None, :]
            result = xp.maximum(q_sq + c_sq - 2.0 * (q @ c.T), 0.0)
        return self._to_numpy(result.astype(xp.float32))

    def distances_normed(
        self, queries: FloatArray, candidates: FloatArray, norms: FloatArray, metric: Metric
    ) -> FloatArray:
        """`distances`, given each candidate's precomputed norm (cosine) or squared norm (l2):
        one matrix product over the candidates as stored, no normalised copy of them."""
        xp = self._xp
        q = xp.asarray(queries, dtype=xp.float32)
        c = xp.asarray(candidates, dtype=xp.float32)
        products = q @ c.T
        if metric is Metric.COSINE:
            n = xp.asarray(norms, dtype=xp.float32)
            products /= _safe_norm(xp, q)
            products /= xp.where(n == 0, 1.0, n)[None, :]
            result = 1.0 - products
        elif metric is Metric.DOT:
            result = 1.0 - products
        else:
            q_sq = (q * q).sum(axis=1)[:, None]
            result = xp.maximum(q_sq + xp.asarray(norms, dtype=xp.float32)[None, :] - 2.0 * products, 0.0)
        return self._to_numpy(result.astype(xp.float32))

    def top_k(
        self, queries: FloatArray, candidates: FloatArray, metric: Metric, k: int
    ) -> tuple[IndexArray, FloatArray]:
        """Per query, the rows of the k closest candidates and their distances, closest first."""
        if candidates.shape[0] == 0 or k <= 0:
            return _empty(queries)
        return _smallest(self.distances(queries, candidates, metric), k)

    def top_k_normed(
        self, queries: FloatArray, candidates: FloatArray, norms: FloatArray, metric: Metric, k: int
    ) -> tuple[IndexArray, FloatArray]:
        """`top_k` with precomputed candidate norms (see `distances_normed`)."""
        if candidates.shape[0] == 0 or k <= 0:
            return _empty(queries)
        return _smallest(self.distances_normed(queries, candidates, norms, metric), k)

    def top_k_each(
        self, queries: FloatArray, candidates: FloatArray, metric: Metric, k: int
    ) -> tuple[IndexArray, FloatArray]:
        """Per query i, the k closest of its own candidates[i] (shape (queries, m, dim)).

        Rows index into each query's m candidates, closest first, ties by row as in top_k.
        """
        xp = self._xp
        q = xp.asarray(queries, dtype=xp.float32)
        c = xp.asarray(candidates, dtype=xp.float32)
        if metric is Metric.COSINE:
            q = q / _safe_norm(xp, q)
            c = c / _safe_norm(xp, c)
            result = 1.0 - xp.einsum("nd,nmd->nm", q, c)
        elif metric is Metric.DOT:
            result = 1.0 - xp.einsum("nd,nmd->nm", q, c)
        else:
            q_sq = (q * q).sum(axis=1)[:, None]
            c_sq = (c * c).sum(axis=2)
            result = xp.maximum(q_sq + c_sq - 2.0 * xp.einsum("nd,nmd->nm", q, c), 0.0)
        return _smallest(self._to_numpy(result.astype(xp.float32)), k)

    def _to_numpy(self, array: Any) -> FloatArray:
        if self._xp is np:
            return np.asarray(array, dtype=np.float32)
        return np.asarray(self._xp.asnumpy(array), dtype=np.float32)


def _empty(queries: FloatArray) -> tuple[IndexArray, FloatArray]:
    empty = (queries.shape[0], 0)
    return np.zeros(empty, dtype=np.int64), np.zeros(empty, dtype=np.float32)


def _smallest(dist: FloatArray, k: int) -> tuple[IndexArray, FloatArray]:
    """Per row of `dist`, the columns of the k smallest and their values, smallest first."""
    count = dist.shape[1]
    take = min(k, count)
    if take < count:
        part = np.argpartition(dist, take - 1, axis=1)[:, :take]
    else:
        part = np.broadcast_to(np.arange(count), dist.shape)
    part_dist = np.take_along_axis(dist, part, axis=1)
    # stable order: by distance, ties by row, so every replica answers identically
    order = np.lexsort((part, part_dist), axis=1)
    rows = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return rows, np.take_along_axis(part_dist, order, axis=1)


def _safe_norm(xp: Any, matrix: Any) -> Any:
    norms = xp.linalg.norm(matrix, axis=-1, keepdims=True)
    return xp.where(norms == 0, 1.0, norms)


def distance_to_score(distances: FloatArray, metric: Metric) -> FloatArray:
    """Turn internal distances into user-facing scores (similarity, or euclidean distance)."""
    if metric is Metric.L2:
        return np.sqrt(np.maximum(distances, 0.0)).astype(np.float32)
    return (1.0 - distances).astype(np.float32)
