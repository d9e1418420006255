"""Qdrant's point endpoints: upsert, delete, payload changes, retrieve, scroll and count.

Writes answer after their command is committed by a majority and applied on the leader, so
`wait=true` and `wait=false` both answer after commit. Reads default to any replica
(Qdrant's consistency 1); `consistency` above 1 reads through the leader, linearizably.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from vecstore.cluster.commands import named_columns, with_default_vector
from vecstore.cluster.errors import InvalidRequest, InvalidVector, NotFound, NotImplementedParameter
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.schema import DEFAULT_VECTOR
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS, SPEC
from vecstore.router.native_api import check_batch, name_of
from vecstore.router.ordered import order_by_of, ordered
from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.router.qdrant.http import (
    READ_QUERY,
    UPDATE_COMPLETED,
    WRITE_QUERY,
    body_object,
    consistency_of,
    qdrant_route,
)
from vecstore.router.qdrant.schemas import array, ref
from vecstore.router.qdrant.translate import (
    Cosine,
    NamedVector,
    VectorWanted,
    allow_only,
    cosine_of,
    payload_selection,
    point_ids,
    point_vectors,
    points_selector,
    records,
    refuse,
    upsert_batch,
    vector_wanted,
)
from vecstore.router.shards import ShardSet
from vecstore.transport.server import body_of

UPDATE = ref("QdrantUpdateResult")
Write = Callable[[ShardSet, str], Awaitable[object]]
"""A parsed write, ready to send: `write(shards, collection)`."""


def upsert_write(request: web.Request, body: Mapping[str, Any]) -> Write:
    """Qdrant's upsert body (`points` or `batch` form), parsed."""
    batch = upsert_batch(body)
    if batch.ids:
        check_batch(request, len(batch.ids))

    async def write(shards: ShardSet, name: str) -> object:
        schema = await shards.schema(name)  # a missing collection is still an error
        if not batch.ids:
            return None
        if schema.named:
            vectors = with_default_vector(batch.vectors) if schema.default_vector else batch.vectors
            return await shards.upsert_named(name, batch.ids, named_columns(vectors), batch.payloads)
        if batch.named:
            multi = any(isinstance(v, dict) and list(v) == [DEFAULT_VECTOR] for v in batch.vectors)
            raise InvalidVector(
                f"collection {name!r} has one unnamed vector: send each point's vector as a list"
                + (" of numbers (a multivector needs a vector with multivector_config)" if multi else "")
            )
        return await shards.upsert(name, batch.ids, batch.vectors, batch.payloads)

    return write


def update_vectors_write(request: web.Request, body: Mapping[str, Any]) -> Write:
    """Qdrant's update-vectors body, parsed (the last vector given for a point wins)."""
    refuse(body, ("shard_key", "update_filter"))
    allow_only(body, ("points",), "the update-vectors request")
    points = body.get("points")
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise InvalidRequest("points must be a list of {id, vector} objects")
    latest: dict[PointId, dict[str, NamedVector]] = {}
    for position, point in enumerate(points):
        allow_only(point, ("id", "vector"), f"points[{position}]")
        if "id" not in point or "vector" not in point:
            raise InvalidRequest(f"points[{position}] needs an 'id' and a 'vector'")
        vectors = point_vectors(point["vector"], f"vector of points[{position}]")
        if not isinstance(vectors, dict):  # the default vector of a collection that has one
            vectors = {DEFAULT_VECTOR: vectors}
        latest.setdefault(normalize_point_id(point["id"]), {}).update(vectors)
    if latest:
        check_batch(request, len(latest))

    async def write(shards: ShardSet, name: str) -> object:
        if not latest:
            return None
        return await shards.update_vectors(name, list(latest), named_columns(list(latest.values())))

    return write


def delete_vectors_write(request: web.Request, body: Mapping[str, Any]) -> Write:
    """Qdrant's delete-vectors body, parsed."""
    refuse(body, ("shard_key",))
    allow_only(body, ("points", "filter", "vector"), "the delete-vectors request")
    names = body.get("vector")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRequest("vector must be a list of vector names")
    selector = points_selector(body, "the delete-vectors request")
    return lambda shards, name: shards.delete_vectors(name, selector, names)


def delete_write(request: web.Request, body: Mapping[str, Any]) -> Write:
    """Qdrant's PointsSelector of a delete, parsed."""
    refuse(body, ("shard_key",))
    allow_only(body, ("points", "filter"), "the delete request")
    selector = points_selector(body, "delete")
    return lambda shards, name: shards.delete(name, selector)


def payload_write(overwrite: bool) -> Callable[[web.Request, Mapping[str, Any]], Write]:
    """The parser of Qdrant's set-payload (merge) or overwrite-payload body."""

    def parse(request: web.Request, body: Mapping[str, Any]) -> Write:
        if body.get("key") is not None:
            raise NotImplementedParameter(
                "parameter 'key' (setting a payload at a nested path) is not supported"
            )
        refuse(body, ("shard_key",))
        allow_only(body, ("payload", "points", "filter", "key"), "the payload request")
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise InvalidRequest("payload must be an object")
        selector = points_selector(body, "the payload request")
        return lambda shards, name: shards.set_payload(name, selector, payload, overwrite=overwrite)

    return parse


