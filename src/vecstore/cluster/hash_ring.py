"""Which shard owns a point: consistent hashing (uhashring, ketama) over shard ids.

Every router, ingest worker and shard builds the same ring from the same shard ids (the
topology's, `cluster.topology`), so they agree on placement without talking to each
other. Adding a shard id moves only the points the new shard takes (about 1/(S+1)); the
rest keep their owner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from uhashring import HashRing

from vecstore.cluster.ids import PointId, point_id_to_routing_key


class ShardRing:
    """A consistent-hash ring over shard ids: `ShardRing(3)` is ids 0, 1, 2;
    `ShardRing([0, 2, 5])` any set of distinct non-negative ids."""

    def __init__(self, shards: int | Sequence[int]) -> None:
        ids = tuple(range(shards)) if isinstance(shards, int) else tuple(sorted(shards))
        if not ids:
            raise ValueError("a ring needs at least one shard")
        if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
            raise ValueError(f"shard ids must be distinct and non-negative, got {list(ids)}")
        self.ids = ids
        self.shard_count = len(ids)
        self._ring = HashRing(nodes=[str(i) for i in ids])

    def shard_for(self, point_id: PointId) -> int:
        """The shard that stores `point_id`."""
        if self.shard_count == 1:
            return self.ids[0]
        return int(self._ring.get_node(point_id_to_routing_key(point_id)))

    def group(self, point_ids: Iterable[PointId]) -> dict[int, list[int]]:
        """Positions of `point_ids`, grouped by owning shard."""
        groups: dict[int, list[int]] = defaultdict(list)
        for position, point_id in enumerate(point_ids):
            groups[self.shard_for(point_id)].append(position)
        return dict(groups)
