"""The resharding coordinator: moves a cluster from one topology to the next, safely.

It holds no state of its own: every step is a replicated command on the shards, and every
step is idempotent, so a coordinator that dies anywhere is replaced by running the same
command again (`resume`), or the move is rolled back (`abort`) while no shard has cut over.

The steps, from topology E to E+1 (`docs/operations.md`, "Growing and shrinking"):
1. prepare: every shard of either topology learns E+1 (`PrepareMigration`); from then on a
   source records which of its moving points are written, and a target accepts copies.
2. copy: each source's moving points are read from its leader and written to their new
   owner through its log (`MigrateIn`), in batches.
3. fence: each source refuses writes to its moving points (`FenceMoving`, retriable).
4. catch-up: the moving points written since step 1 are copied again (or deleted).
5. cutover: the shards that lose points install E+1 and delete the points they gave away
   in the same apply, then the shards that gain them install E+1, with the Kafka offsets
   of the shards their points come from (`InstallTopology`). In between, no shard accepts
   a write to a moved point (the sources refuse it, the targets do not own it yet), so no
   read anywhere is older than an acknowledged write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from vecstore.cluster.commands import (
    CreateCollection,
    DeletePoints,
    FenceMoving,
    InstallTopology,
    MigrateIn,
    PrepareMigration,
    Selector,
    UpdateAliases,
    Upsert,
    named_columns,
)
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.errors import CollectionNotFound, Conflict, InvalidRequest, Unavailable
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.schema import CollectionSchema
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology, newest_installed
from vecstore.reshard.members import change, members
from vecstore.transport.node_client import NodeClient

log = logging.getLogger(__name__)

PAGE = 1_000
"""Points read from a source, and copied to a target, per request."""

READ = "strong"
"""Every read of the coordinator is linearizable (a log barrier at the leader): a leader
just elected may not have applied its whole log yet, and a stale read of the points
written during the copy would lose them."""

Progress = Callable[[str, int, int], None]
"""`progress(phase, done, total)`: called as a move advances (the CLI draws a bar)."""


@dataclass(frozen=True)
class ShardState:
    """What one shard's leader says of its topology fence."""

    shard_id: int
    epoch: int | None
    """None: no topology installed yet (a cluster never resharded)."""
    pending: Topology | None
    fenced: bool
    topology: Topology | None


@dataclass(frozen=True)
class ClusterState:
    """The topology every shard agrees to route by, and any move under way."""

    current: Topology
    pending: Topology | None
    shards: dict[int, ShardState]
    specs: dict[int, ShardSpec]
    """Every shard known to any topology seen, with its members."""

    @property
    def behind(self) -> list[int]:
        """Shards still preparing the current epoch: a cutover some shards have made."""
        return sorted(
            s.shard_id
            for s in self.shards.values()
            if s.pending is not None and s.pending.epoch <= self.current.epoch
        )

    @property
    def moving(self) -> bool:
        """A move is prepared, or its cutover is unfinished."""
        return self.pending is not None or bool(self.behind)

    def describe(self) -> dict[str, Any]:
        """Plain data for `vecstore shards status` and the admin endpoint."""
        return {
            "epoch": self.current.epoch,
            "shards": list(self.current.ids),
            "moving_to": None if not self.moving else (self.pending or self.current).to_dict(),
            "per_shard": {
                str(shard_id): {
                    "epoch": state.epoch,
                    "pending": None if state.pending is None else state.pending.epoch,
                    "fenced": state.fenced,
                }
                for shard_id, state in sorted(self.shards.items())
            },
        }


