"""The query planner: count how many points a filter matches, then pick a plan.

Few matches -> exact scoring of just those points (one matrix product, recall 1.0).
Many -> HNSW search over-fetching by 1/selectivity, widening until k hits pass.
The count is exact: the payload index evaluates the filter on every live point.
"""

from __future__ import annotations

import math

from vecstore.cluster.filters import Filter
from vecstore.shard.records import SearchPlan

MIN_SELECTIVITY = 0.001
OVER_FETCH = 3.0
"""HNSW candidates fetched per wanted hit, beyond the inverse selectivity."""


def choose_plan(
    live: int,
    condition: Filter | None,
    matching: int,
    k: int,
    exact_limit: int,
    force_exact: bool = False,
) -> SearchPlan:
    """Decide between exact and HNSW search for one filter (shared by a batch of queries).

    `matching` is how many live points pass the filter (`live` without one).
    """
    if force_exact:
        return SearchPlan("exact", live, matching, 0, "exact search was requested")
    if condition is None:
        if live <= k:
            return SearchPlan("exact", live, live, 0, f"collection holds only {live} points (<= k)")
        return SearchPlan("hnsw", live, live, 0, "no filter", fetch=k)
    if live == 0:
        return SearchPlan("exact", 0, 0, 0, "collection is empty")
    if matching <= exact_limit:
        return SearchPlan(
            "exact", live, matching, live, f"filter matches {matching} points <= exact limit {exact_limit}"
        )
    selectivity = max(matching / live, MIN_SELECTIVITY)
    fetch = math.ceil(k / selectivity * OVER_FETCH)
    return SearchPlan(
        "hnsw",
        live,
        matching,
        live,
        f"filter matches {matching} points ({selectivity:.1%}) > exact limit {exact_limit}",
        fetch=fetch,
    )
