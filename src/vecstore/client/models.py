"""What the client answers: points, hits, write results, collection summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vecstore.cluster.schema import CollectionSchema

PointId = int | str
"""An unsigned 64-bit integer or a UUID string."""

Vector = npt.NDArray[np.float32]
"""A float32 vector: read-only, a view of the bytes the router sent (copy it to change it)."""
NamedVectors = dict[str, Any]
"""A point's named vectors: name -> float32 Vector (dense) or {"indices", "values"} (sparse)."""


@dataclass(frozen=True, slots=True)
class Point:
    """A stored point; `vector` is None unless asked for, `payload` None if not asked for."""

    id: PointId
    payload: dict[str, Any] | None = None
    vector: Vector | NamedVectors | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the point and its score, a similarity for cosine and dot (higher is
    closer) or the euclidean distance for l2 (lower is closer). Hits come best first."""

    id: PointId
    score: float
    payload: dict[str, Any] | None = None
    vector: Vector | NamedVectors | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """An acknowledged write: how many points it touched, and the read token that makes any
    router's later reads see it (`after=`)."""

    count: int
    read_token: str


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A collection's schema and its counts, summed over shards."""

    schema: CollectionSchema
    points: int
    segments: int
    indexing_lag: int
    """Points acknowledged but not yet in an HNSW graph (searches still see them, exactly)."""
    tombstones: int


def point_of(raw: dict[str, Any]) -> Point:
    """A Point from an answer's point object."""
    return Point(raw["id"], raw.get("payload"), _vector_of(raw.get("vector")))


def hit_of(raw: dict[str, Any]) -> Hit:
    """A Hit from an answer's hit object."""
    return Hit(raw["id"], float(raw["score"]), raw.get("payload"), _vector_of(raw.get("vector")))


def _vector_of(value: object) -> Vector | NamedVectors | None:
    if value is None or isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):  # named vectors; sparse ones stay {"indices", "values"}
        return {
            name: vector if isinstance(vector, dict) else np.asarray(vector, dtype=np.float32)
            for name, vector in value.items()
        }
    return np.asarray(value, dtype=np.float32)  # an older router ignores binary_vectors
