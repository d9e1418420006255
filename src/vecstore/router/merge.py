"""Pure merging of per-shard answers: global top-k by score, and id-ordered pages."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from typing import Any

from vecstore.cluster.ids import point_id_sort_key

Hit = dict[str, Any]


def merge_top_k(per_shard: Sequence[Sequence[Hit]], k: int, higher_is_better: bool) -> list[Hit]:
    """The best k hits over all shards (each shard's list is already best-first).

    Ties are broken by point id so every router returns the same order.
    """
    if len(per_shard) == 1 and _strictly_ordered(per_shard[0], higher_is_better):
        return list(per_shard[0][:k])  # one shard, no ties: its order is the answer
    if higher_is_better:
        return heapq.nsmallest(
            k,
            (hit for hits in per_shard for hit in hits),
            key=lambda hit: (-hit["score"], point_id_sort_key(hit["id"])),
        )
    return heapq.nsmallest(
        k,
        (hit for hits in per_shard for hit in hits),
        key=lambda hit: (hit["score"], point_id_sort_key(hit["id"])),
    )


def _strictly_ordered(hits: Sequence[Hit], higher_is_better: bool) -> bool:
    scores = [hit["score"] for hit in hits]
    if higher_is_better:
        return all(a > b for a, b in itertools.pairwise(scores))
    return all(a < b for a, b in itertools.pairwise(scores))


def merge_pages(per_shard: Sequence[Sequence[Hit]], limit: int) -> tuple[list[Hit], Any]:
    """Merge id-ordered pages from every shard; returns the page and the next offset.

    Each shard was asked for `limit + 1` points from the same offset, so the point after
    the page (if any) is the next page's offset.
    """
    merged = heapq.merge(*per_shard, key=lambda point: point_id_sort_key(point["id"]))
    page: list[Hit] = []
    for point in merged:
        if len(page) == limit:
            return page, point["id"]
        page.append(point)
    return page, None
