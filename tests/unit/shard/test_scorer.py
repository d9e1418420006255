"""The exact scorer: usearch's distance conventions, top-k order, and user-facing scores."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from vecstore.cluster.errors import Unavailable
from vecstore.cluster.schema import Metric
from vecstore.shard.memtable import row_norms
from vecstore.shard.scorer import Scorer, _load_cupy, distance_to_score
from vecstore.shard.settings import GpuMode

Matrix = npt.NDArray[np.float32]


def brute_distance(query: Matrix, candidate: Matrix, metric: Metric) -> float:
    q = query.astype(np.float64)
    c = candidate.astype(np.float64)
    if metric is Metric.COSINE:
        return float(1.0 - q @ c / (np.linalg.norm(q) * np.linalg.norm(c)))
    if metric is Metric.DOT:
        return float(1.0 - q @ c)
    return float(((q - c) ** 2).sum())


@pytest.fixture
def data() -> tuple[Matrix, Matrix]:
    rng = np.random.default_rng(7)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    candidates = rng.normal(size=(200, 16)).astype(np.float32)
    return queries, candidates


@pytest.mark.parametrize("metric", list(Metric))
def test_distances_match_brute_force(metric: Metric, data: tuple[Matrix, Matrix]) -> None:
    queries, candidates = data
    got = Scorer(GpuMode.OFF).distances(queries, candidates, metric)
    assert got.shape == (5, 200)
    assert got.dtype == np.float32
    expected = np.array([[brute_distance(q, c, metric) for c in candidates] for q in queries])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", list(Metric))
@pytest.mark.parametrize("k", [1, 10, 199, 200, 500])
def test_top_k_matches_brute_force(metric: Metric, k: int, data: tuple[Matrix, Matrix]) -> None:
    queries, candidates = data
    rows, distances = Scorer(GpuMode.OFF).top_k(queries, candidates, metric, k)
    take = min(k, len(candidates))
    assert rows.shape == distances.shape == (5, take)
    assert rows.dtype == np.int64
    for q, query in enumerate(queries):
        expected = np.array([brute_distance(query, c, metric) for c in candidates])
        assert rows[q].tolist() == np.argsort(expected, kind="stable")[:take].tolist()
        np.testing.assert_allclose(distances[q], expected[rows[q]], rtol=1e-4, atol=1e-4)
        assert (np.diff(distances[q]) >= 0).all()


def test_top_k_breaks_ties_by_row() -> None:
    candidates = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    rows, distances = Scorer(GpuMode.OFF).top_k(np.array([[1, 0]], np.float32), candidates, Metric.L2, 4)
    assert rows[0].tolist() == [0, 2, 3, 1]
    assert distances[0].tolist() == [0.0, 0.0, 0.0, 2.0]


def test_top_k_of_nothing_is_empty() -> None:
    scorer = Scorer(GpuMode.OFF)
    queries = np.ones((3, 4), np.float32)
    rows, distances = scorer.top_k(queries, np.zeros((0, 4), np.float32), Metric.COSINE, 5)
    assert rows.shape == distances.shape == (3, 0)
    rows, distances = scorer.top_k(queries, np.ones((2, 4), np.float32), Metric.COSINE, 0)
    assert rows.shape == distances.shape == (3, 0)


def test_cosine_of_a_zero_vector_is_finite() -> None:
    distances = Scorer(GpuMode.OFF).distances(
        np.array([[0, 0, 0]], np.float32), np.array([[1, 2, 3], [0, 0, 0]], np.float32), Metric.COSINE
    )
    assert np.isfinite(distances).all()
    assert distances.tolist() == [[1.0, 1.0]]


def test_l2_distance_is_never_negative() -> None:
    big = np.full((1, 64), 1e3, np.float32)
    distances = Scorer(GpuMode.OFF).distances(big, big.copy(), Metric.L2)
    assert distances[0, 0] == 0.0


def test_distance_to_score() -> None:
    distances = np.array([0.0, 0.25, 1.0, 4.0, -1e-7], dtype=np.float32)
    np.testing.assert_allclose(distance_to_score(distances, Metric.COSINE), 1.0 - distances)
    np.testing.assert_allclose(distance_to_score(distances, Metric.DOT), 1.0 - distances)
    np.testing.assert_allclose(distance_to_score(distances, Metric.L2), [0.0, 0.5, 1.0, 2.0, 0.0])
    assert distance_to_score(distances, Metric.L2).dtype == np.float32


def test_scores_are_similarities_or_euclidean_distances(data: tuple[Matrix, Matrix]) -> None:
    queries, candidates = data
    scorer = Scorer(GpuMode.OFF)
    q, c = queries[0], candidates[0]
    cosine = distance_to_score(scorer.distances(q[None], c[None], Metric.COSINE), Metric.COSINE)
    dot = distance_to_score(scorer.distances(q[None], c[None], Metric.DOT), Metric.DOT)
    l2 = distance_to_score(scorer.distances(q[None], c[None], Metric.L2), Metric.L2)
    assert cosine[0, 0] == pytest.approx(q @ c / np.linalg.norm(q) / np.linalg.norm(c), abs=1e-5)
    assert dot[0, 0] == pytest.approx(q @ c, abs=1e-4)
    assert l2[0, 0] == pytest.approx(np.linalg.norm(q - c), abs=1e-4)


def test_backend_selection() -> None:
    assert Scorer(GpuMode.OFF).backend == "numpy"
    if _load_cupy() is None:
        assert Scorer(GpuMode.AUTO).backend == "numpy"
        with pytest.raises(Unavailable, match="cupy"):
            Scorer(GpuMode.ON)
    else:
        assert Scorer(GpuMode.AUTO).backend == "cupy"
        assert Scorer(GpuMode.ON).backend == "cupy"


@pytest.mark.parametrize("metric", list(Metric))
def test_every_available_backend_agrees_with_numpy(metric: Metric, data: tuple[Matrix, Matrix]) -> None:
    queries, candidates = data
    reference = Scorer(GpuMode.OFF).top_k(queries, candidates, metric, 10)
    other = Scorer(GpuMode.AUTO).top_k(queries, candidates, metric, 10)
    assert other[0].tolist() == reference[0].tolist()
    np.testing.assert_allclose(other[1], reference[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", list(Metric))
def test_distances_with_stored_norms_match_brute_force(metric: Metric, data: tuple[Matrix, Matrix]) -> None:
    """The exact tail scan uses norms computed once at append instead of normalising a copy."""
    queries, candidates = data
    candidates = candidates.copy()
    candidates[3] = 0.0  # a zero vector: cosine treats its norm as 1, like `distances`
    scorer = Scorer(GpuMode.OFF)
    got = scorer.distances_normed(queries, candidates, row_norms(candidates, metric), metric)
    expected = scorer.distances(queries, candidates, metric)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    for qi in (0, 4):
        for ci in (0, 57, 199):
            assert got[qi, ci] == pytest.approx(brute_distance(queries[qi], candidates[ci], metric), abs=1e-3)
    rows, distances = scorer.top_k_normed(queries, candidates, row_norms(candidates, metric), metric, 7)
    expected_rows, _ = scorer.top_k(queries, candidates, metric, 7)
    assert rows.shape == (5, 7)
    assert (np.diff(distances, axis=1) >= 0).all()
    assert (rows == expected_rows).mean() > 0.95  # the same neighbours, ties aside