def delete_payload_write(request: web.Request, body: Mapping[str, Any]) -> Write:
    """Qdrant's delete-payload body, parsed."""
    refuse(body, ("shard_key",))
    allow_only(body, ("keys", "points", "filter"), "the delete-payload request")
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise InvalidRequest("keys must be a list of payload keys")
    nested = [key for key in keys if "." in key or "[" in key]
    if nested:
        raise NotImplementedParameter(
            f"deleting nested payload keys {nested} is not supported; only top-level keys can be deleted"
        )
    selector = points_selector(body, "the delete-payload request")
    return lambda shards, name: shards.delete_payload_keys(name, selector, keys)


def clear_payload_write(request: web.Request, body: Mapping[str, Any]) -> Write:
    """Qdrant's PointsSelector of a clear-payload, parsed."""
    refuse(body, ("shard_key",))
    allow_only(body, ("points", "filter"), "the clear-payload request")
    selector = points_selector(body, "the clear-payload request")
    return lambda shards, name: shards.set_payload(name, selector, {}, overwrite=True)


async def _write(
    request: web.Request, parse: Callable[[web.Request, Mapping[str, Any]], Write], body: Mapping[str, Any]
) -> dict[str, Any]:
    await parse(request, body)(request.app[SHARDS], name_of(request))
    return UPDATE_COMPLETED


@qdrant_route(
    "PUT",
    "/collections/{name}/points",
    "Upsert points (batch or list form)",
    Scope.WRITE,
    UPDATE,
    ref("QdrantPointInsertOperations"),
    query=WRITE_QUERY,
)
async def upsert_points(request: web.Request) -> dict[str, Any]:
    """PUT /collections/{name}/points."""
    return await _write(request, upsert_write, await body_of(request))


@qdrant_route(
    "PUT",
    "/collections/{name}/points/vectors",
    "Set named vectors of existing points (their other vectors and payloads stay)",
    Scope.WRITE,
    UPDATE,
    ref("QdrantUpdateVectors"),
    query=WRITE_QUERY,
)
async def update_vectors(request: web.Request) -> dict[str, Any]:
    """PUT /collections/{name}/points/vectors."""
    return await _write(request, update_vectors_write, await body_object(request))


