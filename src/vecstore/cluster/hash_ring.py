"""Which shard owns a point: consistent hashing (uhashring, ketama) over shard ids.

Every router and ingest worker builds the same ring from the same spec, so they agree
on placement without talking to each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from uhashring import HashRing

from vecstore.cluster.ids import PointId, point_id_to_routing_key


class ShardRing:
    """A consistent-hash ring over shard ids 0..N-1."""

    def __init__(self, shard_count: int) -> None:
        if shard_count < 1:
            raise ValueError("a ring needs at least one shard")
        self.shard_count = shard_count
        self._ring = HashRing(nodes=[str(i) for i in range(shard_count)])

    def shard_for(self, point_id: PointId) -> int:
        """The shard that stores `point_id`."""
        if self.shard_count == 1:
            return 0
        return int(self._ring.get_node(point_id_to_routing_key(point_id)))

    def group(self, point_ids: Iterable[PointId]) -> dict[int, list[int]]:
        """Positions of `point_ids`, grouped by owning shard."""
        groups: dict[int, list[int]] = defaultdict(list)
        for position, point_id in enumerate(point_ids):
            groups[self.shard_for(point_id)].append(position)
        return dict(groups)
