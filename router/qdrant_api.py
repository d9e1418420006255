"""The Qdrant-compatible REST subset on the router port: qdrant-client (REST) works unmodified.

Each handler returns Qdrant's `result`; `qdrant_route` wraps it as Qdrant does
(`{"result", "status": "ok", "time"}`), declares its auth scope, its OpenAPI description and
Qdrant's error shape. Translation lives in qdrant_collection, qdrant_filter and
qdrant_translate; docs/qdrant.md lists what is supported and what is refused.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import (
    CollectionConflict,
    InvalidRequest,
    InvalidVector,
    NotFound,
    NotImplementedParameter,
    Timeout,
)
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.schema import CollectionSchema
from vecstore.cluster.wire import JSON, encode_body
from vecstore.router.app import SHARDS, SPEC, Handler, body_of, scope
from vecstore.router.auth import Scope
from vecstore.router.native_api import check_batch, name_of
from vecstore.router.openapi import Operation
from vecstore.router.qdrant_collection import ClusterShape, collection_info, present, schema_from_qdrant
from vecstore.router.qdrant_filter import filter_from_qdrant
from vecstore.router.qdrant_schemas import BOOLEAN, Schema, array, envelope, ref
from vecstore.router.qdrant_translate import (
    NearestQuery,
    allow_only,
    batch_items,
    payload_selection,
    point_ids,
    points_selector,
    query_request,
    record,
    refuse,
    scored_points,
    search_request,
    upsert_batch,
    vector_wanted,
)

QDRANT_VERSION = "1.20.0"
"""The Qdrant release whose REST shapes this subset follows (qdrant-client checks it)."""
ResultHandler = Callable[[web.Request], Awaitable[Any]]
UPDATE_COMPLETED = {"status": "completed"}
WRITE_QUERY = ("wait", "ordering", "timeout")
READ_QUERY = ("consistency", "timeout")
ROUTES: list[Handler] = []


def qdrant_error(body: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A native error body in Qdrant's shape: `{"status": {"error": ...}, "time": ...}`."""
    message = str(body.get("error", "error"))
    if body.get("code") == "collection_not_found" and "name" in body:
        message = f"Not found: Collection `{body['name']}` doesn't exist!"
    answer: dict[str, Any] = {"status": {"error": message}, "time": seconds}
    details = {k: v for k, v in body.items() if k not in {"status", "error", "code", "name", "leader"}}
    if details:
        answer["result"] = details
    return answer


