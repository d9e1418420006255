"""Facet counts and order_by pages across shards: each shard counts or orders its own points
(`/v1/collections/{name}/facet`, `/points/ordered`), the router sums or merges.

Free functions over a ShardSet, routed like its own reads (a newer epoch on a shard refreshes
the topology and reads again). Nothing here touches an index.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vecstore.cluster.datetimes import parse_datetime
from vecstore.cluster.errors import InvalidRequest, VecStoreError
from vecstore.cluster.filters import Filter, filter_to_json
from vecstore.cluster.ids import PointId, normalize_point_id, point_id_sort_key
from vecstore.cluster.payload_path import InvalidPath, parse_path
from vecstore.cluster.topology import Topology
from vecstore.router.shards import ShardSet

FacetValue = str | int | bool
OrderValue = int | float
OrderedPoint = tuple[OrderValue, PointId]


def payload_key(key: object, what: str) -> str:
    """A payload key path, or InvalidRequest naming `what`."""
    if not isinstance(key, str):
        raise InvalidRequest(f"{what} must be a payload key (a string), got {key!r}")
    try:
        parse_path(key)
    except InvalidPath as err:
        raise InvalidRequest(f"{what} {key!r} is not a valid payload key: {err}") from None
    return key


def order_by_of(raw: object) -> dict[str, Any]:
    """Qdrant's `order_by` (a key, or {key, direction, start_from}) as the nodes take it."""
    if isinstance(raw, str):
        return {"key": payload_key(raw, "order_by"), "direction": "asc", "start_from": None}
    if not isinstance(raw, dict):
        raise InvalidRequest("order_by must be a payload key or an object {key, direction, start_from}")
    unknown = set(raw) - {"key", "direction", "start_from"}
    if unknown:
        raise InvalidRequest(
            f"unknown field(s) {sorted(unknown)} in order_by; it takes key, direction, start_from"
        )
    direction = raw.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise InvalidRequest(f"order_by.direction must be asc or desc, got {direction!r}")
    start = raw.get("start_from")
    number = isinstance(start, (int, float)) and not isinstance(start, bool)
    if not (start is None or number or (isinstance(start, str) and parse_datetime(start) is not None)):
        raise InvalidRequest(f"order_by.start_from must be a number or an RFC 3339 datetime, got {start!r}")
    return {"key": payload_key(raw.get("key"), "order_by.key"), "direction": direction, "start_from": start}


def _tagged(value: FacetValue) -> tuple[int, FacetValue]:
    """A facet value with its type's rank (bool, int, str), so True and 1 stay apart and
    values of different types order as qdrant-client's local mode orders them."""
    return ((bool, int, str).index(type(value)), value)


def merge_facets(shards: Iterable[Sequence[Sequence[Any]]], limit: int) -> list[dict[str, Any]]:
    """Sum per-shard `[value, count]` lists; the `limit` values with the highest counts, ties
    by value ascending (as qdrant-client's local mode)."""
    totals: dict[tuple[int, FacetValue], int] = {}
    for hits in shards:
        for value, count in hits:
            tagged = _tagged(value)
            totals[tagged] = totals.get(tagged, 0) + int(count)
    best = heapq.nsmallest(limit, totals.items(), key=lambda item: (-item[1], item[0]))
    return [{"value": value, "count": count} for (_, value), count in best]


def merge_ordered(
    shards: Iterable[Sequence[Sequence[Any]]], descending: bool, limit: int
) -> list[OrderedPoint]:
    """Merge per-shard ordered `[value, id]` pages into the first `limit`: by value (descending
    or not), ties by id ascending."""
    pages = [[(value, normalize_point_id(point)) for value, point in page] for page in shards]

    def order(pair: OrderedPoint) -> tuple[Any, ...]:
        return (-pair[0] if descending else pair[0], point_id_sort_key(pair[1]))

    return list(heapq.merge(*pages, key=order))[:limit]


async def facet(
    shards: ShardSet,
    collection: str,
    key: str,
    condition: Filter | None,
    limit: int,
    consistency: str = "eventual",
    after: Mapping[int, int] | None = None,
) -> list[dict[str, Any]]:
    """The `limit` most frequent values of `key` among points matching `condition`, counted
    on every shard and summed."""
    indexes = dict(after or {})
    await shards.schema(collection)
    body: dict[str, Any] = {"key": key}
    if condition is not None:
        body["filter"] = filter_to_json(condition)
    path = f"/v1/collections/{collection}/facet"

    async def gather(routed: Topology) -> list[dict[str, Any]]:
        answers = await shards._all_shards(
            "facet", lambda shard, client: client.read(path, body, consistency, indexes.get(shard)), routed
        )
        found = []
        for _, answer in answers:
            if isinstance(answer, VecStoreError):
                raise answer
            shards._check_epoch(answer, routed)
            found.append(answer["hits"])
        return merge_facets(found, limit)

    return await shards._fresh(gather)


async def ordered(
    shards: ShardSet,
    collection: str,
    order_by: dict[str, Any],
    condition: Filter | None,
    limit: int,
    consistency: str = "eventual",
    after: Mapping[int, int] | None = None,
) -> list[OrderedPoint]:
    """The first `limit` (value, id) pairs over all shards in `order_by` order (a point once
    per distinct value). After a resharding, a pair counts only from the shard owning its point."""
    indexes = dict(after or {})
    await shards.schema(collection)
    body: dict[str, Any] = {"order_by": order_by, "limit": limit}
    if condition is not None:
        body["filter"] = filter_to_json(condition)
    path = f"/v1/collections/{collection}/points/ordered"

    async def gather(routed: Topology) -> list[OrderedPoint]:
        answers = await shards._all_shards(
            "ordered", lambda shard, client: client.read(path, body, consistency, indexes.get(shard)), routed
        )
        pages = []
        for shard, answer in answers:
            if isinstance(answer, VecStoreError):
                raise answer
            shards._check_epoch(answer, routed)
            page = answer["points"]
            if routed.epoch:
                page = [pair for pair in page if routed.owner(normalize_point_id(pair[1])) == shard]
            pages.append(page)
        return merge_ordered(pages, order_by["direction"] == "desc", limit)

    return await shards._fresh(gather)
