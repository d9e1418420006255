"""rrf and dbsf against qdrant-client's own fusion (the code its local mode runs): random
ranked lists with duplicates across and within lists, empty lists and equal scores must give
the same points, in the same order, with the same scores."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client.http import models
from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

from vecstore.cluster.fusion import dbsf, rrf
from vecstore.cluster.ids import PointId

point_ids = st.one_of(
    st.integers(0, 12),
    st.sampled_from(["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"]),
)
# few distinct scores, so equal scores (and ties after fusion) are common
scores = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.25]), st.floats(-100, 100, allow_nan=False, width=32)
)


@st.composite
def ranked_list(draw: st.DrawFn, unique: bool) -> list[tuple[PointId, float]]:
    ids = draw(st.lists(point_ids, max_size=10, unique=unique))
    values = sorted((draw(scores) for _ in ids), reverse=True)
    return list(zip(ids, values, strict=True))


def lists_of(unique: bool) -> st.SearchStrategy[list[list[tuple[PointId, float]]]]:
    return st.lists(ranked_list(unique), max_size=5)


def as_scored(lists: list[list[tuple[PointId, float]]]) -> list[list[models.ScoredPoint]]:
    return [[models.ScoredPoint(id=p, version=0, score=s) for p, s in ranked] for ranked in lists]


def as_pairs(points: list[models.ScoredPoint]) -> list[tuple[PointId, float]]:
    return [(point.id if isinstance(point.id, int) else str(point.id), point.score) for point in points]


@settings(max_examples=300, deadline=None)
@given(
    lists=lists_of(unique=False),
    k=st.integers(1, 100),
    limit=st.integers(0, 30),
    weighted=st.booleans(),
    data=st.data(),
)
def test_rrf_is_qdrant_rrf(
    lists: list[list[tuple[PointId, float]]], k: int, limit: int, weighted: bool, data: st.DataObject
) -> None:
    weights = None
    if weighted:
        weights = data.draw(
            st.lists(
                st.sampled_from([0.0, -1.0, 0.5, 1.0, 3.0]) | st.floats(0.01, 10),
                min_size=len(lists),
                max_size=len(lists),
            )
        )
    expected = reciprocal_rank_fusion(as_scored(lists), limit=limit, ranking_constant_k=k, weights=weights)
    assert rrf(lists, k=k, limit=limit, weights=weights) == as_pairs(expected)


@settings(max_examples=300, deadline=None)
@given(lists=lists_of(unique=False), limit=st.integers(0, 30))
def test_dbsf_is_qdrant_dbsf(lists: list[list[tuple[PointId, float]]], limit: int) -> None:
    expected = distribution_based_score_fusion(as_scored(lists), limit=limit)
    assert dbsf(lists, limit=limit) == as_pairs(expected)


def test_rrf_default_k_is_qdrants() -> None:
    lists: list[list[tuple[PointId, float]]] = [[(1, 9.0), (2, 8.0)], [(2, 1.0)]]
    expected = reciprocal_rank_fusion(as_scored(lists), limit=10)
    assert rrf(lists) == as_pairs(expected)
    fused = rrf(lists)
    assert [p for p, _ in fused] == [2, 1]
    assert [s for _, s in fused] == pytest.approx([1 / 3 + 1 / 2, 1 / 2])


def test_ties_keep_first_appearance_order() -> None:
    lists: list[list[tuple[PointId, float]]] = [[(5, 1.0), (3, 0.5)], [(3, 7.0), (5, 2.0)]]
    assert [p for p, _ in rrf(lists, k=60)] == [5, 3]
    assert [p for p, _ in dbsf([[(9, 1.0)], [(4, 3.0)]])] == [9, 4]


def test_empty_inputs() -> None:
    assert rrf([], k=2) == []
    assert rrf([[], []], k=2) == []
    assert dbsf([[], []]) == []
    assert dbsf([[(1, 3.0)], []], limit=5) == [(1, 0.5)]


def test_rrf_weights_must_match_the_lists() -> None:
    with pytest.raises(ValueError, match="one per fused list"):
        rrf([[(1, 1.0)]], weights=[1.0, 2.0])
