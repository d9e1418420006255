"""The native JSON API under `/v1` (documented in docs/api.md and /openapi.json)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vecstore.cluster.commands import Selector
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import Filter, parse_filter
from vecstore.cluster.ids import normalize_point_id
from vecstore.cluster.schema import CollectionSchema, validate_collection_name
from vecstore.cluster.wire import field_bool, field_float, field_int, field_list
from vecstore.router.app import SHARDS, SPEC, body_of, respond, scope
from vecstore.router.auth import Scope

CONSISTENCY = ("eventual", "leader", "strong")


def name_of(request: web.Request) -> str:
    """The collection name in the path, validated."""
    return validate_collection_name(request.match_info["name"])


def filter_of(body: dict[str, Any], key: str = "filter") -> Filter | None:
    """An optional filter field."""
    raw = body.get(key)
    return None if raw is None else parse_filter(raw)


def consistency_of(body: dict[str, Any]) -> str:
    """The consistency level (default eventual)."""
    value = body.get("consistency", "eventual")
    if value not in CONSISTENCY:
        raise InvalidRequest(f"consistency {value!r} is not one of {', '.join(CONSISTENCY)}")
    return str(value)


def selector_of(body: dict[str, Any]) -> Selector:
    """Points chosen by `ids` or by `filter` (exactly one)."""
    if ("ids" in body) == ("filter" in body):
        raise InvalidRequest("choose points with exactly one of 'ids' or 'filter'")
    if "ids" in body:
        return Selector.of_ids(field_list(body, "ids"))
    condition = filter_of(body)
    assert condition is not None
    return Selector.of_filter(condition)


def check_batch(request: web.Request, size: int) -> None:
    """Refuse batches above the configured bound."""
    limit = request.app[SPEC].router.max_batch_points
    if size > limit:
        raise InvalidRequest(f"batch has {size} points; the limit is {limit} per request")
    if size == 0:
        raise InvalidRequest("batch is empty")


def search_options(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Shared search parameters with their bounds."""
    max_k = request.app[SPEC].router.max_k
    return {
        "k": field_int(body, "k", 10, 1, max_k) or 10,
        "ef": field_int(body, "ef", None, 1, 100_000),
        "exact": field_bool(body, "exact", False),
        "with_payload": field_bool(body, "with_payload", True),
        "with_vector": field_bool(body, "with_vector", False),
        "score_threshold": field_float(body, "score_threshold"),
        "consistency": consistency_of(body),
        "allow_partial": field_bool(body, "allow_partial", False),
    }


async def run_searches(
    request: web.Request, name: str, vectors: list[Any], body: dict[str, Any]
) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """One scatter-gather for a batch of query vectors sharing options."""
    options = search_options(request, body)
    k = options.pop("k")
    if not isinstance(vectors, list) or not vectors:
        raise InvalidRequest("'vectors' must be a non-empty list of vectors")
    check_batch(request, len(vectors))
    return await request.app[SHARDS].search(name, vectors, k, filter_of(body), **options)


@scope(Scope.READ)
async def list_collections(request: web.Request) -> web.Response:
    """GET /v1/collections."""
    shards = request.app[SHARDS]
    await shards.refresh_schemas()
    return respond(
        request,
        {"status": "ok", "collections": [s.to_dict() for _, s in sorted(shards.schemas.items())]},
    )


@scope(Scope.ADMIN)
async def create_collection(request: web.Request) -> web.Response:
    """PUT /v1/collections/{name} with the schema (dimension, metric, dtype, hnsw)."""
    body = await body_of(request)
    schema = CollectionSchema.from_dict({**body, "name": name_of(request)})
    created = await request.app[SHARDS].create_collection(schema)
    return respond(request, {"status": "ok", "created": created, "schema": schema.to_dict()})


@scope(Scope.READ)
async def collection_info(request: web.Request) -> web.Response:
    """GET /v1/collections/{name}."""
    info = await request.app[SHARDS].collection_info(name_of(request))
    return respond(request, {"status": "ok", **info})


@scope(Scope.ADMIN)
async def drop_collection(request: web.Request) -> web.Response:
    """DELETE /v1/collections/{name}."""
    dropped = await request.app[SHARDS].drop_collection(name_of(request))
    return respond(request, {"status": "ok", "dropped": dropped})


@scope(Scope.WRITE)
async def upsert_points(request: web.Request) -> web.Response:
    """PUT /v1/collections/{name}/points {"points": [{"id", "vector", "payload"}]}."""
    body = await body_of(request)
    points = field_list(body, "points")
    check_batch(request, len(points))
    if not all(isinstance(p, dict) and "id" in p and "vector" in p for p in points):
        raise InvalidRequest("each point must be an object with 'id' and 'vector' (and 'payload')")
    result = await request.app[SHARDS].upsert(
        name_of(request),
        [p["id"] for p in points],
        [p["vector"] for p in points],
        [p.get("payload") for p in points],
    )
    return respond(request, result)