class Coordinator:
    """Drives one move at a time from a seed topology (the spec's or a newer one)."""

    def __init__(
        self,
        seed: Topology,
        *,
        access: NodeAccess,
        session: aiohttp.ClientSession | None = None,
        progress: Progress | None = None,
        request_seconds: float = 30.0,
    ) -> None:
        self.seed = seed
        self.access = access
        self.session = session
        self.progress = progress or (lambda _phase, _done, _total: None)
        self.request_seconds = request_seconds
        self._clients: dict[tuple[int, tuple[str, ...]], NodeClient] = {}

    def client(self, shard: ShardSpec) -> NodeClient:
        """A client for a shard's members (one per member list)."""
        key = (shard.id, tuple(node.http for node in shard.nodes))
        if key not in self._clients:
            self._clients[key] = NodeClient(
                list(key[1]),
                session=self.session,
                deadline_seconds=self.request_seconds,
                request_seconds=self.request_seconds,
                access=self.access,
            )
        return self._clients[key]

    async def close(self) -> None:
        """Close the clients (and their session, if they own one)."""
        for client in self._clients.values():
            await client.close()

    # ---- reading the cluster -----------------------------------------------------------

    async def state(self, extra: Iterable[ShardSpec] = ()) -> ClusterState:
        """Ask every shard of the seed topology (and `extra` ones) for its fence; the
        current topology is the newest installed anywhere (the seed if none is)."""
        shards = {shard.id: shard for shard in (*self.seed.shards, *extra)}
        states: dict[int, ShardState] = {}
        current = self.seed
        for _ in range(3):  # a newer topology may name shards the seed does not know
            for shard in list(shards.values()):
                if shard.id not in states:
                    states[shard.id] = await self._shard_state(shard)
            for state in list(states.values()):
                for known in (state.topology, state.pending):
                    if known is not None:
                        for spec in known.shards:
                            shards.setdefault(spec.id, spec)
            current = newest_installed(self.seed, (s.topology for s in states.values() if s.topology))
            if all(shard.id in states for shard in shards.values()):
                break
        pendings = {s.pending for s in states.values() if s.pending is not None}
        pending = max(pendings, key=lambda topology: topology.epoch) if pendings else None
        if pending is not None and pending.epoch <= current.epoch:
            pending = None  # the cutover has begun: some shards are behind (`behind`)
        return ClusterState(current, pending, states, shards)

    async def _shard_state(self, shard: ShardSpec) -> ShardState:
        answer = await self.client(shard).read("/v1/topology", {}, READ)
        ownership = answer.get("ownership")
        if ownership is None:
            return ShardState(shard.id, None, None, False, None)
        pending = ownership.get("pending")
        return ShardState(
            shard.id,
            int(ownership["epoch"]),
            None if pending is None else Topology.from_dict(pending),
            bool(ownership["fenced"]),
            Topology.from_dict(ownership["topology"]),
        )

    # ---- the moves -----------------------------------------------------------------------

    async def install_current(self) -> Topology:
        """Install the current topology on every shard that has none (a cluster never
        resharded). Done before a new shard is started: a router or worker that restarts
        with a spec already naming it then still routes by the installed topology."""
        state = await self.state()
        for shard_id, shard_state in sorted(state.shards.items()):
            if shard_state.epoch is None and shard_id in state.current.ids:
                command = InstallTopology(shard_id, state.current.to_dict())
                await self.client(state.specs[shard_id]).apply(command)
        return state.current

    async def add_shard(self, shard: ShardSpec) -> Topology:
        """Grow by `shard` (its Raft group running and empty); returns the new topology."""
        state = await self.state(extra=[shard])
        _refuse_if_moving(state)
        return await self.move(state.current, state.current.with_shard(shard))

    async def remove_shard(self, shard_id: int) -> Topology:
        """Drain `shard_id` into the others, then drop it from the topology."""
        state = await self.state()
        _refuse_if_moving(state)
        return await self.move(state.current, state.current.without_shard(shard_id))

    async def resume(self) -> Topology:
        """Finish a move a previous coordinator left; the current topology if none."""
        state = await self.state()
        if state.pending is not None:
            return await self.move(state.current, state.pending)
        behind = [state.shards[i] for i in state.behind]
        if behind:  # it died during the cutover, after the copy was complete
            previous = next(s.topology for s in behind if s.topology is not None)
            gaining, losing = _sides(previous, state.current)
            behind_ids = {s.shard_id for s in behind}
            marks = await self._marks(losing, state.specs, state.current.epoch)
            order = [*(i for i in losing if i in behind_ids), *(i for i in behind_ids if i not in losing)]
            await self._cutover(state.current, order, state.specs, gaining, marks)
        return state.current

    async def abort(self) -> Topology:
        """Roll back a move no shard has cut over to; returns the topology kept."""
        state = await self.state()
        if state.behind:
            raise Conflict("the cutover has begun; only `vecstore shards resume` can finish the move")
        if state.pending is None:
            return state.current
        involved = {s.id: s for s in (*state.current.shards, *state.pending.shards)}
        for shard in involved.values():
            await self.client(shard).apply(InstallTopology(shard.id, state.current.to_dict()))
        return state.current

    async def replace_member(
        self,
        old_id: str,
        new: NodeSpec,
        start_new: Callable[[], Awaitable[None]],
        ready_seconds: float = 120.0,
    ) -> Topology:
        """Replace member `old_id` of its shard by `new`: have `new` started (`start_new`),
        add it to the Raft group, wait until it has caught up (from the leader's snapshot
        and log), remove the old member, and publish the members in a new epoch (no point
        moves) so routers reach the new node. An old member the leader cannot reach is
        removed first (`reshard/members.py`: otherwise adding the new one waits for it to
        install the snapshot). Each step can be repeated."""
        current = await self.install_current()
        shard = next((s for s in current.shards if any(n.id == old_id for n in s.nodes)), None)
        if shard is None:
            raise InvalidRequest(f"node {old_id!r} is not a member of any shard at epoch {current.epoch}")
        old = next(n for n in shard.nodes if n.id == old_id)
        client = self.client(shard)
        await start_new()
        seen = await members(client)
        if old.raft in seen and not (seen[old.raft] and await answers(old.http, self.access)):
            self.progress("remove the old member (unreachable)", 0, 4)
            await change(client, "remove", old.raft)
        self.progress("add the new member", 1, 4)
        await change(client, "add", new.raft)
        self.progress("wait for it to catch up", 2, 4)
        await _wait_ready(new.http, ready_seconds, self.access)
        self.progress("remove the old member", 3, 4)
        await change(client, "remove", old.raft)
        members_now = [n for n in shard.nodes if n.id != old_id]
        if all(n.id != new.id for n in members_now):
            members_now.append(new)
        target = Topology(current.epoch + 1, current.with_members(shard.id, members_now).shards)
        specs = {s.id: s for s in target.shards}
        await self._cutover(target, list(target.ids), specs, [], ())
        self.progress("publish the members", 4, 4)
        return target

    async def move(self, current: Topology, target: Topology) -> Topology:
        """Move every point to its owner under `target` (one epoch after `current`)."""
        if target.epoch != current.epoch + 1:
            raise InvalidRequest(f"a move goes one epoch at a time: {current.epoch} -> {target.epoch}")
        involved = {s.id: s for s in (*current.shards, *target.shards)}
        schemas = await self._schemas(current)
        gaining, losing = _sides(current, target)
        for shard_id in gaining:  # targets first: they must know the collections and the epoch
            await self._create(involved[shard_id], schemas)
        for shard_id in [*gaining, *(i for i in involved if i not in gaining)]:
            command = PrepareMigration(shard_id, current.to_dict(), target.to_dict())
            await self.client(involved[shard_id]).apply(command)
        moved = 0
        for shard_id in losing:
            moved += await self._copy_all(involved[shard_id], schemas, current, target)
        for shard_id in losing:
            await self.client(involved[shard_id]).apply(FenceMoving(shard_id, target.epoch))
        for shard_id in losing:
            await self._catch_up(involved[shard_id], schemas, target)
        for shard_id in gaining:  # a collection created during the copy
            await self._create(involved[shard_id], await self._schemas(current))
        marks = await self._marks(losing, involved, target.epoch)
        order = [*losing, *(i for i in involved if i not in losing)]
        await self._cutover(target, order, involved, gaining, marks)
        log.info("moved %d points to epoch %d", moved, target.epoch)
        return target

    # ---- steps ---------------------------------------------------------------------------

    async def _schemas(self, current: Topology) -> list[CollectionSchema]:
        first = self.client(current.shards[0])
        await first.read("/v1/topology", {}, READ)  # a barrier: the leader has applied its log
        answer = await first.request("leader", "GET", "/v1/collections")
        self._aliases = dict(answer.get("aliases", {}))
        return [CollectionSchema.from_dict(entry["schema"]) for entry in answer["collections"]]

    async def _create(self, shard: ShardSpec, schemas: Sequence[CollectionSchema]) -> None:
        """The collections (and the aliases) a shard joining the ring must have."""
        for schema in schemas:
            await self.client(shard).apply(CreateCollection(schema))
        aliases = getattr(self, "_aliases", {})
        if aliases:  # create is idempotent: an alias set again points where it pointed
            actions = [("create", alias, target) for alias, target in sorted(aliases.items())]
            await self.client(shard).apply(UpdateAliases.build(actions))

    async def _copy_all(
        self, source: ShardSpec, schemas: Sequence[CollectionSchema], current: Topology, target: Topology
    ) -> int:
        """Copy every point of `source` that moves under `target`; returns how many."""
        copied = 0
        for schema in schemas:
            total = await self._count(source, schema.name)
            seen = 0
            offset: Any = None
            while True:
                body = {"offset": offset, "limit": PAGE, "with_payload": True, "with_vector": True}
                path = f"/v1/collections/{schema.name}/points/scroll"
                answer = await self.client(source).read(path, body, READ)
                points = answer["points"]
                seen += len(points)
                moving = [p for p in points if target.owner(normalize_point_id(p["id"])) != source.id]
                copied += await self._send_copies(schema, moving, target)
                self.progress(f"copy from shard {source.id}: {schema.name}", seen, max(total, seen))
                offset = answer.get("next_offset")
                if offset is None:
                    break
        return copied

    async def _count(self, shard: ShardSpec, collection: str) -> int:
        path = f"/v1/collections/{collection}/points/count"
        answer = await self.client(shard).read(path, {}, READ)
        return int(answer["count"])

    async def _send_copies(
        self, schema: CollectionSchema, points: Sequence[dict[str, Any]], target: Topology
    ) -> int:
        by_owner: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for point in points:
            by_owner[target.owner(normalize_point_id(point["id"]))].append(point)
        for owner, batch in by_owner.items():
            ids = [p["id"] for p in batch]
            payloads = [p.get("payload") or {} for p in batch]
            if schema.named:  # each point's named vectors (a point may have none)
                vectors = named_columns([p.get("vector") or {} for p in batch])
                upsert = Upsert.build_named(schema.name, ids, vectors, payloads)
            else:
                upsert = Upsert.build(schema.name, ids, [p["vector"] for p in batch], payloads)
            client = self.client(target.shard(owner))
            try:
                await client.apply(MigrateIn(upsert))
            except CollectionNotFound:  # a target that lost the collection it was given: again
                log.warning("shard %d lacks collection %s; creating it again", owner, schema.name)
                await client.apply(CreateCollection(schema))
                await client.apply(MigrateIn(upsert))
        return len(points)

    async def _catch_up(
        self, source: ShardSpec, schemas: Sequence[CollectionSchema], target: Topology
    ) -> None:
        """Re-copy (or delete at the new owner) the moving points written during the copy."""
        for schema in schemas:
            answer = await self.client(source).read("/v1/topology/dirty", {"collection": schema.name}, READ)
            dirty: list[PointId] = [normalize_point_id(i) for i in answer["ids"]]
            for start in range(0, len(dirty), PAGE):
                chunk = dirty[start : start + PAGE]
                body = {"ids": chunk, "with_payload": True, "with_vector": True}
                path = f"/v1/collections/{schema.name}/points/get"
                found = (await self.client(source).read(path, body, READ))["points"]
                await self._send_copies(schema, found, target)
                present = {normalize_point_id(p["id"]) for p in found}
                gone: dict[int, list[PointId]] = defaultdict(list)
                for point_id in chunk:
                    if point_id not in present:
                        gone[target.owner(point_id)].append(point_id)
                for owner, ids in gone.items():
                    delete = DeletePoints(schema.name, Selector(ids=tuple(ids)))
                    await self.client(target.shard(owner)).apply(MigrateIn(delete))
                self.progress(f"catch-up at shard {source.id}: {schema.name}", start + len(chunk), len(dirty))

    async def _marks(
        self, losing: Sequence[int], specs: dict[int, ShardSpec], epoch: int
    ) -> tuple[tuple[int, str, int, int], ...]:
        """The Kafka offsets each losing shard had applied when fenced: every record of a
        moving point at or below them was applied there, and copied. A shard that has cut
        over to `epoch` reports those it had at its cutover (its live ones may have passed
        records of moved points that it refused since)."""
        rows: list[tuple[int, str, int, int]] = []
        for shard_id in losing:
            answer = await self.client(specs[shard_id]).read("/v1/topology", {}, READ)
            ownership = answer.get("ownership") or {}
            handover = ownership.get("handover")
            if ownership.get("epoch") == epoch:
                if handover is None or handover.get("epoch") != epoch:
                    raise Conflict(f"shard {shard_id} cut over to epoch {epoch} without its offsets")
                marks = handover["marks"]
            else:
                marks = ownership.get("ingest_marks", [])
            rows += [(shard_id, str(t), int(p), int(o)) for t, p, o in marks]
        return tuple(rows)

    async def _cutover(
        self,
        topology: Topology,
        order: Sequence[int],
        specs: dict[int, ShardSpec],
        gaining: Sequence[int],
        marks: tuple[tuple[int, str, int, int], ...],
    ) -> None:
        """Install `topology` on the shards in `order` (those that lose points first, then
        those that gain them, with
        the offsets of the shards their points come from)."""
        for position, shard_id in enumerate(order):
            inherit = tuple(row for row in marks if row[0] != shard_id) if shard_id in gaining else ()
            await self.client(specs[shard_id]).apply(InstallTopology(shard_id, topology.to_dict(), inherit))
            self.progress("cutover", position + 1, len(order))


