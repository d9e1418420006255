"""Consistent hashing of point ids to shards."""

from __future__ import annotations

import uuid
from collections import Counter

from vecstore.cluster.hash_ring import ShardRing


def test_placement_is_stable_and_balanced() -> None:
    ring = ShardRing(4)
    again = ShardRing(4)
    ids: list[int | str] = [*range(4000), *(str(uuid.UUID(int=i)) for i in range(1, 1000))]
    placement = [ring.shard_for(i) for i in ids]
    assert placement == [again.shard_for(i) for i in ids]
    counts = Counter(placement)
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > len(ids) / 4 * 0.6


def test_group_returns_positions_per_shard() -> None:
    ring = ShardRing(3)
    ids = list(range(100))
    groups = ring.group(ids)
    assert sorted(p for positions in groups.values() for p in positions) == ids
    for shard, positions in groups.items():
        assert all(ring.shard_for(ids[p]) == shard for p in positions)


def test_adding_a_shard_moves_a_minority_of_points() -> None:
    before, after = ShardRing(4), ShardRing(5)
    ids = range(5000)
    moved = sum(before.shard_for(i) != after.shard_for(i) for i in ids)
    assert moved < 0.35 * len(ids)


def test_single_shard() -> None:
    assert ShardRing(1).shard_for("00000000-0000-0000-0000-000000000001") == 0
