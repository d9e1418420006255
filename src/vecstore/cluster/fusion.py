"""Fusion of ranked result lists (hybrid queries): reciprocal rank fusion and
distribution-based score fusion, with qdrant-client's local mode as the reference for
scores, order and ties (Python's stable sort over first appearance)."""

from __future__ import annotations

from collections.abc import Sequence

from vecstore.cluster.ids import PointId

RRF_K = 2
"""Qdrant's default RRF constant."""

Ranked = Sequence[tuple[PointId, float]]
"""One result list, best first: (point id, score)."""


def rrf(
    lists: Sequence[Ranked], k: int = RRF_K, limit: int = 10, weights: Sequence[float] | None = None
) -> list[tuple[PointId, float]]:
    """Reciprocal rank fusion: each list adds weight / (rank + k) (rank from 1; a weight
    scales the rank as Qdrant does) to a point's score; best `limit` first."""
    if weights is not None and len(weights) != len(lists):
        raise ValueError("rrf weights must be one per fused list")
    scores: dict[PointId, float] = {}
    for position, ranked in enumerate(lists):
        weight = 1.0 if weights is None else float(weights[position])
        for rank, (point_id, _) in enumerate(ranked):
            gained = 0.0 if weight <= 0 else 1 / ((rank + 1.0) / weight + k - 1.0)
            scores[point_id] = scores.get(point_id, 0.0) + gained
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)[:limit]


def dbsf(lists: Sequence[Ranked], limit: int = 10) -> list[tuple[PointId, float]]:
    """Distribution-based score fusion: each list's scores normalised to its mean ± 3
    standard deviations (sample variance; one hit, or equal scores: 0.5), then summed."""
    scores: dict[PointId, float] = {}
    for ranked in lists:
        if not ranked:
            continue
        for point_id, normalized in zip(
            (p for p, _ in ranked), _normalized([s for _, s in ranked]), strict=True
        ):
            scores[point_id] = scores.get(point_id, 0.0) + normalized
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)[:limit]


def _normalized(values: list[float]) -> list[float]:
    if len(values) == 1:
        return [0.5]
    mean = sum(values) / len(values)
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    if variance == 0:
        return [0.5] * len(values)
    spread = variance**0.5
    low, high = mean - 3 * spread, mean + 3 * spread
    return [(value - low) / (high - low) for value in values]