def qdrant_route(
    method: str,
    path: str,
    summary: str,
    needed: Scope,
    result: Schema,
    request: Schema | None = None,
    *,
    query: Sequence[str] = (),
    body_required: bool = True,
    raw: bool = False,
) -> Callable[[ResultHandler], Handler]:
    """Register a Qdrant handler: envelope, timeout, query checks, scope, docs, error shape."""
    operation = Operation(
        method,
        path,
        summary,
        "qdrant",
        result if raw else envelope(result),
        ref("QdrantError"),
        request,
        body_required,
        tuple(query),
    )

    def wrap(produce: ResultHandler) -> Handler:
        @functools.wraps(produce)
        async def handler(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            deadline = asyncio.timeout(query_options(request, operation.query))
            try:
                async with deadline:
                    answer = await produce(request)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise Timeout(f"the request did not finish within {request.query['timeout']}s") from None
            if not raw:
                answer = {"result": answer, "status": "ok", "time": time.perf_counter() - started}
            return web.Response(body=encode_body(answer, JSON), content_type=JSON)

        handler.__dict__.update(error_shape=qdrant_error, openapi=operation)
        ROUTES.append(scope(needed)(handler))
        return handler

    return wrap


def query_options(request: web.Request, allowed: Sequence[str]) -> float | None:
    """Validate the query string against what the endpoint takes; the timeout, if any."""
    unknown = set(request.query) - set(allowed)
    if unknown:
        takes = ", ".join(allowed) or "no query parameters"
        raise InvalidRequest(f"unknown query parameter(s) {sorted(unknown)}; this endpoint takes {takes}")
    choices = {"wait": ("true", "false"), "ordering": ("weak", "medium", "strong")}
    for name, options in choices.items():
        if name in request.query and request.query[name] not in options:
            raise InvalidRequest(f"query parameter {name} must be one of {', '.join(options)}")
    consistency_of(request)
    if "timeout" not in request.query:
        return None
    value = request.query["timeout"]
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 3600:
        raise InvalidRequest(f"query parameter timeout must be whole seconds in 1..3600, got {value!r}")
    return float(value)


def consistency_of(request: web.Request) -> str:
    """Qdrant's read consistency as ours: 1 is any replica; more, or a quorum, the leader."""
    value = request.query.get("consistency", "1")
    if value == "1":
        return "eventual"
    if value in ("majority", "quorum", "all") or (value.isascii() and value.isdigit() and int(value) > 1):
        return "strong"
    raise InvalidRequest(f"consistency must be a positive integer, majority, quorum or all; got {value!r}")


def max_k(request: web.Request) -> int:
    """The largest limit + offset a search may ask for."""
    return request.app[SPEC].router.max_k


async def body_object(request: web.Request) -> dict[str, Any]:
    """The JSON body, with null fields dropped (Qdrant treats null as absent)."""
    return present(await body_of(request))


# ---- service and collections -----------------------------------------------------------


@qdrant_route(
    "GET",
    "/",
    "Version information (qdrant-client checks compatibility with it)",
    Scope.READ,
    ref("QdrantVersionInfo"),
    raw=True,
)
async def root(request: web.Request) -> dict[str, Any]:
    """GET /."""
    return {"title": "vecstore (Qdrant-compatible REST subset)", "version": QDRANT_VERSION}


@qdrant_route("GET", "/collections", "List collections", Scope.READ, ref("QdrantCollectionsResponse"))
async def list_collections(request: web.Request) -> dict[str, Any]:
    """GET /collections."""
    shards = request.app[SHARDS]
    await shards.refresh_schemas()
    return {"collections": [{"name": name} for name in sorted(shards.schemas)]}


@qdrant_route(
    "GET",
    "/collections/{name}",
    "Collection info",
    Scope.READ,
    ref("QdrantCollectionInfo"),
    query=("timeout",),
)
async def get_collection(request: web.Request) -> dict[str, Any]:
    """GET /collections/{name}."""
    info = await request.app[SHARDS].collection_info(name_of(request))
    schema = CollectionSchema.from_dict(info["schema"])
    return collection_info(schema, info, ClusterShape.of(request.app[SPEC]))


@qdrant_route(
    "GET",
    "/collections/{name}/exists",
    "Whether the collection exists",
    Scope.READ,
    ref("QdrantCollectionExistence"),
    query=("timeout",),
)
async def collection_exists(request: web.Request) -> dict[str, Any]:
    """GET /collections/{name}/exists."""
    name = name_of(request)
    shards = request.app[SHARDS]
    await shards.refresh_schemas()
    return {"exists": name in shards.schemas}


@qdrant_route(
    "PUT",
    "/collections/{name}",
    "Create a collection (409 if it exists)",
    Scope.ADMIN,
    BOOLEAN,
    ref("QdrantCreateCollection"),
    query=("timeout",),
)
async def create_collection(request: web.Request) -> bool:
    """PUT /collections/{name}."""
    name = name_of(request)
    schema = schema_from_qdrant(name, await body_of(request), ClusterShape.of(request.app[SPEC]))
    shards = request.app[SHARDS]
    await shards.refresh_schemas()
    if name in shards.schemas:
        raise CollectionConflict(f"Wrong input: Collection `{name}` already exists!")
    # `created` may be false when a retried command had already been applied, or when a
    # concurrent create won the race with the same schema; both are a success here.
    await shards.create_collection(schema)
    return True


@qdrant_route(
    "DELETE", "/collections/{name}", "Delete a collection", Scope.ADMIN, BOOLEAN, query=("timeout",)
)
async def delete_collection(request: web.Request) -> bool:
    """DELETE /collections/{name}: true if it existed."""
    return await request.app[SHARDS].drop_collection(name_of(request))


# ---- point writes ----------------------------------------------------------------------

UPDATE = ref("QdrantUpdateResult")


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
    name = name_of(request)
    batch = upsert_batch(await body_of(request))
    shards = request.app[SHARDS]
    if not batch.ids:
        await shards.schema(name)  # a missing collection is still an error
        return UPDATE_COMPLETED
    check_batch(request, len(batch.ids))
    await shards.upsert(name, batch.ids, batch.vectors, batch.payloads)
    return UPDATE_COMPLETED


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
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(body, ("points", "filter"), "the delete request")
    await request.app[SHARDS].delete(name_of(request), points_selector(body, "delete"))
    return UPDATE_COMPLETED


async def _payload_write(request: web.Request, overwrite: bool) -> dict[str, Any]:
    body = await body_object(request)
    if "key" in body:
        raise NotImplementedParameter("parameter 'key' (setting a payload at a nested path) is not supported")
    refuse(body, ("shard_key",))
    allow_only(body, ("payload", "points", "filter"), "the payload request")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidRequest("payload must be an object")
    selector = points_selector(body, "the payload request")
    await request.app[SHARDS].set_payload(name_of(request), selector, payload, overwrite=overwrite)
    return UPDATE_COMPLETED


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
    return await _payload_write(request, overwrite=False)


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
    return await _payload_write(request, overwrite=True)


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
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(body, ("keys", "points", "filter"), "the delete-payload request")
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise InvalidRequest("keys must be a list of payload keys")
    selector = points_selector(body, "the delete-payload request")
    await request.app[SHARDS].delete_payload_keys(name_of(request), selector, keys)
    return UPDATE_COMPLETED


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
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(body, ("points", "filter"), "the clear-payload request")
    selector = points_selector(body, "the clear-payload request")
    await request.app[SHARDS].set_payload(name_of(request), selector, {}, overwrite=True)
    return UPDATE_COMPLETED


# ---- point reads -----------------------------------------------------------------------


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
    return [record(point, payload, with_vector) for point in points]


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
    return record(points[0], payload_selection(True, default=True), with_vector=True)


@qdrant_route(
    "POST",
    "/collections/{name}/points/scroll",
    "A page of points in id order (next_page_offset starts the next page)",
    Scope.READ,
    ref("QdrantScrollResult"),
    ref("QdrantScrollRequest"),
    query=READ_QUERY,
    body_required=False,
)
async def scroll_points(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/scroll."""
    body = await body_object(request)
    refuse(body, ("shard_key", "order_by"))
    allow_only(body, ("offset", "limit", "filter", "with_payload", "with_vector"), "the scroll request")
    limit = body.get("limit", 10)
    max_limit = request.app[SPEC].router.max_batch_points
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise InvalidRequest(f"limit must be an integer in 1..{max_limit}, got {limit!r}")
    offset = body.get("offset")
    payload = payload_selection(body.get("with_payload"), default=True)
    with_vector = vector_wanted(body.get("with_vector"))
    points, next_offset = await request.app[SHARDS].scroll(
        name_of(request),
        None if offset is None else normalize_point_id(offset),
        limit,
        filter_from_qdrant(body.get("filter")),
        consistency_of(request),
        with_payload=payload.wanted,
        with_vector=with_vector,
    )
    return {
        "points": [record(point, payload, with_vector) for point in points],
        "next_page_offset": next_offset,
    }


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


# ---- search ----------------------------------------------------------------------------


async def run_nearest(
    request: web.Request, name: str, queries: Sequence[NearestQuery]
) -> list[list[dict[str, Any]]]:
    """Answer nearest queries; those sharing k, filter and options go to the shards together."""
    shards = request.app[SHARDS]
    dimension = (await shards.schema(name)).dimension
    consistency = consistency_of(request)
    vectors: list[list[float]] = []
    for query in queries:
        vector = query.vector if query.vector is not None else await _stored_vector(request, name, query)
        if len(vector) != dimension:
            raise InvalidVector(
                f"Wrong input: Vector dimension error: expected dim: {dimension}, got {len(vector)}"
            )
        vectors.append(vector)
    groups: dict[Any, list[int]] = {}
    for position, query in enumerate(queries):
        key = (query.k, query.shard_filter(), tuple(sorted(query.options().items())))
        groups.setdefault(key, []).append(position)
    answers: list[list[dict[str, Any]]] = [[] for _ in queries]
    for positions in groups.values():
        first = queries[positions[0]]
        found, _ = await shards.search(
            name,
            [vectors[p] for p in positions],
            first.k,
            first.shard_filter(),
            consistency=consistency,
            **first.options(),
        )
        for position, hits in zip(positions, found, strict=True):
            answers[position] = scored_points(hits, queries[position])
    return answers


async def _stored_vector(request: web.Request, name: str, query: NearestQuery) -> list[float]:
    assert query.point_id is not None
    points = await request.app[SHARDS].get(
        name, [query.point_id], consistency_of(request), with_payload=False, with_vector=True
    )
    if not points or points[0].get("vector") is None:
        raise NotFound(f"Not found: No point with id {query.point_id} found")
    vector: list[float] = points[0]["vector"]
    return vector


SCORED = array(ref("QdrantScoredPoint"))


@qdrant_route(
    "POST",
    "/collections/{name}/points/search",
    "Nearest neighbours of a vector",
    Scope.READ,
    SCORED,
    ref("QdrantSearchRequest"),
    query=READ_QUERY,
)
async def search_points(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/search."""
    query = search_request(await body_of(request), max_k(request))
    return (await run_nearest(request, name_of(request), [query]))[0]


@qdrant_route(
    "POST",
    "/collections/{name}/points/search/batch",
    "Several searches in one request",
    Scope.READ,
    array(SCORED),
    ref("QdrantSearchRequestBatch"),
    query=READ_QUERY,
)
async def search_batch(request: web.Request) -> list[list[dict[str, Any]]]:
    """POST /collections/{name}/points/search/batch."""
    items = batch_items(await body_of(request), max_k(request))
    queries = [search_request(item, max_k(request)) for item in items]
    return await run_nearest(request, name_of(request), queries)


@qdrant_route(
    "POST",
    "/collections/{name}/points/query",
    "Nearest neighbours of a vector or of a stored point (plain nearest queries only)",
    Scope.READ,
    ref("QdrantQueryResponse"),
    ref("QdrantQueryRequest"),
    query=READ_QUERY,
)
async def query_points(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/query."""
    query = query_request(await body_of(request), max_k(request))
    return {"points": (await run_nearest(request, name_of(request), [query]))[0]}


@qdrant_route(
    "POST",
    "/collections/{name}/points/query/batch",
    "Several nearest queries in one request",
    Scope.READ,
    array(ref("QdrantQueryResponse")),
    ref("QdrantQueryRequestBatch"),
    query=READ_QUERY,
)
async def query_batch(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/query/batch."""
    items = batch_items(await body_of(request), max_k(request))
    queries = [query_request(item, max_k(request)) for item in items]
    return [{"points": hits} for hits in await run_nearest(request, name_of(request), queries)]


# ---- Qdrant endpoints VecStore does not implement: a clear 501 instead of a bare 404 ----

UNSUPPORTED_ENDPOINTS = (
    ("PATCH", "/collections/{name}", "updating collection parameters"),
    ("PUT", "/collections/{name}/index", "payload indexes (filters work without them)"),
    ("DELETE", "/collections/{name}/index/{field_name}", "payload indexes"),
    ("POST", "/collections/{name}/points/batch", "batch update operations"),
    ("PUT", "/collections/{name}/points/vectors", "updating vectors alone (upsert the point)"),
    ("POST", "/collections/{name}/points/vectors/delete", "deleting vectors (delete the point)"),
    ("POST", "/collections/{name}/points/query/groups", "grouped queries"),
    ("POST", "/collections/{name}/points/search/groups", "grouped search"),
    ("POST", "/collections/{name}/points/recommend", "recommendation"),
    ("POST", "/collections/{name}/points/recommend/batch", "recommendation"),
    ("POST", "/collections/{name}/points/discover", "discovery search"),
    ("POST", "/collections/{name}/points/discover/batch", "discovery search"),
    ("POST", "/collections/{name}/facet", "facet counts"),
    ("POST", "/collections/aliases", "collection aliases"),
    ("GET", "/aliases", "collection aliases"),
    ("GET", "/collections/{name}/aliases", "collection aliases"),
    ("GET", "/collections/{name}/snapshots", "Qdrant snapshots (use `vecstore snapshot`)"),
    ("POST", "/collections/{name}/snapshots", "Qdrant snapshots (use `vecstore snapshot`)"),
)


def _unsupported_handler(method: str, path: str, what: str) -> Handler:
    async def refuse_endpoint(request: web.Request) -> web.StreamResponse:
        raise NotImplementedParameter(
            f"{method} {path}: {what} is not supported by VecStore (docs/qdrant.md)"
        )

    operation = Operation(
        method,
        path,
        f"Not supported: {what} (always 501)",
        "qdrant",
        {},
        ref("QdrantError"),
        unsupported=True,
    )
    refuse_endpoint.__dict__.update(error_shape=qdrant_error, openapi=operation)
    return scope(Scope.READ)(refuse_endpoint)


def add_routes(app: web.Application) -> None:
    """Register the Qdrant-compatible routes."""
    for handler in ROUTES:
        operation: Operation = handler.__dict__["openapi"]
        app.router.add_route(operation.method, operation.path, handler)
    for method, path, what in UNSUPPORTED_ENDPOINTS:
        app.router.add_route(method, path, _unsupported_handler(method, path, what))
