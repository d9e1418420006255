"""The router's view of the cluster: the topology, one client per shard, and the schemas.

Writes are split by the topology's ring and sent to each shard's leader; searches are
scattered to one replica of every shard and merged. Nothing here touches an index.

The topology starts as the spec's (epoch 0) and is refreshed from the shards whenever one
says the router's is stale: a write refused with `WrongShard` (re-routed after the
refresh), or an answer carrying a newer epoch (the read is asked again). Once a cluster
has been resharded (epoch 1 and later), a shard may still hold points it no longer owns
for a moment around a cutover, so search and get keep a hit only from the shard that owns
it under the router's topology: no point is returned twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DeleteVectors,
    DropCollection,
    NamedMulti,
    NamedSparse,
    NamedVectors,
    OverwritePayload,
    Selector,
    SetPayload,
    SetPayloadIndex,
    UpdateAliases,
    UpdateVectors,
    Upsert,
    validate_payload,
)
from vecstore.cluster.credentials import NO_ACCESS, NodeAccess
from vecstore.cluster.errors import (
    CollectionNotFound,
    InvalidRequest,
    InvalidVector,
    NotImplementedParameter,
    Unavailable,
    VecStoreError,
    WrongShard,
)
from vecstore.cluster.filters import Filter, filter_to_json
from vecstore.cluster.ids import PointId
from vecstore.cluster.profile import NO_PROFILE, Profile
from vecstore.cluster.read_token import format_token
from vecstore.cluster.schema import DEFAULT_VECTOR, CollectionSchema, SparseModifier
from vecstore.cluster.spec import ClusterSpec, ShardSpec
from vecstore.cluster.topology import Topology, newest_installed
from vecstore.router.hybrid import MultiQuery, SparseQuery
from vecstore.router.merge import merge_pages, merge_top_k
from vecstore.router.metrics import RouterMetrics
from vecstore.router.profiler import QueryProfiler
from vecstore.router.write_limits import ShardLimits, check_parts
from vecstore.transport.coalescer import Coalescer
from vecstore.transport.node_client import NodeClient

log = logging.getLogger(__name__)

T = TypeVar("T")
Hit = dict[str, Any]
TOPOLOGY_ATTEMPTS = 4
"""Times an operation is routed before a stale-topology answer is returned to the caller."""


class StaleTopology(Unavailable):
    """A shard answered at a newer topology epoch than the router routes by (refreshed and
    asked again; a 503 only if the topology keeps changing under the request)."""

    code = "stale_topology"

    def __init__(self, epoch: int) -> None:
        super().__init__(f"a shard answered at topology epoch {epoch}, newer than the router's; retry")


class ShardSet:
    """Routes operations to the shards of one cluster."""

    def __init__(self, spec: ClusterSpec, metrics: RouterMetrics, access: NodeAccess = NO_ACCESS) -> None:
        self.spec = spec
        self.metrics = metrics
        self.access = access
        self.topology = Topology.of_spec(spec)
        self.session: aiohttp.ClientSession | None = None
        self.clients: dict[int, NodeClient] = {}
        self._members: dict[int, ShardSpec] = {}
        self.schemas: dict[str, CollectionSchema] = {}
        self._searches: Coalescer[list[float], tuple[list[Hit], list[str], Profile]] = Coalescer()
        self.profiler = QueryProfiler(spec.router, metrics.query_stages)
        self._refreshing = asyncio.Lock()
        self._seeded = True
        self._answered = False
        """Routing by the spec: any topology installed on a shard replaces it, even at
        epoch 0 (the spec may name a shard that is still joining)."""
        self._initial: asyncio.Task[None] | None = None
        self._limits: dict[int, ShardLimits] = {}
        """Per shard, the write limits its nodes reported (learned at its first multi-shard write)."""

    async def start(self) -> None:
        """Open the HTTP session and the per-shard clients."""
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
        self.session = aiohttp.ClientSession(connector=connector)
        self._adopt(self.topology)
        self._initial = asyncio.create_task(self._learn_topology(), name="router-topology")

    async def _learn_topology(self) -> None:
        """At start-up: route by what the shards hold as soon as one answers."""
        for _ in range(120):
            try:
                await self.refresh_topology()
            except VecStoreError as err:
                log.debug("topology not readable yet: %s", err.message)
            if not self._seeded or self._answered:
                return
            await asyncio.sleep(1.0)

    def _adopt(self, topology: Topology) -> None:
        """Route by `topology` from now on: clients for new shards (or new members)."""
        for shard in topology.shards:
            if self._members.get(shard.id) != shard:
                self.clients[shard.id] = NodeClient(
                    [node.http for node in shard.nodes],
                    session=self.session,
                    deadline_seconds=self.spec.router.request_timeout,
                    request_seconds=self.spec.router.request_timeout,
                    on_retry=self.metrics.retries.inc,
                    access=self.access,
                )
                self._members[shard.id] = shard
                self._limits.pop(shard.id, None)
        for gone in set(self.clients) - set(topology.ids):
            del self.clients[gone]
            del self._members[gone]
            self._limits.pop(gone, None)
        if topology.epoch != self.topology.epoch:
            log.info("routing by topology epoch %d: shards %s", topology.epoch, list(topology.ids))
        self.topology = topology

    async def refresh_topology(self, hint: dict[str, Any] | None = None) -> Topology:
        """Adopt the newest topology among `hint` and what every known shard's leader holds."""
        async with self._refreshing:
            known = [] if hint is None else [Topology.from_dict(hint)]
            answers = await self._all_shards(
                "topology", lambda _, client: client.read("/v1/topology", {}, "leader")
            )
            installed = []
            for _, answer in answers:
                if isinstance(answer, VecStoreError):
                    continue
                self._answered = True
                if answer.get("ownership"):
                    installed.append(Topology.from_dict(answer["ownership"]["topology"]))
            if not self._seeded:
                known.append(self.topology)  # never back to an older epoch
            newest = newest_installed(self.topology, known + installed)
            if newest.epoch > self.topology.epoch or (self._seeded and installed):
                self._seeded = False
                self._adopt(newest)
            return self.topology

    @staticmethod
    def _check_epoch(answer: dict[str, Any], routed: Topology) -> None:
        """Raise StaleTopology when a shard answered at a newer epoch than the topology the
        request was routed by (the router may have moved on meanwhile: that does not help
        a request already sent by the old one)."""
        epoch = answer.get("epoch")
        if isinstance(epoch, int) and epoch > routed.epoch:
            raise StaleTopology(epoch)

    async def _fresh(self, read: Callable[[Topology], Awaitable[T]]) -> T:
        """Run a read routed by the current topology; when a shard answers at a newer
        epoch, refresh and read again."""
        for _ in range(TOPOLOGY_ATTEMPTS - 1):
            try:
                return await read(self.topology)
            except StaleTopology:
                await self.refresh_topology()
        return await read(self.topology)

    @staticmethod
    def _owned(shard: int, hits: list[Hit], routed: Topology) -> list[Hit]:
        """The hits `shard` owns under the topology the request was routed by (all of them
        at epoch 0)."""
        if routed.epoch == 0:
            return hits
        return [hit for hit in hits if routed.owner(hit["id"]) == shard]

    async def close(self) -> None:
        """Close the session."""
        if self._initial is not None:
            self._initial.cancel()
        if self.session is not None:
            await self.session.close()

    # ---- helpers -----------------------------------------------------------------------

    async def _on_shard(self, shard: int, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.metrics.shard_seconds.labels(str(shard), operation).observe(time.perf_counter() - started)

    async def _all_shards(
        self,
        operation: str,
        call: Callable[[int, NodeClient], Awaitable[T]],
        routed: Topology | None = None,
    ) -> list[tuple[int, T | VecStoreError]]:
        """`call` on every shard of `routed` (default: the current topology); (shard id,
        answer or error), by shard id."""

        async def one(shard: int, client: NodeClient) -> T | VecStoreError:
            try:
                return await self._on_shard(shard, operation, call(shard, client))
            except VecStoreError as err:
                return err

        ids = (routed or self.topology).ids
        clients = [(shard, self.clients[shard]) for shard in ids if shard in self.clients]
        if len(clients) < len(ids):  # the router moved on to a topology without one of them
            raise StaleTopology(self.topology.epoch)
        if len(clients) == 1:  # no task to start for a single shard
            return [(clients[0][0], await one(*clients[0]))]
        answers = await asyncio.gather(*(one(i, c) for i, c in clients))
        return [(shard, answer) for (shard, _), answer in zip(clients, answers, strict=True)]

    aliases: dict[str, str] = {}  # noqa: RUF012 (replaced per instance by refresh_schemas)
    _aliases_read = 0.0

    async def schema(self, name: str) -> CollectionSchema:
        """The collection's schema (cached; refreshed from shard 0 when unknown)."""
        if name not in self.schemas:
            await self.refresh_schemas()
        if name not in self.schemas:
            raise CollectionNotFound(name)
        return self.schemas[name]

    async def refresh_schemas(self) -> None:
        """Reload every schema from shard 0's leader: a collection-DDL is acknowledged once the
        leader applied it, so a create or drop is seen right after it (a follower may lag)."""
        first = self.clients[self.topology.ids[0]]
        if first.leader is None:
            await first.find_leader()
        answer = await first.request("leader", "GET", "/v1/collections")
        self.schemas = {
            entry["schema"]["name"]: CollectionSchema.from_dict(entry["schema"])
            for entry in answer["collections"]
        }
        self.aliases = dict(answer.get("aliases", {}))
        self._aliases_read = time.monotonic()

    async def resolve(self, name: str) -> str:
        """The collection `name` stands for: itself, or the one the alias `name` points to.
        Aliases are re-read at most every ALIAS_TTL seconds while requests use them (another
        router may have switched one); a name that is neither is left to fail as before."""
        if name in self.schemas and name not in self.aliases:
            return name
        if name in self.aliases and time.monotonic() - self._aliases_read < ALIAS_TTL:
            return self.aliases[name]
        await self.refresh_schemas()
        return self.aliases.get(name, name)

    async def update_aliases(self, actions: Sequence[tuple[str, str, str]]) -> None:
        """Apply alias actions on every shard (each applies all or none), then re-read them."""
        await self._apply_everywhere(UpdateAliases.build(actions))
        await self.refresh_schemas()

    async def _apply_everywhere(self, command: Command) -> list[dict[str, Any]]:
        """A collection DDL on every shard, including shards of a newer topology if a shard
        answers at one (the DDL is idempotent)."""
        done: dict[int, dict[str, Any]] = {}
        for _ in range(TOPOLOGY_ATTEMPTS):
            todo = [shard for shard in self.topology.ids if shard not in done]
            results = await asyncio.gather(
                *(self._on_shard(s, "ddl", self.clients[s].apply(command)) for s in todo),
                return_exceptions=True,
            )
            for shard, result in zip(todo, results, strict=True):
                if isinstance(result, BaseException):
                    raise result
                done[shard] = result
            epochs = [r.get("epoch") for r in done.values()]
            if max((e for e in epochs if isinstance(e, int)), default=0) <= self.topology.epoch:
                break
            await self.refresh_topology()
        return list(done.values())

    # ---- collections -------------------------------------------------------------------

    async def create_collection(self, schema: CollectionSchema) -> bool:
        """Create on every shard (idempotent); True if any shard created it now."""
        results = await self._apply_everywhere(CreateCollection(schema))
        self.schemas[schema.name] = schema
        return any(r.get("created") for r in results)

    async def set_payload_index(self, name: str, key: object, field_schema: object) -> bool:
        """Declare (or with `field_schema` None remove) a payload index on every shard."""
        command = SetPayloadIndex.build(name, key, field_schema)
        await self.schema(name)  # a missing collection is a 404
        results = await self._apply_everywhere(command)
        return any(result.get("changed") for result in results)

    async def drop_collection(self, name: str) -> bool:
        """Drop on every shard; True if it existed."""
        results = await self._apply_everywhere(DropCollection(name))
        self.schemas.pop(name, None)
        return any(r.get("dropped") for r in results)

    async def collection_info(self, name: str) -> dict[str, Any]:
        """Schema and summed counts over shards."""
        schema = await self.schema(name)

        async def gather(routed: Topology) -> dict[str, Any]:
            answers = await self._all_shards(
                "info",
                # counts from a replica that applied this router's writes (read-your-writes)
                lambda _, client: client.request("any", "GET", "/v1/collections", body=client.caught_up()),
                routed,
            )
            totals = {"points": 0, "segments": 0, "indexing_lag": 0, "tombstones": 0}
            fields: dict[str, dict[str, Any]] = {}
            for _, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                self._check_epoch(answer, routed)
                for entry in answer["collections"]:
                    if entry["schema"]["name"] == name:
                        for key in totals:
                            totals[key] += int(entry.get(key, 0))
                        for key, field in entry.get("payload_fields", {}).items():
                            known = fields.setdefault(key, {"schema": field["schema"], "points": 0})
                            known["points"] += int(field["points"])
            return {"schema": schema.to_dict(), **totals, "payload_fields": fields}

        return await self._fresh(gather)

    # ---- writes ------------------------------------------------------------------------

    def read_token(self) -> str:
        """Per shard, the Raft index every write through this router was acknowledged at:
        reads passing it (`after`) through any router see those writes."""
        return format_token({shard: client.applied_index for shard, client in self.clients.items()})

    async def _send(self, shard: int, command: Command) -> dict[str, Any]:
        client = self.clients.get(shard)
        if client is None:  # the router moved on to a topology without this shard: re-route
            raise WrongShard(f"shard {shard} left the topology", self.topology.to_dict())
        return await self._on_shard(shard, "write", client.apply(command))

    async def _write_by_owner(
        self, ids: Sequence[PointId], build: Callable[[list[int]], Command], dry_run: bool = False
    ) -> dict[str, Any]:
        """Send each owning shard the command `build(positions)` for its points, once every
        part passed `_check_before_sending`. Points a shard refuses as not its own (a cutover
        happened) are re-routed after a refresh."""
        total: dict[str, int] = {}
        failed: list[dict[str, Any]] = []
        applied: set[int] = set()
        first_error: VecStoreError | None = None
        todo = list(range(len(ids)))
        deadline = time.monotonic() + self.spec.router.request_timeout
        refreshes = 0
        checked = False
        while True:
            groups: dict[int, list[int]] = defaultdict(list)
            for position in todo:
                groups[self.topology.owner(ids[position])].append(position)
            shards = sorted(groups)
            parts = {shard: build(groups[shard]) for shard in shards}
            if not checked:
                await self._check_before_sending(parts, dry_run)
                checked = True
            results = await asyncio.gather(
                *(self._send(shard, parts[shard]) for shard in shards), return_exceptions=True
            )
            todo, hint = [], None
            retry = refreshes < TOPOLOGY_ATTEMPTS and time.monotonic() < deadline
            for shard, result in zip(shards, results, strict=True):
                if isinstance(result, WrongShard) and retry:
                    todo += groups[shard]
                    hint = result.topology
                elif isinstance(result, VecStoreError):
                    first_error = first_error or result
                    failed += [{"id": ids[p], "error": result.message} for p in groups[shard]]
                    self._limits.pop(shard, None)  # after a refusal, ask again (a node may have restarted)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    applied.add(shard)
                    _add_counts(total, result)
            if not todo:
                break
            behind = hint is not None and int(hint.get("epoch", 0)) < self.topology.epoch
            if behind:  # the new owner has not cut over yet (a moment after the old one)
                await asyncio.sleep(0.05)
            else:
                refreshes += 1
                await self.refresh_topology(hint)
        if first_error is not None:
            first_error.details["failed"] = failed
            first_error.details["partial"] = len(failed) < len(ids)
            first_error.details["applied_shards"] = sorted(applied)
            raise first_error
        return {"status": "ok", **total}

    async def _write_everywhere(self, command: Command, dry_run: bool = False) -> dict[str, Any]:
        """A write by filter: every shard applies it, once it passed `_check_before_sending`
        on every shard. If a shard answers at a newer epoch, the shards of the newer topology
        not yet written are written too (applying such a write twice on a shard changes
        nothing more)."""
        total: dict[str, int] = {}
        failed: list[dict[str, Any]] = []
        first_error: VecStoreError | None = None
        written: set[int] = set()
        for _ in range(TOPOLOGY_ATTEMPTS):
            shards = [shard for shard in self.topology.ids if shard not in written]
            if not written:
                await self._check_before_sending(dict.fromkeys(shards, command), dry_run)
            results = await asyncio.gather(
                *(self._send(shard, command) for shard in shards), return_exceptions=True
            )
            newest = self.topology.epoch
            for shard, result in zip(shards, results, strict=True):
                if isinstance(result, VecStoreError):
                    first_error = first_error or result
                    failed.append({"shard": shard, "error": result.message})
                elif isinstance(result, BaseException):
                    raise result
                else:
                    written.add(shard)
                    _add_counts(total, result)
                    epoch = result.get("epoch")
                    newest = max(newest, epoch if isinstance(epoch, int) else newest)
            if first_error is not None or newest <= self.topology.epoch:
                break
            await self.refresh_topology()
        if first_error is not None:
            first_error.details["failed"] = failed
            first_error.details["partial"] = bool(written)
            first_error.details["applied_shards"] = sorted(written)
            raise first_error
        return {"status": "ok", **total}

    async def upsert(
        self,
        collection: str,
        ids: Sequence[object],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None,
    ) -> dict[str, Any]:
        """Validate, split by shard, write; acknowledged when every shard acknowledged."""
        schema = await self.schema(collection)
        if schema.named:
            raise InvalidVector(
                f"collection {collection!r} has named vectors "
                f"({', '.join(n for n, _ in schema.vectors) or 'none dense'}): "
                "give each point's vectors by name"
            )
        whole = Upsert.build(collection, ids, vectors, payloads)
        if whole.dimension != schema.dimension:
            raise InvalidVector(
                f"vector has {whole.dimension} dimensions, collection {collection!r} expects "
                f"{schema.dimension}"
            )
        matrix = whole.matrix()

        def part(positions: list[int]) -> Command:
            return Upsert(
                collection,
                tuple(whole.ids[p] for p in positions),
                whole.dimension,
                matrix[positions].tobytes(),
                tuple(whole.payloads[p] for p in positions),
            )

        return await self._write_by_owner(whole.ids, part)

    async def upsert_named(
        self,
        collection: str,
        ids: Sequence[object],
        vectors: Mapping[str, tuple[Sequence[int], Any]],
        payloads: Sequence[dict[str, Any] | None] | None,
    ) -> dict[str, Any]:
        """Upsert into a collection of named vectors: `vectors` maps a vector name to (positions
        in `ids` of the points that have it, their vectors)."""
        schema = await self.schema(collection)
        whole = Upsert.build_named(collection, ids, vectors, payloads)
        _check_named(schema, whole.named, whole.sparse, whole.multi)

        def part(positions: list[int]) -> Command:
            positions = sorted(positions)
            return Upsert(
                collection,
                tuple(whole.ids[p] for p in positions),
                0,
                b"",
                tuple(whole.payloads[p] for p in positions),
                _named_subset(whole.named, positions),
                _sparse_subset(whole.sparse, positions),
                _multi_subset(whole.multi, positions),
            )

        return await self._write_by_owner(whole.ids, part)

    async def update_vectors(
        self, collection: str, ids: Sequence[object], vectors: Mapping[str, tuple[Sequence[int], Any]]
    ) -> dict[str, Any]:
        """Set named vectors of existing points, keeping the rest of each point."""
        schema = await self.schema(collection)
        whole = Upsert.build_named(collection, ids, vectors)  # validates ids and vectors
        update = UpdateVectors(collection, whole.ids, whole.named, whole.sparse, whole.multi)
        if schema.named or not update.default_only:  # a collection of one unnamed vector: only it
            _check_named(schema, whole.named, whole.sparse, whole.multi)
        elif whole.named[0].rows and whole.named[0].dimension != schema.dimension:
            raise InvalidVector(
                f"vector dimension error: expected dim: {schema.dimension}, got {whole.named[0].dimension}"
            )

        def part(positions: list[int]) -> Command:
            positions = sorted(positions)
            chosen = tuple(whole.ids[p] for p in positions)
            named = _named_subset(whole.named, positions)
            sparse = _sparse_subset(whole.sparse, positions)
            return UpdateVectors(collection, chosen, named, sparse, _multi_subset(whole.multi, positions))

        return await self._write_by_owner(whole.ids, part)

    async def delete_vectors(
        self, collection: str, selector: Selector, names: Sequence[str]
    ) -> dict[str, Any]:
        """Remove named vectors from the selected points."""
        schema = await self.schema(collection)
        if not schema.named and DEFAULT_VECTOR in names:
            raise NotImplementedParameter(
                f"collection {collection!r} has one unnamed vector, which every point keeps: deleting "
                "it is not supported (delete the points, or use a collection of named vectors)"
            )
        for name in names:
            if name not in {n for n, _ in schema.sparse_vectors}:
                schema.vector(name)
        return await self.change(collection, selector, lambda s: DeleteVectors(collection, s, tuple(names)))

    async def change(
        self,
        collection: str,
        selector: Selector,
        build: Callable[[Selector], Command],
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete or change payloads of points chosen by ids (routed) or filter (everywhere).
        With `dry_run` (payload changes), a write to several shards is first dry-run on
        each: an input error any shard would raise (a merged payload over its limit) then
        stops it everywhere."""
        await self.schema(collection)
        chosen = selector.ids
        if chosen is None:
            return await self._write_everywhere(build(selector), dry_run)

        def part(positions: list[int]) -> Command:
            return build(Selector(ids=tuple(chosen[p] for p in positions)))

        return await self._write_by_owner(chosen, part, dry_run)

    async def _check_before_sending(self, parts: dict[int, Command], dry_run: bool) -> None:
        """For a write to several shards (each applies its part all-or-nothing, the request
        as a whole would not be): every part against its shard's limits, then, for payload
        changes (`dry_run`), a dry run on every shard's leader. An input error any shard
        would raise is raised here, with `partial: false`, before any shard applies anything."""
        if len(parts) < 2:
            return
        await self._learn_limits(list(parts))
        check_parts(parts, self._limits)
        if dry_run:
            await self._dry_run(parts)

    async def _learn_limits(self, shards: list[int]) -> None:
        """Ask one node of each shard whose limits are not known yet (a shard that does not
        answer in time is left unchecked: its write fails or succeeds on its own)."""

        async def learn(shard: int) -> None:
            client = self.clients.get(shard)
            if client is None:
                return
            try:
                async with asyncio.timeout(self.spec.router.shard_timeout):
                    status = await client.request("any", "GET", "/v1/status")
            except (VecStoreError, TimeoutError) as err:
                log.debug("limits of shard %d unknown: %s", shard, err)
                return
            limits = ShardLimits.of_status(status)
            if limits is not None:
                self._limits[shard] = limits

        missing = [shard for shard in shards if shard not in self._limits]
        if missing:
            await asyncio.gather(*(learn(shard) for shard in missing))

    async def _dry_run(self, commands: dict[int, Command]) -> None:
        """Ask each shard's leader whether its command would apply; raise the first error
        (with `partial: false`: nothing was applied anywhere)."""
        shards = sorted(commands)
        results = await asyncio.gather(
            *(self._dry_run_one(shard, commands[shard]) for shard in shards), return_exceptions=True
        )
        for shard, result in zip(shards, results, strict=True):
            if isinstance(result, VecStoreError):
                result.details.update({"shard": shard, "partial": False, "dry_run": True})
                raise result
            if isinstance(result, BaseException):
                raise result

    async def _dry_run_one(self, shard: int, command: Command) -> dict[str, Any]:
        client = self.clients.get(shard)
        if client is None:
            raise WrongShard(f"shard {shard} left the topology", self.topology.to_dict())
        return await self._on_shard(shard, "dry_run", client.dry_run(command))

    async def delete(self, collection: str, selector: Selector) -> dict[str, Any]:
        """Delete points."""
        return await self.change(collection, selector, lambda s: DeletePoints(collection, s))

    async def set_payload(
        self, collection: str, selector: Selector, payload: dict[str, Any], overwrite: bool = False
    ) -> dict[str, Any]:
        """Merge (or overwrite) payloads."""
        validate_payload(payload)
        if overwrite:
            return await self.change(
                collection, selector, lambda s: OverwritePayload(collection, s, payload), dry_run=True
            )
        return await self.change(
            collection, selector, lambda s: SetPayload(collection, s, payload), dry_run=True
        )

    async def delete_payload_keys(
        self, collection: str, selector: Selector, keys: Sequence[str]
    ) -> dict[str, Any]:
        """Remove payload keys."""
        return await self.change(
            collection, selector, lambda s: DeletePayloadKeys(collection, s, tuple(keys))
        )

    # ---- reads -------------------------------------------------------------------------

    async def search(
        self,
        collection: str,
        vectors: list[list[float]],
        k: int,
        condition: Filter | None,
        *,
        consistency: str = "eventual",
        allow_partial: bool = False,
        after: Mapping[int, int] | None = None,
        profile: Profile = NO_PROFILE,
        **options: Any,
    ) -> tuple[list[list[Hit]], list[str]]:
        """Top-k for each query: concurrent identical searches share one scatter-gather.
        `after`: per shard, the Raft index replicas must have applied (a read token).
        `profile` gets the stages: route, queue, scatter (a round_trip per shard, with the
        nodes' stages if `profile.remote`), merge."""
        routing = time.perf_counter()
        schema = await self.schema(collection)
        after = dict(after or {})
        timed, remote = profile.enabled, profile.remote
        key = (
            collection,
            k,
            condition,
            consistency,
            allow_partial,
            tuple(sorted(options.items())),
            tuple(sorted(after.items())),
            timed,
            remote,
        )

        async def run(batch: list[list[float]]) -> list[tuple[list[Hit], list[str], Profile]]:
            # one profile per batch: every search of the batch shared its stages
            shared = Profile(profile.where, remote=remote) if timed else NO_PROFILE
            merged, warnings = await self._scatter_search(
                collection, schema, batch, k, condition, consistency, allow_partial, options, after, shared
            )
            return [(hits, warnings, shared) for hits in merged]

        submitted = time.perf_counter()
        profile.add("route", routing, submitted)
        answers = await self._searches.submit(key, vectors, run)
        if timed:
            shared = answers[0][2]
            profile.add("queue", submitted, shared.origin)  # waiting for an identical search's batch
            profile.extend(shared.stages)
        warnings = sorted({w for _, ws, _ in answers for w in ws})
        return [hits for hits, _, _ in answers], warnings

    async def _scatter_search(
        self,
        collection: str,
        schema: CollectionSchema,
        vectors: list[list[float]],
        k: int,
        condition: Filter | None,
        consistency: str,
        allow_partial: bool,
        options: dict[str, Any],
        after: Mapping[int, int],
        profile: Profile = NO_PROFILE,
    ) -> tuple[list[list[Hit]], list[str]]:
        """Scatter a batch of queries to every shard; merge each query's global top-k."""
        body: dict[str, Any] = {"vectors": vectors, "k": k, **options}
        higher_is_better = schema.searched(options.get("using")).metric.higher_is_better
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        if profile.remote:
            body["profile"] = True
        timeout = self.spec.router.shard_timeout

        async def scatter(routed: Topology) -> tuple[list[list[Hit]], list[str]]:
            async def ask(shard: int, client: NodeClient) -> list[list[Hit]]:
                sent = time.perf_counter()
                try:
                    async with asyncio.timeout(timeout):
                        path = f"/v1/collections/{collection}/search"
                        answer = await client.read(path, body, consistency, after.get(shard))
                except TimeoutError:
                    raise Unavailable(f"shard {shard} did not answer within {timeout}s") from None
                if profile.enabled:
                    answered = time.perf_counter()
                    profile.add("round_trip", sent, answered, where=f"shard {shard}")
                    if "profile" in answer:
                        profile.graft(answer["profile"], sent, answered)
                self._check_epoch(answer, routed)
                return [self._owned(shard, hits, routed) for hits in answer["results"]]

            warnings = []
            usable: list[list[list[Hit]]] = []
            scattered = time.perf_counter()
            answers = await self._all_shards("search", ask, routed)
            profile.add("scatter", scattered)
            for shard, answer in answers:
                if isinstance(answer, VecStoreError):
                    if isinstance(answer, StaleTopology) or not answer.retriable or not allow_partial:
                        raise answer
                    warnings.append(f"shard {shard} is unavailable: {answer.message}")
                else:
                    usable.append(answer)
            merging = time.perf_counter()
            merged = [
                merge_top_k([answer[q] for answer in usable], k, higher_is_better)
                for q in range(len(vectors))
            ]
            profile.add("merge", merging)
            return merged, warnings

        return await self._fresh(scatter)

    async def search_sparse(
        self,
        collection: str,
        query: SparseQuery,
        using: str | None,
        k: int,
        condition: Filter | None,
        consistency: str = "eventual",
        *,
        with_payload: bool = True,
        with_vector: bool | tuple[str, ...] = False,
        score_threshold: float | None = None,
        after: Mapping[int, int] | None = None,
        **_options: Any,
    ) -> list[dict[str, Any]]:
        """Exact top-k of one sparse query over the named sparse vector `using`, on every
        shard, merged. With the idf modifier the query's values are first weighted by the
        collection-wide inverse document frequency of their indices (statistics gathered
        from every shard), as Qdrant scores them."""
        schema = await self.schema(collection)
        if using is None or using not in {name for name, _ in schema.sparse_vectors}:
            if using in {name for name, _ in schema.vectors}:
                raise InvalidRequest(f"vector {using!r} is dense: query it with a list of numbers")
            schema.sparse(str(using or ""))  # raises, naming the vectors there are
        assert using is not None
        indexes = dict(after or {})
        values = list(query.values)
        if schema.sparse(using).modifier is SparseModifier.IDF:
            values = await self._idf_weighted(collection, using, query, consistency, indexes)
        body: dict[str, Any] = {
            "sparse": [{"indices": list(query.indices), "values": values}],
            "using": using,
            "k": k,
            "with_payload": with_payload,
            "with_vector": with_vector,
            "score_threshold": score_threshold,
        }
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        path = f"/v1/collections/{collection}/search"

        async def scatter(routed: Topology) -> list[dict[str, Any]]:
            answers = await self._all_shards(
                "search",
                lambda shard, client: client.read(path, body, consistency, indexes.get(shard)),
                routed,
            )
            found = []
            for shard, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                self._check_epoch(answer, routed)
                found.append(self._owned(shard, answer["results"][0], routed))
            return merge_top_k(found, k, True)

        return await self._fresh(scatter)

    async def search_multi(
        self,
        collection: str,
        query: MultiQuery,
        using: str | None,
        k: int,
        condition: Filter | None,
        consistency: str = "eventual",
        *,
        with_payload: bool = True,
        with_vector: bool | tuple[str, ...] = False,
        score_threshold: float | None = None,
        after: Mapping[int, int] | None = None,
        **_options: Any,
    ) -> list[dict[str, Any]]:
        """Exact top-k by MaxSim of one multivector query over the named multivector `using`,
        on every shard, merged."""
        schema = await self.schema(collection)
        using = str(using or DEFAULT_VECTOR)  # no name: the unnamed vector, if it is a multivector
        if not schema.named:
            raise InvalidVector(
                f"collection {collection!r} has one vector per point: query it with a list of numbers "
                "(a multivector query needs a vector with multivector_config)"
            )
        spec = schema.vector(using)  # raises, naming the vectors there are
        if not spec.multivector:
            raise InvalidRequest(f"vector {using!r} is one vector per point: query it with a list of numbers")
        if any(len(row) != spec.dimension for row in query.rows):
            raise InvalidVector(
                f"Wrong input: Vector dimension error: expected dim: {spec.dimension} for each vector of "
                f"multivector {using!r}"
            )
        indexes = dict(after or {})
        body: dict[str, Any] = {
            "multi": [[list(row) for row in query.rows]],
            "using": using,
            "k": k,
            "with_payload": with_payload,
            "with_vector": with_vector,
            "score_threshold": score_threshold,
        }
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        path = f"/v1/collections/{collection}/search"

        async def scatter(routed: Topology) -> list[dict[str, Any]]:
            answers = await self._all_shards(
                "search",
                lambda shard, client: client.read(path, body, consistency, indexes.get(shard)),
                routed,
            )
            found = []
            for shard, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                self._check_epoch(answer, routed)
                found.append(self._owned(shard, answer["results"][0], routed))
            return merge_top_k(found, k, spec.metric.higher_is_better)

        return await self._fresh(scatter)

    async def _idf_weighted(
        self, collection: str, using: str, query: SparseQuery, consistency: str, indexes: Mapping[int, int]
    ) -> list[float]:
        body = {"using": using, "indices": list(query.indices)}
        path = f"/v1/collections/{collection}/sparse/stats"

        async def gather(routed: Topology) -> tuple[int, list[int]]:
            answers = await self._all_shards(
                "sparse_stats",
                lambda shard, client: client.read(path, body, consistency, indexes.get(shard)),
                routed,
            )
            total, frequencies = 0, [0] * len(query.indices)
            for _, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                self._check_epoch(answer, routed)
                total += int(answer["count"])
                frequencies = [a + int(b) for a, b in zip(frequencies, answer["df"], strict=True)]
            return total, frequencies

        total, frequencies = await self._fresh(gather)
        return [value * idf(total, df) for value, df in zip(query.values, frequencies, strict=True)]

    async def explain(
        self, collection: str, k: int, condition: Filter | None, exact: bool = False, using: str | None = None
    ) -> list[dict[str, Any]]:
        """The plan each shard's leader would run for a search (no search is run)."""
        await self.schema(collection)
        body: dict[str, Any] = {"k": k, "exact": exact}
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        if using is not None:
            body["using"] = using
        path = f"/v1/collections/{collection}/explain"

        async def ask(routed: Topology) -> list[dict[str, Any]]:
            answers = await self._all_shards(
                "explain", lambda shard, client: client.read(path, body, "leader", None), routed
            )
            plans = []
            for shard, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                plans.append({"shard": shard, **answer["plan"]})
            return plans

        return await self._fresh(ask)

    async def get(
        self,
        collection: str,
        ids: Sequence[PointId],
        consistency: str = "eventual",
        after: Mapping[int, int] | None = None,
        **options: Any,
    ) -> list[Hit]:
        """Points by id, in the order asked (`after`: a read token's indexes, as in search)."""
        after = dict(after or {})
        await self.schema(collection)
        path = f"/v1/collections/{collection}/points/get"

        async def fetch(shard: int, shard_ids: list[PointId], routed: Topology) -> list[Hit]:
            body = {"ids": shard_ids, **options}
            client = self.clients.get(shard)
            if client is None:
                raise StaleTopology(self.topology.epoch)
            answer = await self._on_shard(
                shard, "get", client.read(path, body, consistency, after.get(shard))
            )
            self._check_epoch(answer, routed)
            return self._owned(shard, answer["points"], routed)

        async def gather(routed: Topology) -> list[Hit]:
            groups = routed.ring.group(ids)
            found: dict[Any, Hit] = {}
            fetched = await asyncio.gather(*(fetch(s, [ids[p] for p in groups[s]], routed) for s in groups))
            for points in fetched:
                found.update({point["id"]: point for point in points})
            return [found[i] for i in ids if i in found]

        return await self._fresh(gather)

    async def count(
        self,
        collection: str,
        condition: Filter | None,
        consistency: str = "eventual",
        after: Mapping[int, int] | None = None,
    ) -> int:
        """Total matching points over all shards (`after`: a read token's indexes)."""
        indexes = dict(after or {})
        await self.schema(collection)
        body = {} if condition is None else {"filter": filter_to_json(condition)}
        path = f"/v1/collections/{collection}/points/count"

        async def total(routed: Topology) -> int:
            found = 0
            answers = await self._all_shards(
                "count",
                lambda shard, client: client.read(path, body, consistency, indexes.get(shard)),
                routed,
            )
            for _, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                self._check_epoch(answer, routed)
                found += int(answer["count"])
            return found

        return await self._fresh(total)

    async def scroll(
        self,
        collection: str,
        offset: PointId | None,
        limit: int,
        condition: Filter | None,
        consistency: str = "eventual",
        after: Mapping[int, int] | None = None,
        **options: Any,
    ) -> tuple[list[Hit], PointId | None]:
        """A page of points in id order across shards, and the next offset (`after`: a read
        token's indexes)."""
        indexes = dict(after or {})
        await self.schema(collection)
        body: dict[str, Any] = {"offset": offset, "limit": min(limit + 1, 10_000), **options}
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        path = f"/v1/collections/{collection}/points/scroll"

        async def page(routed: Topology) -> tuple[list[Hit], PointId | None]:
            answers = await self._all_shards(
                "scroll",
                lambda shard, client: client.read(path, body, consistency, indexes.get(shard)),
                routed,
            )
            pages = []
            for shard, answer in answers:
                if isinstance(answer, VecStoreError):
                    raise answer
                self._check_epoch(answer, routed)
                pages.append(self._owned(shard, answer["points"], routed))
            return merge_pages(pages, limit)

        return await self._fresh(page)

    async def status(self) -> list[dict[str, Any]]:
        """Every node's status (or its error), shard by shard, of the newest topology."""
        await self.refresh_topology()
        rows: list[dict[str, Any]] = []
        for shard in self.topology.shards:
            client = self.clients[shard.id]
            for node in shard.nodes:
                try:
                    status = await asyncio.wait_for(client.status(node.http), 3)
                except (VecStoreError, TimeoutError) as err:
                    rows.append(
                        {
                            "shard_id": shard.id,
                            "node_id": node.id,
                            "http_address": node.http,
                            "role": "unreachable",
                            "error": str(err),
                        }
                    )
                    continue
                rows.append({"http_address": node.http, **status})
        return rows


ALIAS_TTL = 1.0
"""Seconds a router trusts its copy of the aliases while requests resolve them."""


def idf(points: int, frequency: int) -> float:
    """Qdrant's inverse document frequency of an index used by `frequency` of `points`."""
    return math.log((points - frequency + 0.5) / (frequency + 0.5) + 1)


def _check_named(
    schema: CollectionSchema,
    parts: Sequence[NamedVectors],
    sparse: Sequence[NamedSparse],
    multi: Sequence[NamedMulti] = (),
) -> None:
    """Refuse (before sending anything) vectors a collection of named vectors does not have."""
    if not schema.named:
        if [held.name for held in multi] == [DEFAULT_VECTOR]:
            raise InvalidVector(
                f"collection {schema.name!r} has one vector per point: a multivector (a list of "
                "vectors) needs a vector with multivector_config"
            )
        raise InvalidVector(f"collection {schema.name!r} has one unnamed vector; it has no named vectors")
    for held in multi:
        spec = schema.vector(held.name)
        if not spec.multivector:
            raise InvalidVector(f"vector {held.name!r} is one vector per point: send a list of numbers")
        if held.rows and held.dimension != spec.dimension:
            raise InvalidVector(
                f"multivector {held.name!r} has vectors of {held.dimension} dimensions, collection "
                f"{schema.name!r} expects {spec.dimension}"
            )
    for given in sparse:
        if given.name in {name for name, _ in schema.vectors}:
            raise InvalidVector(
                f"vector {given.name!r} is dense: send a list of numbers, not indices and values"
            )
        schema.sparse(given.name)
    for part in parts:
        if part.name in {name for name, _ in schema.sparse_vectors}:
            raise InvalidVector(f"vector {part.name!r} is sparse: send {{'indices': [...], 'values': [...]}}")
        if schema.vector(part.name).multivector:
            raise InvalidVector(f"vector {part.name!r} is a multivector: send a list of vectors")
        expected = schema.vector(part.name).dimension
        if part.rows and part.dimension != expected:
            raise InvalidVector(
                f"vector {part.name!r} has {part.dimension} dimensions, collection {schema.name!r} "
                f"expects {expected}"
            )


def _named_subset(parts: Sequence[NamedVectors], positions: Sequence[int]) -> tuple[NamedVectors, ...]:
    """The named vectors of the points at `positions` (ascending), renumbered for them."""
    index = {position: row for row, position in enumerate(positions)}
    subset = []
    for part in parts:
        chosen = [(j, index[p]) for j, p in enumerate(part.rows) if p in index]
        matrix = part.matrix()[[j for j, _ in chosen]]
        rows = tuple(row for _, row in chosen)
        subset.append(NamedVectors(part.name, rows, part.dimension if rows else 0, matrix.tobytes()))
    return tuple(subset)


def _multi_subset(parts: Sequence[NamedMulti], positions: Sequence[int]) -> tuple[NamedMulti, ...]:
    """The multivectors of the points at `positions` (ascending), renumbered for them."""
    index = {position: row for row, position in enumerate(positions)}
    subset = []
    for part in parts:
        matrices = part.matrices()
        chosen = [(j, index[p]) for j, p in enumerate(part.rows) if p in index]
        subset.append(
            NamedMulti.build(part.name, [row for _, row in chosen], [matrices[j] for j, _ in chosen])
        )
    return tuple(subset)


def _sparse_subset(parts: Sequence[NamedSparse], positions: Sequence[int]) -> tuple[NamedSparse, ...]:
    """The sparse vectors of the points at `positions` (ascending), renumbered for them."""
    index = {position: row for row, position in enumerate(positions)}
    subset = []
    for part in parts:
        vectors = part.vectors()
        chosen = [(j, index[p]) for j, p in enumerate(part.rows) if p in index]
        subset.append(
            NamedSparse.build(part.name, [row for _, row in chosen], [vectors[j] for j, _ in chosen])
        )
    return tuple(subset)


def _add_counts(total: dict[str, int], result: dict[str, Any]) -> None:
    """Sum a shard's write counts (upserted, deleted, updated) into `total`."""
    for key, value in result.items():
        if key != "epoch" and isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