def _refuse_if_moving(state: ClusterState) -> None:
    if state.moving:
        epoch = state.pending.epoch if state.pending is not None else state.current.epoch
        raise Conflict(
            f"a move to epoch {epoch} is under way; `vecstore shards resume` finishes it"
            + ("" if state.behind else ", `vecstore shards abort` rolls it back")
        )


def _sides(before: Topology, after: Topology) -> tuple[list[int], list[int]]:
    """(shards that gain points, shards that lose points) between two topologies."""
    gaining = [i for i in after.ids if i not in before.ids] or list(after.ids)
    losing = [i for i in before.ids if i not in after.ids] or list(before.ids)
    return gaining, losing


async def answers(http: str, access: NodeAccess) -> bool:
    """Whether the node at `http` answers HTTP at all (a stopped node refuses)."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{access.url(http)}/healthz",
                timeout=aiohttp.ClientTimeout(total=2),
                ssl=access.tls if access.tls is not None else True,
            ),
        ):
            return True
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_stopped(http: str, seconds: float, access: NodeAccess) -> None:
    """Until the node at `http` no longer answers (its supervisor stopped it)."""
    deadline = time.monotonic() + seconds
    while await answers(http, access):
        if time.monotonic() > deadline:
            raise Unavailable(f"the node at {http} still answers after {seconds:.0f} s")
        await asyncio.sleep(0.2)


async def _wait_ready(http: str, seconds: float, access: NodeAccess) -> None:
    """Until the node at `http` answers /readyz with 200 (a leader known, caught up)."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(
                    f"{access.url(http)}/readyz",
                    timeout=aiohttp.ClientTimeout(total=2),
                    ssl=access.tls if access.tls is not None else True,
                ) as answer:
                    if answer.status == 200:
                        return
                    last = f"HTTP {answer.status}"
            except (aiohttp.ClientError, TimeoutError) as err:
                last = f"{type(err).__name__}: {err}"
            await asyncio.sleep(0.5)
    raise Unavailable(f"the new member {http} did not catch up within {seconds:.0f} s (last: {last})")


async def wait_for_leader(shard: ShardSpec, access: NodeAccess, seconds: float = 60.0) -> None:
    """Until the shard's Raft group has elected a leader (a new group, just started)."""
    client = NodeClient([node.http for node in shard.nodes], deadline_seconds=seconds, access=access)
    try:
        await asyncio.wait_for(client.find_leader(), seconds)
    finally:
        await client.close()
