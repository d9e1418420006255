"""Clustered synthetic vectors with exact cosine ground truth, for recall measurements.

Deterministic for a seed. Knows nothing of the shard or of usearch: it only makes
arrays and scores result key matrices against brute force.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

SPREAD_RANGE = (1.0, 1.6)
"""Per-cluster noise scale, relative to the unit-variance spread of the centres."""
QUERY_SPREAD = 0.6
"""Queries sit closer to their cluster centre than base rows do (by this factor)."""


@dataclass(frozen=True)
class ClusteredData:
    """Base rows, queries and the exact top-k of every query."""

    base: FloatMatrix
    """(rows, dim) float32; row number r is point id r."""
    labels: IntArray
    """Cluster of each base row (stored as payload)."""
    queries: FloatMatrix
    """(queries, dim) float32, each drawn near a cluster centre."""
    truth: IntArray
    """(queries, k) exact cosine nearest base rows, closest first."""


def make_clustered(rows: int, queries: int, dim: int, clusters: int, k: int, seed: int) -> ClusteredData:
    """Gaussian clusters of uneven size and spread; queries near the centres; exact truth."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    weights = rng.dirichlet(np.ones(clusters))
    spread = rng.uniform(*SPREAD_RANGE, size=clusters).astype(np.float32)
    labels = rng.choice(clusters, size=rows, p=weights).astype(np.int64)
    base = rng.standard_normal((rows, dim), dtype=np.float32)
    base *= spread[labels, None]
    base += centres[labels]
    query_labels = rng.choice(clusters, size=queries, p=weights)
    query_matrix = rng.standard_normal((queries, dim), dtype=np.float32)
    query_matrix *= spread[query_labels, None] * QUERY_SPREAD
    query_matrix += centres[query_labels]
    return ClusteredData(base, labels, query_matrix, exact_neighbours(base, query_matrix, k))


def exact_neighbours(base: FloatMatrix, queries: FloatMatrix, k: int, chunk: int = 128) -> IntArray:
    """Brute-force cosine top-k, a chunk of queries at a time to bound memory."""
    unit_base = base / np.linalg.norm(base, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        similarity = unit_queries[start : start + chunk] @ unit_base.T
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1)
        truth[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return truth


def recall_at_k(found: IntArray, truth: IntArray) -> float:
    """Mean fraction of each query's true top-k found; `found` may be padded with -1."""
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2).sum()
    return float(hits) / truth.size
