"""Value types returned by shard reads: records, scored points, search plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vecstore.cluster.ids import PointId


@dataclass(frozen=True)
class Record:
    """A stored point as returned by get and scroll."""

    id: PointId
    payload: dict[str, Any] | None = None
    """None when the payload was not asked for."""
    vector: list[float] | dict[str, Any] | None = None
    """Full-precision vector (named vectors: name -> vector), None when not asked for."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "payload": self.payload, "vector": self.vector}


@dataclass(frozen=True)
class ScoredPoint:
    """A search hit. `score` is a similarity (cosine, dot) or a euclidean distance (l2)."""

    id: PointId
    score: float
    payload: dict[str, Any] | None = None
    vector: list[float] | dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "score": self.score, "payload": self.payload, "vector": self.vector}


@dataclass(frozen=True)
class SearchPlan:
    """What the planner decided for one search, and why (returned by explain)."""

    kind: str
    """'exact' (score every matching point) or 'hnsw' (graph search, filtered candidates)."""
    live_points: int
    estimated_matches: int
    sample_size: int
    reason: str
    fetch: int = 0
    segments: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "plan": self.kind,
            "live_points": self.live_points,
            "estimated_matches": self.estimated_matches,
            "sample_size": self.sample_size,
            "reason": self.reason,
            "initial_fetch": self.fetch,
            "segments": self.segments,
            **self.details,
        }
