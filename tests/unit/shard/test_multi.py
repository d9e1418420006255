"""MultiVectors: exact MaxSim against a brute-force model, persistence and digests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import Metric
from vecstore.shard.multi import MultiVectors


def brute_max_sim(query: np.ndarray, matrix: np.ndarray, metric: Metric) -> float:
    if metric is Metric.L2:  # the square root of the summed closest squared distances
        best = [min(float(np.sum((d - q) ** 2)) for d in matrix) for q in query]
        return float(np.sqrt(sum(best)))
    if metric is Metric.COSINE:
        query = query / np.linalg.norm(query, axis=1, keepdims=True)
        matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return float(sum(max(float(q @ d) for d in matrix) for q in query))


matrices = st.integers(1, 4).flatmap(
    lambda rows: st.lists(
        st.lists(st.floats(-3, 3, allow_nan=False).filter(lambda x: abs(x) > 1e-3), min_size=3, max_size=3),
        min_size=rows,
        max_size=rows,
    )
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.integers(0, 40), matrices, min_size=1, max_size=12),
    matrices,
    st.sampled_from(list(Metric)),
    st.integers(1, 5),
)
def test_search_is_exact_max_sim(
    points: dict[int, list[list[float]]], query: list[list[float]], metric: Metric, k: int
) -> None:
    space = MultiVectors(3, metric)
    space.upsert(list(points), [np.array(m, dtype=np.float32) for m in points.values()])
    q = np.array(query, dtype=np.float32)
    found = space.search(q, k)
    scores: dict[PointId, float] = {
        i: brute_max_sim(q.astype(np.float64), np.array(m, dtype=np.float64), metric)
        for i, m in points.items()
    }
    lower = metric is Metric.L2
    expected = sorted(scores, key=lambda i: (scores[i] if lower else -scores[i], i))[:k]
    # the best k scores (float32 vs float64 near-ties may swap which ids hold them)
    np.testing.assert_allclose([s for _, s in found], [scores[i] for i in expected], rtol=1e-4, atol=1e-4)
    for point_id, score in found:
        assert np.isclose(score, scores[point_id], rtol=1e-4, atol=1e-4)


def test_filter_delete_save_load_and_digest(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    space = MultiVectors(4, Metric.DOT)
    ids = list(range(10))
    space.upsert(ids, [rng.normal(size=(3, 4)).astype(np.float32) for _ in ids])
    space.delete([3, 99])
    assert len(space) == 9 and 3 not in space
    query = rng.normal(size=(2, 4)).astype(np.float32)
    allowed: set[PointId] = {1, 2, 5}
    assert {i for i, _ in space.search(query, 10, allowed)} == allowed
    space.save(tmp_path / "multi")
    loaded = MultiVectors.load(tmp_path / "multi", 4, Metric.DOT)
    assert loaded.digest() == space.digest() and len(loaded) == 9
    assert loaded.search(query, 5) == space.search(query, 5)
    rebuilt = MultiVectors(4, Metric.DOT)
    rebuilt.upsert([i for i in ids if i != 3], [space.get(i) for i in ids if i != 3])  # type: ignore[misc]
    assert rebuilt.digest() == space.digest()
    with pytest.raises(ValueError, match="do not match"):
        MultiVectors.load(tmp_path / "multi", 5, Metric.DOT)
