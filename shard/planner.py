"""The query planner: estimate how many points a filter matches, then pick a plan.

Few matches -> exact scoring of just those points (one matrix product, recall 1.0).
Many -> HNSW search over-fetching by 1/selectivity, widening until k hits pass.
The estimate evaluates the filter on an evenly spaced sample of live points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId
from vecstore.shard.records import SearchPlan

SAMPLE_SIZE = 512
MIN_SELECTIVITY = 0.001


def choose_plan(
    live_ids: Sequence[tuple[PointId, int]],
    condition: Filter | None,
    matches: Callable[[PointId, int, Filter], bool],
    k: int,
    exact_limit: int,
    force_exact: bool = False,
    live_count: int | None = None,
) -> SearchPlan:
    """Decide between exact and HNSW search for one filter (shared by a batch of queries).

    Without a filter only the number of live points matters: pass `live_count` and no ids.
    """
    live = len(live_ids) if live_count is None else live_count
    if force_exact:
        return SearchPlan("exact", live, live, 0, "exact search was requested")
    if condition is None:
        if live <= k:
            return SearchPlan("exact", live, live, 0, f"collection holds only {live} points (<= k)")
        return SearchPlan("hnsw", live, live, 0, "no filter", fetch=k)
    if live == 0:
        return SearchPlan("exact", 0, 0, 0, "collection is empty")
    step = max(1, math.ceil(live / SAMPLE_SIZE))
    sample = live_ids[::step]
    hits = sum(1 for point_id, key in sample if matches(point_id, key, condition))
    estimate = round(live * hits / len(sample))
    if estimate <= exact_limit:
        return SearchPlan(
            "exact",
            live,
            estimate,
            len(sample),
            f"filter matches about {estimate} points <= exact limit {exact_limit}",
        )
    selectivity = max(hits / len(sample), MIN_SELECTIVITY)
    fetch = math.ceil(k / selectivity * 1.5)
    return SearchPlan(
        "hnsw",
        live,
        estimate,
        len(sample),
        f"filter matches about {estimate} points ({selectivity:.1%}) > exact limit {exact_limit}",
        fetch=fetch,
    )
