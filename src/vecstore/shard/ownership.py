"""Which points this shard owns, part of its replicated state: the topology fence.

A shard with no topology (a cluster never resharded) applies every write it is sent, as
before topologies existed. Once one is installed, a write to a point the shard does not own
at its epoch is refused with `WrongShard` carrying the topology, so a stale router or a
zombie ingest worker cannot write to the old owner after a cutover.

While a migration is prepared (`pending`, the next topology), the shard remembers which of
its points that move away under it were written (`dirty`), so the coordinator re-copies
only those under the short write fence (`fenced`), and accepts copies (`MigrateIn`) of the
points moving to it. Pure data: the shard's lock guards it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vecstore.cluster.errors import Conflict, InvalidRequest, Migrating, WrongShard
from vecstore.cluster.ids import PointId
from vecstore.cluster.topology import Topology


@dataclass
class Ownership:
    """The fence of one shard (all replicas agree: it changes only in apply)."""

    shard_id: int
    topology: Topology
    pending: Topology | None = None
    fenced: bool = False
    dirty: dict[str, set[PointId]] = field(default_factory=dict)
    """collection -> points moving away under `pending` that were written since it was set."""
    previous: Topology | None = None
    """The topology before the current one: its owners are where points here came from."""
    handover: tuple[int, tuple[tuple[str, int, int], ...]] | None = None
    """(epoch, Kafka offsets): what this shard had applied when it installed that epoch, the
    offsets a shard receiving its points inherits (read by a coordinator that resumes)."""

    @property
    def epoch(self) -> int:
        """The epoch writes are checked against."""
        return self.topology.epoch

    def owns(self, point_id: PointId) -> bool:
        """Whether this shard owns `point_id` at its epoch."""
        return self.topology.owner(point_id) == self.shard_id

    def moving_away(self, point_id: PointId) -> bool:
        """Whether `point_id` is this shard's now and another's under the pending topology."""
        return self.pending is not None and self.pending.owner(point_id) != self.shard_id

    def check_writes(self, point_ids: Iterable[PointId]) -> None:
        """Refuse (before anything changes) a write touching a point not owned here, or a
        moving one while fenced."""
        for point_id in point_ids:
            if not self.owns(point_id):
                raise WrongShard(
                    f"shard {self.shard_id} does not own point {point_id!r} at topology epoch "
                    f"{self.epoch}; refresh the topology and retry",
                    self.topology.to_dict(),
                )
            if self.fenced and self.moving_away(point_id):
                assert self.pending is not None
                raise Migrating(
                    f"point {point_id!r} is moving from shard {self.shard_id} to shard "
                    f"{self.pending.owner(point_id)} (epoch {self.pending.epoch}); retry shortly"
                )

    def check_filter_write(self) -> None:
        """A write by filter may touch moving points: refused while the fence is up."""
        if self.fenced and self.pending is not None:
            raise Migrating(
                f"shard {self.shard_id} is moving points to epoch {self.pending.epoch}; writes by "
                "filter wait for the cutover; retry shortly"
            )

    def note_written(self, collection: str, point_ids: Iterable[PointId]) -> None:
        """Remember the moving points a write touched (while a migration is prepared)."""
        if self.pending is None:
            return
        moving = [point_id for point_id in point_ids if self.moving_away(point_id)]
        if moving:
            self.dirty.setdefault(collection, set()).update(moving)

    def check_copy(self, point_ids: Iterable[PointId]) -> None:
        """A `MigrateIn` copy is accepted only for points moving to this shard."""
        if self.pending is None:
            raise Conflict(f"shard {self.shard_id} has no migration prepared; the copy is refused")
        for point_id in point_ids:
            if self.pending.owner(point_id) != self.shard_id:
                raise InvalidRequest(
                    f"point {point_id!r} does not move to shard {self.shard_id} at epoch "
                    f"{self.pending.epoch}; the copy is refused"
                )

    def prepare(self, pending: Topology) -> None:
        """Set the next topology (idempotent for the same one)."""
        if pending.epoch <= self.epoch:
            raise Conflict(
                f"shard {self.shard_id} is at epoch {self.epoch}; a migration to epoch "
                f"{pending.epoch} is stale"
            )
        if self.pending is not None and self.pending != pending:
            raise Conflict(
                f"shard {self.shard_id} already prepares epoch {self.pending.epoch}; finish or abort it "
                "first (`vecstore shards abort`)"
            )
        self.pending = pending

    def fence(self, epoch: int) -> None:
        """Raise the write fence for the prepared epoch (idempotent)."""
        if self.pending is None or self.pending.epoch != epoch:
            prepared = "none" if self.pending is None else f"epoch {self.pending.epoch}"
            raise Conflict(f"shard {self.shard_id} cannot fence epoch {epoch}: prepared is {prepared}")
        self.fenced = True

    def install(self, topology: Topology) -> bool:
        """Make `topology` current; False (nothing changes) when it is older than ours.
        Any prepared migration ends: it is done (the cutover installs its topology) or
        aborted (re-installing the current epoch)."""
        if topology.epoch < self.epoch:
            return False
        if topology.epoch > self.epoch:
            self.previous = self.topology
        self.topology = topology
        self.pending = None
        self.fenced = False
        self.dirty = {}
        return True

    def origin(self, point_id: PointId) -> int | None:
        """The shard `point_id` came from at the last cutover (None before any)."""
        return None if self.previous is None else self.previous.owner(point_id)

    def origins(self) -> list[int]:
        """Every shard points here may have come from at the last cutover (this one, if it
        was in the topology before)."""
        return [self.shard_id] if self.previous is None else list(self.previous.ids)

    def status(self) -> dict[str, Any]:
        """For the coordinator, routers and `vecstore status`."""
        return {
            "shard_id": self.shard_id,
            "epoch": self.epoch,
            "topology": self.topology.to_dict(),
            "pending": None if self.pending is None else self.pending.to_dict(),
            "fenced": self.fenced,
            "dirty": {name: len(ids) for name, ids in sorted(self.dirty.items())},
            "handover": None
            if self.handover is None
            else {"epoch": self.handover[0], "marks": [list(m) for m in self.handover[1]]},
        }

    def digest_row(self) -> list[Any]:
        """What replicas must agree on, for the shard's digest."""
        return [
            self.shard_id,
            self.epoch,
            None if self.pending is None else self.pending.epoch,
            self.fenced,
            sorted([name, len(ids)] for name, ids in self.dirty.items()),
            None if self.previous is None else self.previous.epoch,
        ]

    def to_manifest(self) -> dict[str, Any]:
        """msgpack-able, for snapshots."""
        return {
            "shard_id": self.shard_id,
            "topology": self.topology.to_dict(),
            "pending": None if self.pending is None else self.pending.to_dict(),
            "fenced": self.fenced,
            "dirty": [[name, sorted(ids, key=repr)] for name, ids in sorted(self.dirty.items())],
            "previous": None if self.previous is None else self.previous.to_dict(),
            "handover": None
            if self.handover is None
            else [self.handover[0], [list(m) for m in self.handover[1]]],
        }

    @classmethod
    def from_manifest(cls, raw: dict[str, Any]) -> Ownership:
        """The inverse of `to_manifest`; KeyError, TypeError or ValueError if malformed."""
        pending = raw["pending"]
        previous = raw.get("previous")
        handover = raw.get("handover")
        ownership = cls(
            int(raw["shard_id"]),
            Topology.from_dict(raw["topology"]),
            None if pending is None else Topology.from_dict(pending),
            bool(raw["fenced"]),
            {str(name): set(ids) for name, ids in raw["dirty"]},
            None if previous is None else Topology.from_dict(previous),
        )
        if handover is not None:
            epoch, marks = handover
            ownership.handover = (int(epoch), tuple((str(t), int(p), int(o)) for t, p, o in marks))
        return ownership
