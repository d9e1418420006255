"""The cluster's topology as data: an epoch, the shards with their members, and the ring.

Routers route by the topology with the highest epoch they have seen. Each shard keeps the
topology it was last told about in its replicated state (`shard.ownership`) and applies a
write only for points it owns under it, so a router or ingest worker with a stale view is
refused (`WrongShard`, carrying the shard's topology) instead of writing to the old owner.

Epoch 0 is the static spec a cluster was created with; every resharding step that changes
who owns a point increments it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.hash_ring import ShardRing
from vecstore.cluster.ids import PointId
from vecstore.cluster.spec import ClusterSpec, NodeSpec, ShardSpec


@dataclass(frozen=True)
class Topology:
    """Who owns what, at one epoch."""

    epoch: int
    shards: tuple[ShardSpec, ...]

    def __post_init__(self) -> None:
        if self.epoch < 0:
            raise InvalidRequest(f"a topology epoch is never negative, got {self.epoch}")
        if not self.shards:
            raise InvalidRequest("a topology has at least one shard")
        ids = [shard.id for shard in self.shards]
        if ids != sorted(set(ids)):
            raise InvalidRequest(f"topology shard ids must be distinct and ascending, got {ids}")

    @classmethod
    def of_spec(cls, spec: ClusterSpec) -> Topology:
        """Epoch 0: the shards of the spec the cluster was created with."""
        return cls(0, tuple(sorted(spec.shards, key=lambda shard: shard.id)))

    @property
    def ids(self) -> tuple[int, ...]:
        """The shard ids, ascending."""
        return tuple(shard.id for shard in self.shards)

    @functools.cached_property
    def ring(self) -> ShardRing:
        """The consistent-hash ring over the shard ids."""
        return ShardRing(self.ids)

    def owner(self, point_id: PointId) -> int:
        """The shard that owns `point_id`."""
        return self.ring.shard_for(point_id)

    def shard(self, shard_id: int) -> ShardSpec:
        """A shard by id; InvalidRequest when it is not in this topology."""
        for shard in self.shards:
            if shard.id == shard_id:
                return shard
        raise InvalidRequest(f"shard {shard_id} is not in the topology at epoch {self.epoch}")

    def with_shard(self, shard: ShardSpec) -> Topology:
        """The next epoch, with one more shard."""
        if shard.id in self.ids:
            raise InvalidRequest(f"shard {shard.id} is already in the topology")
        return Topology(self.epoch + 1, tuple(sorted((*self.shards, shard), key=lambda s: s.id)))

    def without_shard(self, shard_id: int) -> Topology:
        """The next epoch, with one shard fewer (its points go to the others)."""
        self.shard(shard_id)
        if len(self.shards) == 1:
            raise InvalidRequest("cannot remove the last shard")
        return Topology(self.epoch + 1, tuple(s for s in self.shards if s.id != shard_id))

    def with_members(self, shard_id: int, nodes: Iterable[NodeSpec]) -> Topology:
        """The same epoch (ownership is unchanged) with a shard's member list replaced."""
        replaced = ShardSpec(shard_id, tuple(nodes))
        self.shard(shard_id)
        return Topology(self.epoch, tuple(replaced if s.id == shard_id else s for s in self.shards))

    def moving(self, after: Topology, point_id: PointId) -> bool:
        """Whether `point_id` changes owner between this topology and `after`."""
        return self.owner(point_id) != after.owner(point_id)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (msgpack and JSON)."""
        return {
            "epoch": self.epoch,
            "shards": [
                {"id": s.id, "nodes": [{"id": n.id, "raft": n.raft, "http": n.http} for n in s.nodes]}
                for s in self.shards
            ],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Topology:
        """Parse `to_dict`'s output; InvalidRequest when it is malformed."""
        try:
            epoch = raw["epoch"]
            if isinstance(epoch, bool) or not isinstance(epoch, int):
                raise TypeError("epoch must be an integer")
            shards = tuple(
                ShardSpec(
                    int(shard["id"]),
                    tuple(NodeSpec(str(n["id"]), str(n["raft"]), str(n["http"])) for n in shard["nodes"]),
                )
                for shard in raw["shards"]
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidRequest(f"malformed topology: {err!r}") from None
        return cls(epoch, shards)


def newest_installed(seed: Topology, installed: Iterable[Topology]) -> Topology:
    """The topology to route by: the newest of those installed on shards; `seed` (the
    spec's) only when none is. An installed topology beats the seed even at the same epoch:
    the spec may already name a shard that is still joining. Routers, ingest workers and
    the resharding coordinator all decide with this rule."""
    found = list(installed)
    return max(found, key=lambda topology: topology.epoch) if found else seed
