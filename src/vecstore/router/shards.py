"""The router's view of the cluster: one client per shard, the ring, and the schemas.

Writes are split by the ring and sent to each shard's leader; searches are scattered to
one replica of every shard and merged. Nothing here touches an index.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DropCollection,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
    validate_payload,
)
from vecstore.cluster.errors import (
    CollectionNotFound,
    InvalidVector,
    Unavailable,
    VecStoreError,
)
from vecstore.cluster.filters import Filter, filter_to_json
from vecstore.cluster.hash_ring import ShardRing
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema
from vecstore.cluster.spec import ClusterSpec
from vecstore.router.merge import merge_pages, merge_top_k
from vecstore.router.metrics import RouterMetrics
from vecstore.transport.coalescer import Coalescer
from vecstore.transport.node_client import NodeClient

log = logging.getLogger(__name__)

T = TypeVar("T")
Hit = dict[str, Any]


class ShardSet:
    """Routes operations to the shards of one cluster."""

    def __init__(self, spec: ClusterSpec, metrics: RouterMetrics) -> None:
        self.spec = spec
        self.metrics = metrics
        self.ring = ShardRing(len(spec.shards))
        self.session: aiohttp.ClientSession | None = None
        self.clients: list[NodeClient] = []
        self.schemas: dict[str, CollectionSchema] = {}
        self._searches: Coalescer[list[float], tuple[list[Hit], list[str]]] = Coalescer()

    async def start(self) -> None:
        """Open the HTTP session and the per-shard clients."""
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
        self.session = aiohttp.ClientSession(connector=connector)
        self.clients = [
            NodeClient(
                [node.http for node in shard.nodes],
                session=self.session,
                deadline_seconds=self.spec.router.request_timeout,
                request_seconds=self.spec.router.request_timeout,
                on_retry=self.metrics.retries.inc,
            )
            for shard in self.spec.shards
        ]

    async def close(self) -> None:
        """Close the session."""
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
        self, operation: str, call: Callable[[int, NodeClient], Awaitable[T]]
    ) -> list[T | VecStoreError]:
        async def one(shard: int, client: NodeClient) -> T | VecStoreError:
            try:
                return await self._on_shard(shard, operation, call(shard, client))
            except VecStoreError as err:
                return err

        if len(self.clients) == 1:  # no task to start for a single shard
            return [await one(0, self.clients[0])]
        return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(self.clients))))

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
        if self.clients[0].leader is None:
            await self.clients[0].find_leader()
        answer = await self.clients[0].request("leader", "GET", "/v1/collections")
        self.schemas = {
            entry["schema"]["name"]: CollectionSchema.from_dict(entry["schema"])
            for entry in answer["collections"]
        }

    async def _apply_everywhere(self, command: Command) -> list[dict[str, Any]]:
        results = await self._all_shards("ddl", lambda _, client: client.apply(command))
        failures = [r for r in results if isinstance(r, VecStoreError)]
        if failures:
            raise failures[0]
        return [r for r in results if not isinstance(r, VecStoreError)]

    # ---- collections -------------------------------------------------------------------

    async def create_collection(self, schema: CollectionSchema) -> bool:
        """Create on every shard (idempotent); True if any shard created it now."""
        results = await self._apply_everywhere(CreateCollection(schema))
        self.schemas[schema.name] = schema
        return any(r.get("created") for r in results)

    async def drop_collection(self, name: str) -> bool:
        """Drop on every shard; True if it existed."""
        results = await self._apply_everywhere(DropCollection(name))
        self.schemas.pop(name, None)
        return any(r.get("dropped") for r in results)

    async def collection_info(self, name: str) -> dict[str, Any]:
        """Schema and summed counts over shards."""
        schema = await self.schema(name)
        answers = await self._all_shards(
            "info",
            lambda _, client: client.request("any", "GET", "/v1/collections"),
        )
        totals = {"points": 0, "segments": 0, "indexing_lag": 0, "tombstones": 0}
        for answer in answers:
            if isinstance(answer, VecStoreError):
                raise answer
            for entry in answer["collections"]:
                if entry["schema"]["name"] == name:
                    for key in totals:
                        totals[key] += int(entry.get(key, 0))
        return {"schema": schema.to_dict(), **totals}

    # ---- writes ------------------------------------------------------------------------

    async def _write_groups(
        self, groups: dict[int, Command], ids_by_shard: dict[int, list[PointId]]
    ) -> dict[str, Any]:
        async def send(shard: int) -> dict[str, Any]:
            return await self._on_shard(shard, "write", self.clients[shard].apply(groups[shard]))

        shards = sorted(groups)
        results = await asyncio.gather(*(send(s) for s in shards), return_exceptions=True)
        failed: list[dict[str, Any]] = []
        first_error: VecStoreError | None = None
        total: dict[str, int] = {}
        for shard, result in zip(shards, results, strict=True):
            if isinstance(result, VecStoreError):
                first_error = first_error or result
                failed += [{"id": i, "error": result.message} for i in ids_by_shard.get(shard, [])]
                if not ids_by_shard.get(shard):
                    failed.append({"shard": shard, "error": result.message})
            elif isinstance(result, BaseException):
                raise result
            else:
                for key, value in result.items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        total[key] = total.get(key, 0) + value
        if first_error is not None:
            first_error.details["failed"] = failed
            first_error.details["partial"] = len(failed) < sum(len(v) for v in ids_by_shard.values()) or (
                len(shards) > 1 and len(failed) < len(shards)
            )
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
        whole = Upsert.build(collection, ids, vectors, payloads)
        if whole.dimension != schema.dimension:
            raise InvalidVector(
                f"vector has {whole.dimension} dimensions, collection {collection!r} expects "
                f"{schema.dimension}"
            )
        matrix = whole.matrix()
        groups: dict[int, Command] = {}
        ids_by_shard: dict[int, list[PointId]] = {}
        for shard, positions in self.ring.group(whole.ids).items():
            shard_ids = [whole.ids[p] for p in positions]
            groups[shard] = Upsert(
                collection,
                tuple(shard_ids),
                whole.dimension,
                matrix[positions].tobytes(),
                tuple(whole.payloads[p] for p in positions),
            )
            ids_by_shard[shard] = shard_ids
        return await self._write_groups(groups, ids_by_shard)

    async def change(
        self,
        collection: str,
        selector: Selector,
        build: Callable[[Selector], Command],
    ) -> dict[str, Any]:
        """Delete or change payloads of points chosen by ids (routed) or filter (everywhere)."""
        await self.schema(collection)
        if selector.ids is None:
            groups = {shard: build(selector) for shard in range(len(self.clients))}
            return await self._write_groups(groups, {})
        ids_by_shard = {
            shard: [selector.ids[p] for p in positions]
            for shard, positions in self.ring.group(selector.ids).items()
        }
        groups = {shard: build(Selector(ids=tuple(ids))) for shard, ids in ids_by_shard.items()}
        return await self._write_groups(groups, ids_by_shard)

    async def delete(self, collection: str, selector: Selector) -> dict[str, Any]:
        """Delete points."""
        return await self.change(collection, selector, lambda s: DeletePoints(collection, s))

    async def set_payload(
        self, collection: str, selector: Selector, payload: dict[str, Any], overwrite: bool = False
    ) -> dict[str, Any]:
        """Merge (or overwrite) payloads."""
        validate_payload(payload)
        if overwrite:
            return await self.change(collection, selector, lambda s: OverwritePayload(collection, s, payload))
        return await self.change(collection, selector, lambda s: SetPayload(collection, s, payload))

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
        **options: Any,
    ) -> tuple[list[list[Hit]], list[str]]:
        """Top-k for each query: concurrent identical searches share one scatter-gather."""
        schema = await self.schema(collection)
        key = (collection, k, condition, consistency, allow_partial, tuple(sorted(options.items())))

        async def run(batch: list[list[float]]) -> list[tuple[list[Hit], list[str]]]:
            merged, warnings = await self._scatter_search(
                collection, schema, batch, k, condition, consistency, allow_partial, options
            )
            return [(hits, warnings) for hits in merged]

        answers = await self._searches.submit(key, vectors, run)
        warnings = sorted({w for _, ws in answers for w in ws})
        return [hits for hits, _ in answers], warnings

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
    ) -> tuple[list[list[Hit]], list[str]]:
        """Scatter a batch of queries to every shard; merge each query's global top-k."""
        body: dict[str, Any] = {"vectors": vectors, "k": k, **options}
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        timeout = self.spec.router.shard_timeout

        async def ask(shard: int, client: NodeClient) -> list[list[Hit]]:
            try:
                async with asyncio.timeout(timeout):
                    answer = await client.read(f"/v1/collections/{collection}/search", body, consistency)
            except TimeoutError:
                raise Unavailable(f"shard {shard} did not answer within {timeout}s") from None
            results: list[list[Hit]] = answer["results"]
            return results

        answers = await self._all_shards("search", ask)
        warnings = []
        usable: list[list[list[Hit]]] = []
        for shard, answer in enumerate(answers):
            if isinstance(answer, VecStoreError):
                if not answer.retriable or not allow_partial:
                    raise answer
                warnings.append(f"shard {shard} is unavailable: {answer.message}")
            else:
                usable.append(answer)
        merged = [
            merge_top_k([answer[q] for answer in usable], k, schema.metric.higher_is_better)
            for q in range(len(vectors))
        ]
        return merged, warnings

    async def get(
        self, collection: str, ids: Sequence[PointId], consistency: str = "eventual", **options: Any
    ) -> list[Hit]:
        """Points by id, in the order asked."""
        await self.schema(collection)
        groups = self.ring.group(ids)

        async def fetch(shard: int) -> list[Hit]:
            shard_ids = [ids[p] for p in groups[shard]]
            return await self._on_shard(
                shard, "get", self.clients[shard].get(collection, shard_ids, consistency, **options)
            )

        found: dict[Any, Hit] = {}
        for points in await asyncio.gather(*(fetch(s) for s in groups)):
            found.update({point["id"]: point for point in points})
        return [found[i] for i in ids if i in found]

    async def count(self, collection: str, condition: Filter | None, consistency: str = "eventual") -> int:
        """Total matching points over all shards."""
        await self.schema(collection)
        body = {} if condition is None else {"filter": filter_to_json(condition)}
        answers = await self._all_shards(
            "count", lambda _, client: client.count(collection, consistency, **body)
        )
        total = 0
        for answer in answers:
            if isinstance(answer, VecStoreError):
                raise answer
            total += answer
        return total

    async def scroll(
        self,
        collection: str,
        offset: PointId | None,
        limit: int,
        condition: Filter | None,
        consistency: str = "eventual",
        **options: Any,
    ) -> tuple[list[Hit], PointId | None]:
        """A page of points in id order across shards, and the next offset."""
        await self.schema(collection)
        body: dict[str, Any] = {"offset": offset, "limit": min(limit + 1, 10_000), **options}
        if condition is not None:
            body["filter"] = filter_to_json(condition)
        path = f"/v1/collections/{collection}/points/scroll"
        answers = await self._all_shards("scroll", lambda _, client: client.read(path, body, consistency))
        pages = []
        for answer in answers:
            if isinstance(answer, VecStoreError):
                raise answer
            pages.append(answer["points"])
        return merge_pages(pages, limit)

    async def status(self) -> list[dict[str, Any]]:
        """Every node's status (or its error), shard by shard."""
        rows: list[dict[str, Any]] = []
        for shard, client in zip(self.spec.shards, self.clients, strict=True):
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