@qdrant_route(
    "POST",
    "/collections/{name}/points/vectors/delete",
    "Remove named vectors from the selected points (the points stay)",
    Scope.WRITE,
    UPDATE,
    ref("QdrantDeleteVectors"),
    query=WRITE_QUERY,
)
async def delete_vectors(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/vectors/delete."""
    return await _write(request, delete_vectors_write, await body_object(request))


@qdrant_route(
    "POST",
    "/collections/{name}/points/delete",
    "Delete points by ids or filter",
    Scope.WRITE,
    UPDATE,
    ref("QdrantPointsSelector"),
    query=WRITE_QUERY,
)
async def delete_points(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/delete."""
    return await _write(request, delete_write, await body_object(request))


@qdrant_route(
    "POST",
    "/collections/{name}/points/payload",
    "Set payload keys on the selected points (merge)",
    Scope.WRITE,
    UPDATE,
    ref("QdrantSetPayload"),
    query=WRITE_QUERY,
)
async def set_payload(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/payload."""
    return await _write(request, payload_write(overwrite=False), await body_object(request))


@qdrant_route(
    "PUT",
    "/collections/{name}/points/payload",
    "Replace the payload of the selected points",
    Scope.WRITE,
    UPDATE,
    ref("QdrantSetPayload"),
    query=WRITE_QUERY,
)
async def overwrite_payload(request: web.Request) -> dict[str, Any]:
    """PUT /collections/{name}/points/payload."""
    return await _write(request, payload_write(overwrite=True), await body_object(request))


@qdrant_route(
    "POST",
    "/collections/{name}/points/payload/delete",
    "Delete payload keys from the selected points",
    Scope.WRITE,
    UPDATE,
    ref("QdrantDeletePayload"),
    query=WRITE_QUERY,
)
async def delete_payload(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/payload/delete."""
    return await _write(request, delete_payload_write, await body_object(request))


@qdrant_route(
    "POST",
    "/collections/{name}/points/payload/clear",
    "Remove the whole payload of the selected points",
    Scope.WRITE,
    UPDATE,
    ref("QdrantPointsSelector"),
    query=WRITE_QUERY,
)
async def clear_payload(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/payload/clear."""
    return await _write(request, clear_payload_write, await body_object(request))


@qdrant_route(
    "POST",
    "/collections/{name}/points",
    "Retrieve points by id",
    Scope.READ,
    array(ref("QdrantRecord")),
    ref("QdrantPointRequest"),
    query=READ_QUERY,
)
async def retrieve_points(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points."""
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(body, ("ids", "with_payload", "with_vector"), "the retrieve request")
    ids = point_ids(body.get("ids"), "ids")
    check_batch(request, max(len(ids), 1))
    payload = payload_selection(body.get("with_payload"), default=True)
    with_vector = vector_wanted(body.get("with_vector"))
    points = await request.app[SHARDS].get(
        name_of(request),
        ids,
        consistency_of(request),
        with_payload=payload.wanted,
        with_vector=with_vector,
    )
    return records(points, payload, with_vector, await cosine_in_path(request))


async def cosine_in_path(request: web.Request) -> Cosine:
    """Which vectors of the collection in the path are answered normalised (cosine ones)."""
    return cosine_of(await request.app[SHARDS].schema(name_of(request)))


def path_point_id(request: web.Request) -> PointId:
    """The point id in the path: digits are an integer id, anything else must be a UUID."""
    raw = request.match_info["id"]
    return normalize_point_id(int(raw) if raw.isascii() and raw.isdigit() else raw)


@qdrant_route(
    "GET",
    "/collections/{name}/points/{id}",
    "One point by id (404 if missing)",
    Scope.READ,
    ref("QdrantRecord"),
    query=READ_QUERY,
)
async def get_point(request: web.Request) -> dict[str, Any]:
    """GET /collections/{name}/points/{id}."""
    point_id = path_point_id(request)
    points = await request.app[SHARDS].get(
        name_of(request), [point_id], consistency_of(request), with_payload=True, with_vector=True
    )
    if not points:
        raise NotFound(f"Not found: No point with id {point_id} found")
    return records(points[:1], payload_selection(True, default=True), True, await cosine_in_path(request))[0]


@qdrant_route(
    "POST",
    "/collections/{name}/points/scroll",
    "A page of points in id order (next_page_offset starts the next page), or in order_by order",
    Scope.READ,
    ref("QdrantScrollResult"),
    ref("QdrantScrollRequest"),
    query=READ_QUERY,
    body_required=False,
)
async def scroll_points(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/scroll."""
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(
        body, ("offset", "limit", "filter", "with_payload", "with_vector", "order_by"), "the scroll request"
    )
    limit = body.get("limit", 10)
    max_limit = request.app[SPEC].router.max_batch_points
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise InvalidRequest(f"limit must be an integer in 1..{max_limit}, got {limit!r}")
    offset = body.get("offset")
    payload = payload_selection(body.get("with_payload"), default=True)
    with_vector = vector_wanted(body.get("with_vector"))
    condition = filter_from_qdrant(body.get("filter"))
    if "order_by" in body:
        if offset is not None:
            raise InvalidRequest("offset is not supported with order_by: use order_by.start_from to page")
        points = await scroll_ordered(request, order_by_of(body["order_by"]), limit, condition, with_vector)
        cosine = await cosine_in_path(request)
        answered = records(points, payload, with_vector, cosine)
        for record, point in zip(answered, points, strict=True):
            record["order_value"] = point["order_value"]
        return {"points": answered, "next_page_offset": None}
    points, next_offset = await request.app[SHARDS].scroll(
        name_of(request),
        None if offset is None else normalize_point_id(offset),
        limit,
        condition,
        consistency_of(request),
        with_payload=payload.wanted,
        with_vector=with_vector,
    )
    cosine = await cosine_in_path(request)
    return {"points": records(points, payload, with_vector, cosine), "next_page_offset": next_offset}


async def scroll_ordered(
    request: web.Request,
    order_by: dict[str, Any],
    limit: int,
    condition: Filter | None,
    with_vector: VectorWanted,
) -> list[dict[str, Any]]:
    """The first `limit` points in order_by order (a point once per distinct value), each
    with its `order_value`: the shards order (value, id) pairs, the router merges them and
    reads the points (one deleted in between is left out)."""
    shards = request.app[SHARDS]
    name = name_of(request)
    consistency = consistency_of(request)
    pairs = await ordered(shards, name, order_by, condition, limit, consistency)
    ids = list(dict.fromkeys(point_id for _, point_id in pairs))
    found = (
        await shards.get(name, ids, consistency, with_payload=True, with_vector=with_vector) if ids else []
    )
    by_id = {point["id"]: point for point in found}
    return [{**by_id[point_id], "order_value": value} for value, point_id in pairs if point_id in by_id]


@qdrant_route(
    "POST",
    "/collections/{name}/points/count",
    "Number of (matching) points; always exact",
    Scope.READ,
    ref("QdrantCountResult"),
    ref("QdrantCountRequest"),
    query=READ_QUERY,
    body_required=False,
)
async def count_points(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/count."""
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(body, ("filter", "exact"), "the count request")
    if not isinstance(body.get("exact", True), bool):
        raise InvalidRequest("exact must be true or false")
    condition = filter_from_qdrant(body.get("filter"))
    total = await request.app[SHARDS].count(name_of(request), condition, consistency_of(request))
    return {"count": total}


ROUTES = (
    upsert_points,
    update_vectors,
    delete_vectors,
    delete_points,
    set_payload,
    overwrite_payload,
    delete_payload,
    clear_payload,
    retrieve_points,
    get_point,
    scroll_points,
    count_points,
)
"""The point endpoints, in the order they are registered."""
