"""Global top-k and page merging against brute force."""

from __future__ import annotations

import random
import uuid

from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.ids import point_id_sort_key
from vecstore.router.merge import merge_pages, merge_top_k


def hits(scores: list[float], first_id: int) -> list[dict[str, object]]:
    return [{"id": first_id + i, "score": s} for i, s in enumerate(scores)]


@given(
    st.lists(st.lists(st.floats(-10, 10, allow_nan=False), max_size=20), min_size=1, max_size=5),
    st.integers(1, 30),
    st.booleans(),
)
def test_merge_top_k_equals_sorting_everything(
    shards: list[list[float]], k: int, higher_is_better: bool
) -> None:
    per_shard = []
    for number, scores in enumerate(shards):
        ordered = sorted(scores, reverse=higher_is_better)
        per_shard.append(hits(ordered, number * 1000))
    everything = [h for shard in per_shard for h in shard]
    sign = -1 if higher_is_better else 1
    expected = sorted(everything, key=lambda h: (sign * h["score"], h["id"]))[:k]  # type: ignore[operator]
    assert merge_top_k(per_shard, k, higher_is_better) == expected


def test_merge_top_k_breaks_ties_by_id() -> None:
    per_shard = [[{"id": 9, "score": 1.0}], [{"id": 3, "score": 1.0}]]
    assert [h["id"] for h in merge_top_k(per_shard, 2, True)] == [3, 9]


def test_one_shard_is_passed_through_unless_it_has_ties() -> None:
    strict = [{"id": 5, "score": 0.9}, {"id": 1, "score": 0.5}, {"id": 7, "score": 0.1}]
    assert merge_top_k([strict], 2, True) == strict[:2]
    tied = [{"id": 8, "score": 0.9}, {"id": 2, "score": 0.9}, {"id": 4, "score": 0.1}]
    assert [h["id"] for h in merge_top_k([tied], 3, True)] == [2, 8, 4]
    ascending = [{"id": 6, "score": 0.1}, {"id": 3, "score": 0.1}]
    assert [h["id"] for h in merge_top_k([ascending], 2, False)] == [3, 6]


def test_merge_pages_orders_ints_before_uuids_and_gives_next_offset() -> None:
    ids: list[int | str] = [*range(10), *(str(uuid.UUID(int=i * 7919)) for i in range(1, 6))]
    random.Random(3).shuffle(ids)
    shards: list[list[dict[str, object]]] = [[], [], []]
    for number, point_id in enumerate(ids):
        shards[number % 3].append({"id": point_id})
    for shard in shards:
        shard.sort(key=lambda p: point_id_sort_key(p["id"]))  # type: ignore[arg-type]
    ordered = sorted(ids, key=point_id_sort_key)
    page, next_offset = merge_pages(shards, 6)
    assert [p["id"] for p in page] == ordered[:6]
    assert next_offset == ordered[6]
    page, next_offset = merge_pages(shards, 100)
    assert [p["id"] for p in page] == ordered
    assert next_offset is None