@scope(Scope.WRITE)
async def delete_points(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/points/delete {"ids": [...]} or {"filter": {...}}."""
    body = await body_of(request)
    result = await request.app[SHARDS].delete(name_of(request), selector_of(body))
    return respond(request, result)


@scope(Scope.WRITE)
async def set_payload(request: web.Request) -> web.Response:
    """POST (merge) or PUT (overwrite) /v1/collections/{name}/points/payload."""
    body = await body_of(request)
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidRequest("'payload' must be an object")
    selector = selector_of({k: v for k, v in body.items() if k in ("ids", "filter")})
    result = await request.app[SHARDS].set_payload(
        name_of(request), selector, payload, overwrite=request.method == "PUT"
    )
    return respond(request, result)


@scope(Scope.WRITE)
async def delete_payload_keys(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/points/payload/delete {"keys": [...], ids|filter}."""
    body = await body_of(request)
    keys = field_list(body, "keys")
    if not all(isinstance(k, str) for k in keys):
        raise InvalidRequest("'keys' must be a list of strings")
    selector = selector_of({k: v for k, v in body.items() if k in ("ids", "filter")})
    result = await request.app[SHARDS].delete_payload_keys(name_of(request), selector, keys)
    return respond(request, result)


@scope(Scope.READ)
async def get_points(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/points/get {"ids": [...]}."""
    body = await body_of(request)
    ids = field_list(body, "ids")
    check_batch(request, len(ids))
    points = await request.app[SHARDS].get(
        name_of(request),
        [normalize_point_id(i) for i in ids],
        consistency_of(body),
        with_payload=field_bool(body, "with_payload", True),
        with_vector=field_bool(body, "with_vector", False),
    )
    return respond(request, {"status": "ok", "points": points})


@scope(Scope.READ)
async def scroll_points(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/points/scroll {"offset", "limit", "filter"}."""
    body = await body_of(request)
    limit = field_int(body, "limit", 100, 1, request.app[SPEC].router.max_batch_points) or 100
    offset = body.get("offset")
    if offset is not None:
        offset = normalize_point_id(offset)
    points, next_offset = await request.app[SHARDS].scroll(
        name_of(request),
        offset,
        limit,
        filter_of(body),
        consistency_of(body),
        with_payload=field_bool(body, "with_payload", True),
        with_vector=field_bool(body, "with_vector", False),
    )
    return respond(request, {"status": "ok", "points": points, "next_offset": next_offset})


@scope(Scope.READ)
async def count_points(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/points/count {"filter": {...}}."""
    body = await body_of(request)
    total = await request.app[SHARDS].count(name_of(request), filter_of(body), consistency_of(body))
    return respond(request, {"status": "ok", "count": total})


@scope(Scope.READ)
async def search(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/search {"vector" | "vectors", "k", "filter", ...}."""
    body = await body_of(request)
    single = "vector" in body
    vectors = [body["vector"]] if single else body.get("vectors")
    results, warnings = await run_searches(request, name_of(request), vectors or [], body)
    answer: dict[str, Any] = {"status": "ok"}
    answer["results" if not single else "result"] = results if not single else results[0]
    if warnings:
        answer["warnings"] = warnings
    return respond(request, answer)


@scope(Scope.READ)
async def search_batch(request: web.Request) -> web.Response:
    """POST /v1/collections/{name}/search/batch {"searches": [{"vector", ...}, ...]}.

    Searches sharing the same options go to each shard in one call.
    """
    body = await body_of(request)
    searches = field_list(body, "searches")
    check_batch(request, len(searches))
    name = name_of(request)
    groups: dict[str, list[int]] = {}
    for position, item in enumerate(searches):
        if not isinstance(item, dict) or "vector" not in item:
            raise InvalidRequest(f"searches[{position}] must be an object with a 'vector'")
        options = {k: v for k, v in item.items() if k != "vector"}
        groups.setdefault(repr(sorted(options.items(), key=lambda kv: kv[0])), []).append(position)
    results: list[list[dict[str, Any]]] = [[] for _ in searches]
    warnings: list[str] = []
    for positions in groups.values():
        first = searches[positions[0]]
        vectors = [searches[p]["vector"] for p in positions]
        found, group_warnings = await run_searches(request, name, vectors, first)
        warnings += group_warnings
        for position, hits in zip(positions, found, strict=True):
            results[position] = hits
    answer: dict[str, Any] = {"status": "ok", "results": results}
    if warnings:
        answer["warnings"] = sorted(set(warnings))
    return respond(request, answer)


@scope(Scope.READ)
async def cluster_status(request: web.Request) -> web.Response:
    """GET /v1/status: every node of every shard."""
    return respond(request, {"status": "ok", "nodes": await request.app[SHARDS].status()})


def add_routes(app: web.Application) -> None:
    """Register the native API."""
    router = app.router
    router.add_get("/v1/collections", list_collections)
    router.add_put("/v1/collections/{name}", create_collection)
    router.add_get("/v1/collections/{name}", collection_info)
    router.add_delete("/v1/collections/{name}", drop_collection)
    router.add_put("/v1/collections/{name}/points", upsert_points)
    router.add_post("/v1/collections/{name}/points/delete", delete_points)
    router.add_post("/v1/collections/{name}/points/payload", set_payload)
    router.add_put("/v1/collections/{name}/points/payload", set_payload)
    router.add_post("/v1/collections/{name}/points/payload/delete", delete_payload_keys)
    router.add_post("/v1/collections/{name}/points/get", get_points)
    router.add_post("/v1/collections/{name}/points/scroll", scroll_points)
    router.add_post("/v1/collections/{name}/points/count", count_points)
    router.add_post("/v1/collections/{name}/search", search)
    router.add_post("/v1/collections/{name}/search/batch", search_batch)
    router.add_get("/v1/status", cluster_status)
