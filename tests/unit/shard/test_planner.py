"""The planner's choice between exact scoring and HNSW, from the payload index's exact count."""

from __future__ import annotations

import math

from vecstore.cluster.filters import Compare, CompareOp
from vecstore.shard.planner import OVER_FETCH, choose_plan

LIVE = 10_000
CONDITION = Compare("x", CompareOp.EQ, 1)


def test_forced_exact_and_small_collections_are_exact() -> None:
    assert choose_plan(LIVE, None, LIVE, 10, 100, force_exact=True).kind == "exact"
    assert choose_plan(LIVE, CONDITION, 9_000, 10, 100, force_exact=True).kind == "exact"
    assert choose_plan(5, None, 5, 10, 100).kind == "exact"
    assert choose_plan(0, CONDITION, 0, 10, 100).kind == "exact"


def test_no_filter_on_a_big_collection_is_hnsw_fetching_k() -> None:
    plan = choose_plan(LIVE, None, LIVE, 10, 100)
    assert (plan.kind, plan.fetch, plan.estimated_matches) == ("hnsw", 10, LIVE)


def test_selective_filter_is_exact() -> None:
    plan = choose_plan(LIVE, CONDITION, 50, 10, 100)
    assert (plan.kind, plan.estimated_matches, plan.sample_size) == ("exact", 50, LIVE)
    assert choose_plan(LIVE, CONDITION, 100, 10, 100).kind == "exact"  # the limit is inclusive


def test_broad_filter_is_hnsw_over_fetching_by_selectivity() -> None:
    plan = choose_plan(LIVE, CONDITION, 2_500, 10, 100)
    assert plan.kind == "hnsw"
    assert plan.estimated_matches == 2_500
    assert plan.fetch == math.ceil(10 / 0.25 * OVER_FETCH)
    assert "exact limit 100" in plan.reason


def test_tiny_selectivity_is_floored() -> None:
    plan = choose_plan(10**7, CONDITION, 200, 10, 100)
    assert plan.kind == "hnsw"
    assert plan.fetch == math.ceil(10 / 0.001 * OVER_FETCH)  # not 10 / 0.002%
