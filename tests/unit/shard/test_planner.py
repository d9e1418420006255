"""The planner's choice between exact scoring and HNSW, from a sampled estimate."""

from __future__ import annotations

from vecstore.cluster.filters import Compare, CompareOp
from vecstore.cluster.ids import PointId
from vecstore.shard.planner import SAMPLE_SIZE, choose_plan

LIVE: list[tuple[PointId, int]] = [(i, i) for i in range(10_000)]


CONDITION = Compare("x", CompareOp.EQ, 1)


def test_forced_exact_and_small_collections_are_exact() -> None:
    assert choose_plan(LIVE, None, lambda *_: True, 10, 100, force_exact=True).kind == "exact"
    assert choose_plan(LIVE[:5], None, lambda *_: True, 10, 100).kind == "exact"
    assert choose_plan([], CONDITION, lambda *_: True, 10, 100).kind == "exact"


def test_no_filter_on_a_big_collection_is_hnsw_fetching_k() -> None:
    plan = choose_plan(LIVE, None, lambda *_: True, 10, 100)
    assert (plan.kind, plan.fetch, plan.estimated_matches) == ("hnsw", 10, len(LIVE))


def test_selective_filter_is_exact() -> None:
    plan = choose_plan(LIVE, CONDITION, lambda _i, key, _c: key < 50, 10, 100)
    assert plan.kind == "exact"
    assert plan.estimated_matches <= 100
    assert plan.sample_size <= SAMPLE_SIZE


def test_broad_filter_is_hnsw_over_fetching_by_selectivity() -> None:
    plan = choose_plan(LIVE, CONDITION, lambda _i, key, _c: (key * 2654435761) % 1000 < 250, 10, 100)
    assert plan.kind == "hnsw"
    assert 2_000 <= plan.estimated_matches <= 3_000
    assert 40 <= plan.fetch <= 80
    assert "exact limit 100" in plan.reason


def test_sample_never_exceeds_its_size() -> None:
    for live in (SAMPLE_SIZE, SAMPLE_SIZE + 1, 2 * SAMPLE_SIZE - 1, 9_999):
        plan = choose_plan(LIVE[:live], CONDITION, lambda *_: True, 10, 10**6)
        assert plan.sample_size <= SAMPLE_SIZE
        assert plan.estimated_matches == live
