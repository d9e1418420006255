"""The native API under `/v1` (documented in docs/api.md and /openapi.json).

Each operation is `op(call) -> answer`, independent of the transport: the route table
(`ROUTES`) serves them as HTTP routes (JSON or msgpack bodies) and over the router's
`/v1/rpc` WebSocket (`router.rpc`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from aiohttp import web

from vecstore.cluster.commands import Selector, named_columns, with_default_vector
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import Filter, parse_filter
from vecstore.cluster.ids import normalize_point_id
from vecstore.cluster.profile import NO_PROFILE, Profile
from vecstore.cluster.read_token import parse_token
from vecstore.cluster.schema import CollectionSchema, validate_collection_name
from vecstore.router.aliases import alias_actions
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS, SPEC, RouteInfo, add_route
from vecstore.router.hybrid import Output
from vecstore.router.hybrid_engine import hybrid_engine
from vecstore.router.inference import infer_named
from vecstore.router.qdrant.prefetch import stage_of
from vecstore.transport.arrays import as_binary_vectors, binary_vectors_wanted
from vecstore.transport.server import Handler, body_of, respond
from vecstore.transport.wire import field_bool, field_float, field_int, field_list

CONSISTENCY = ("eventual", "leader", "strong")


class Located(Protocol):
    """What path and limit helpers read: an aiohttp request or a `Call`."""

    @property
    def app(self) -> web.Application: ...

    @property
    def match_info(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Call:
    """One request to an operation, whatever carried it."""

    app: web.Application
    method: str
    match_info: Mapping[str, str]
    body: dict[str, Any]


Op = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class NativeRoute:
    """One operation of the native API and the scope it needs."""

    method: str
    path: str
    op: Op
    scope: Scope


def name_of(request: Located) -> str:
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
    if (body.get("ids") is None) == (body.get("filter") is None):
        raise InvalidRequest("choose points with exactly one of 'ids' or 'filter' (null counts as absent)")
    condition = filter_of(body)
    if condition is None:
        return Selector.of_ids(field_list(body, "ids"))
    return Selector.of_filter(condition)


def check_batch(request: Located, size: int) -> None:
    """Refuse batches above the configured bound."""
    limit = request.app[SPEC].router.max_batch_points
    if size > limit:
        raise InvalidRequest(f"batch has {size} points; the limit is {limit} per request")
    if size == 0:
        raise InvalidRequest("batch is empty")


def search_options(request: Located, body: dict[str, Any]) -> dict[str, Any]:
    """Shared search parameters with their bounds."""
    max_k = request.app[SPEC].router.max_k
    return {
        "k": field_int(body, "k", 10, 1, max_k) or 10,
        "ef": field_int(body, "ef", None, 1, 100_000),
        "exact": field_bool(body, "exact", False),
        "with_payload": field_bool(body, "with_payload", True),
        "with_vector": with_vector_of(body),
        "score_threshold": field_float(body, "score_threshold"),
        "consistency": consistency_of(body),
        "allow_partial": field_bool(body, "allow_partial", False),
        "after": parse_token(body.get("after")),
        **using_of(body),
    }


def using_of(body: dict[str, Any]) -> dict[str, str]:
    """`{"using": name}` when the request names the vector to search (named vectors)."""
    using = body.get("using")
    if using is None:
        return {}
    if not isinstance(using, str):
        raise InvalidRequest("'using' must be a vector name")
    return {"using": using}


async def run_searches(
    request: Located, name: str, vectors: Any, body: dict[str, Any], profile: Profile = NO_PROFILE
) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """One scatter-gather for a batch of query vectors sharing options (`profile`: its stages,
    from parse, which began when the profile's last stage ended, to merge)."""
    options = search_options(request, body)
    k = options.pop("k")
    if isinstance(vectors, np.ndarray):  # binary vectors (msgpack): one matrix
        vectors = vectors.tolist() if vectors.ndim == 2 else [vectors.tolist()]
    elif isinstance(vectors, list):
        vectors = [v.tolist() if isinstance(v, np.ndarray) else v for v in vectors]
    if not isinstance(vectors, list) or not vectors:
        raise InvalidRequest("'vectors' must be a non-empty list of vectors")
    check_batch(request, len(vectors))
    condition = filter_of(body)
    profile.add("parse", profile.last_end())
    return await request.app[SHARDS].search(name, vectors, k, condition, profile=profile, **options)


async def list_collections(call: Call) -> Any:
    """GET /v1/collections."""
    shards = call.app[SHARDS]
    await shards.refresh_schemas()
    return {"status": "ok", "collections": [s.to_dict() for _, s in sorted(shards.schemas.items())]}


async def create_collection(call: Call) -> Any:
    """PUT /v1/collections/{name} with the schema (dimension, metric, dtype, hnsw)."""
    body = call.body
    schema = CollectionSchema.from_dict({**body, "name": name_of(call)})
    created = await call.app[SHARDS].create_collection(schema)
    return {"status": "ok", "created": created, "schema": schema.to_dict()}


async def collection_info(call: Call) -> Any:
    """GET /v1/collections/{name}."""
    info = await call.app[SHARDS].collection_info(name_of(call))
    return {"status": "ok", **info}


async def create_index(call: Call) -> Any:
    """PUT /v1/collections/{name}/index {"key", "schema"}: declare a payload index (a type
    name or {"type", ...params}, as Qdrant's field_schema); reported by GET collection."""
    body = call.body
    unknown = set(body) - {"key", "schema"}
    if unknown or "key" not in body or body.get("schema") is None:
        raise InvalidRequest("a payload index is {'key': payload key, 'schema': type or {'type', ...}}")
    changed = await call.app[SHARDS].set_payload_index(name_of(call), body["key"], body["schema"])
    return {"status": "ok", "changed": changed}


async def drop_index(call: Call) -> Any:
    """DELETE /v1/collections/{name}/index/{key}: remove a declared payload index."""
    changed = await call.app[SHARDS].set_payload_index(name_of(call), call.match_info["key"], None)
    return {"status": "ok", "changed": changed}


async def update_aliases(call: Call) -> Any:
    """POST /v1/aliases {"actions": [{"create_alias": {...}}, {"delete_alias": {...}},
    {"rename_alias": {...}}]} (Qdrant's shape): applied together, on every shard."""
    shards = call.app[SHARDS]
    await shards.update_aliases(alias_actions(call.body))
    return {"status": "ok", "aliases": dict(sorted(shards.aliases.items()))}


async def list_aliases(call: Call) -> Any:
    """GET /v1/aliases: alias -> collection."""
    shards = call.app[SHARDS]
    await shards.refresh_schemas()
    return {"status": "ok", "aliases": dict(sorted(shards.aliases.items()))}


async def drop_collection(call: Call) -> Any:
    """DELETE /v1/collections/{name}."""
    dropped = await call.app[SHARDS].drop_collection(name_of(call))
    return {"status": "ok", "dropped": dropped}


async def upsert_points(call: Call) -> Any:
    """PUT /v1/collections/{name}/points: {"points": [{"id", "vector", "payload"}]} (named
    vectors: "vector" maps vector names to vectors), or columns {"ids": [...], "vectors":
    [[...]] or one float32 matrix, "payloads": [...]}."""
    body = call.body
    shards = call.app[SHARDS]
    if "points" not in body and "ids" in body:
        ids, vectors, payloads = columns_of(call, body)
    else:
        points = field_list(body, "points")
        check_batch(call, len(points))
        if not all(isinstance(p, dict) and "id" in p and "vector" in p for p in points):
            raise InvalidRequest("each point must be an object with 'id' and 'vector' (and 'payload')")
        ids = [p["id"] for p in points]
        vectors = [p["vector"] for p in points]
        payloads = [p.get("payload") for p in points]
        schema = await shards.schema(name_of(call))
        if schema.default_vector:  # a plain vector is Qdrant's default vector (named "")
            vectors = with_default_vector(vectors)
        if any(isinstance(vector, dict) for vector in vectors):  # named vectors: name -> vector
            named = [
                infer_named(v, f"points[{n}]") if isinstance(v, dict) else v for n, v in enumerate(vectors)
            ]
            answer = await shards.upsert_named(name_of(call), ids, named_columns(named), payloads)
            return {**answer, "read_token": shards.read_token()}
    answer = await shards.upsert(name_of(call), ids, vectors, payloads)
    return {**answer, "read_token": shards.read_token()}


async def update_vectors(call: Call) -> Any:
    """PUT /v1/collections/{name}/points/vectors {"points": [{"id", "vector": {name: [...]}}]}:
    set named vectors of existing points, keeping their other vectors and payloads."""
    points = field_list(call.body, "points")
    check_batch(call, len(points))
    if not all(isinstance(p, dict) and "id" in p and isinstance(p.get("vector"), dict) for p in points):
        raise InvalidRequest("each point must be an object with 'id' and 'vector' (vector name -> vector)")
    shards = call.app[SHARDS]
    vectors = named_columns([infer_named(p["vector"], f"points[{n}]") for n, p in enumerate(points)])
    answer = await shards.update_vectors(name_of(call), [p["id"] for p in points], vectors)
    return {**answer, "read_token": shards.read_token()}


async def delete_vectors(call: Call) -> Any:
    """POST /v1/collections/{name}/points/vectors/delete {"vectors": [names], ids|filter}."""
    body = call.body
    names = field_list(body, "vectors")
    if not all(isinstance(n, str) for n in names):
        raise InvalidRequest("'vectors' must be a list of vector names")
    selector = selector_of({k: v for k, v in body.items() if k in ("ids", "filter")})
    shards = call.app[SHARDS]
    answer = await shards.delete_vectors(name_of(call), selector, names)
    return {**answer, "read_token": shards.read_token()}


def with_vector_of(body: dict[str, Any]) -> bool | tuple[str, ...]:
    """`with_vector`: true, false, or the names of the named vectors to return (a tuple:
    concurrent identical searches are keyed by their options)."""
    value = body.get("with_vector", False)
    if isinstance(value, list) and all(isinstance(n, str) for n in value):
        return tuple(value)
    return field_bool(body, "with_vector", False)


def columns_of(call: Call, body: dict[str, Any]) -> tuple[list[Any], Any, list[Any]]:
    """The `ids`, `vectors` and `payloads` columns of a columnar upsert, of equal lengths."""
    unknown = set(body) - {"ids", "vectors", "payloads"}
    if unknown:
        raise InvalidRequest(f"a columnar upsert takes ids, vectors and payloads; unknown: {sorted(unknown)}")
    ids = field_list(body, "ids")
    check_batch(call, len(ids))
    vectors = body.get("vectors")
    if not isinstance(vectors, (list, np.ndarray)):
        raise InvalidRequest("vectors must be a list of vectors or a float32 matrix")
    payloads = body.get("payloads")
    if payloads is None:
        payloads = [None] * len(ids)
    if not isinstance(payloads, list):
        raise InvalidRequest("payloads must be a list (null for a point without payload)")
    if not len(vectors) == len(payloads) == len(ids):
        raise InvalidRequest(
            f"ids, vectors and payloads must have the same length, got {len(ids)}, "
            f"{len(vectors)} and {len(payloads)}"
        )
    return ids, vectors, payloads


async def delete_points(call: Call) -> Any:
    """POST /v1/collections/{name}/points/delete {"ids": [...]} or {"filter": {...}}."""
    body = call.body
    shards = call.app[SHARDS]
    answer = await shards.delete(name_of(call), selector_of(body))
    return {**answer, "read_token": shards.read_token()}


async def set_payload(call: Call) -> Any:
    """POST (merge) or PUT (overwrite) /v1/collections/{name}/points/payload."""
    body = call.body
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidRequest("'payload' must be an object")
    selector = selector_of({k: v for k, v in body.items() if k in ("ids", "filter")})
    shards = call.app[SHARDS]
    answer = await shards.set_payload(name_of(call), selector, payload, overwrite=call.method == "PUT")
    return {**answer, "read_token": shards.read_token()}


async def delete_payload_keys(call: Call) -> Any:
    """POST /v1/collections/{name}/points/payload/delete {"keys": [...], ids|filter}."""
    body = call.body
    keys = field_list(body, "keys")
    if not all(isinstance(k, str) for k in keys):
        raise InvalidRequest("'keys' must be a list of strings")
    selector = selector_of({k: v for k, v in body.items() if k in ("ids", "filter")})
    shards = call.app[SHARDS]
    answer = await shards.delete_payload_keys(name_of(call), selector, keys)
    return {**answer, "read_token": shards.read_token()}


async def get_points(call: Call) -> Any:
    """POST /v1/collections/{name}/points/get {"ids": [...]}."""
    body = call.body
    ids = field_list(body, "ids")
    check_batch(call, len(ids))
    points = await call.app[SHARDS].get(
        name_of(call),
        [normalize_point_id(i) for i in ids],
        consistency_of(body),
        parse_token(body.get("after")),
        with_payload=field_bool(body, "with_payload", True),
        with_vector=with_vector_of(body),
    )
    if binary_vectors_wanted(body):
        points = as_binary_vectors(points)
    return {"status": "ok", "points": points}


async def scroll_points(call: Call) -> Any:
    """POST /v1/collections/{name}/points/scroll {"offset", "limit", "filter"}."""
    body = call.body
    limit = field_int(body, "limit", 100, 1, call.app[SPEC].router.max_batch_points) or 100
    offset = body.get("offset")
    if offset is not None:
        offset = normalize_point_id(offset)
    points, next_offset = await call.app[SHARDS].scroll(
        name_of(call),
        offset,
        limit,
        filter_of(body),
        consistency_of(body),
        parse_token(body.get("after")),
        with_payload=field_bool(body, "with_payload", True),
        with_vector=with_vector_of(body),
    )
    if binary_vectors_wanted(body):
        points = as_binary_vectors(points)
    return {"status": "ok", "points": points, "next_offset": next_offset}


async def count_points(call: Call) -> Any:
    """POST /v1/collections/{name}/points/count {"filter": {...}}."""
    body = call.body
    after = parse_token(body.get("after"))
    total = await call.app[SHARDS].count(name_of(call), filter_of(body), consistency_of(body), after)
    return {"status": "ok", "count": total}


async def search(call: Call) -> Any:
    """POST /v1/collections/{name}/search {"vector" | "vectors", "k", "filter", ...};
    `"profile": true` adds the search's stages (docs/slow-queries.md)."""
    body = call.body
    profiler = call.app[SHARDS].profiler
    asked = field_bool(body, "profile", False)
    profile = profiler.start(asked)
    single = "vector" in body
    vectors = [body["vector"]] if single else body.get("vectors")
    name = name_of(call)
    results, warnings = await run_searches(call, name, [] if vectors is None else vectors, body, profile)
    with profile.stage("serialise"):
        if binary_vectors_wanted(body):
            results = [as_binary_vectors(hits) for hits in results]
        answer: dict[str, Any] = {"status": "ok"}
        answer["results" if not single else "result"] = results if not single else results[0]
        if warnings:
            answer["warnings"] = warnings
    report = profiler.finish(
        profile,
        asked,
        collection=name,
        k=body.get("k", 10),
        queries=len(results),
        filtered=body.get("filter") is not None,
        api="native",
    )
    if report is not None:
        answer["profile"] = report
    return answer


QUERY_FIELDS = (
    "query",
    "prefetch",
    "using",
    "filter",
    "params",
    "limit",
    "offset",
    "score_threshold",
    "with_payload",
    "with_vector",
    "consistency",
    "after",
    "binary_vectors",
)


async def query(call: Call) -> Any:
    """POST /v1/collections/{name}/query: a multi-stage query in Qdrant's Query API shape
    (prefetch, fusion, sparse and BM25 queries, re-scoring, MMR) with native filters."""
    body = call.body
    unknown = set(body) - set(QUERY_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown query field(s) {sorted(unknown)}; expected {sorted(QUERY_FIELDS)}")
    max_k = call.app[SPEC].router.max_k
    stage = stage_of({k: v for k, v in body.items() if k in STAGE_FIELDS}, max_k, "", parse=_native_filter)
    offset = field_int(body, "offset", 0, 0, max_k - stage.limit) or 0
    name = name_of(call)
    shards = call.app[SHARDS]
    schema = await shards.schema(name)
    engine = hybrid_engine(shards, name, schema, consistency_of(body), parse_token(body.get("after")))
    output = Output(field_bool(body, "with_payload", True), with_vector_of(body), offset)
    hits = await engine.run(stage, output)
    if binary_vectors_wanted(body):
        hits = as_binary_vectors(hits)
    return {"status": "ok", "result": hits}


def _native_filter(raw: object) -> Filter | None:
    return None if raw is None else parse_filter(raw)


STAGE_FIELDS = ("query", "prefetch", "using", "filter", "params", "limit", "score_threshold")


async def explain(call: Call) -> Any:
    """POST /v1/collections/{name}/explain {"k", "filter", "exact", "using"}: the plan each
    shard would run for the search (exact scan or HNSW, the estimated matches, why)."""
    body = call.body
    unknown = set(body) - {"k", "filter", "exact", "using"}
    if unknown:
        raise InvalidRequest(f"explain takes k, filter, exact and using; unknown: {sorted(unknown)}")
    k = field_int(body, "k", 10, 1, call.app[SPEC].router.max_k) or 10
    plans = await call.app[SHARDS].explain(
        name_of(call), k, filter_of(body), field_bool(body, "exact", False), **using_of(body)
    )
    return {"status": "ok", "plans": plans}


async def search_batch(call: Call) -> Any:
    """POST /v1/collections/{name}/search/batch {"searches": [{"vector", ...}, ...]}.

    Searches sharing the same options go to each shard in one call; `"profile": true` (beside
    "searches") adds the stages of them all.
    """
    body = call.body
    profiler = call.app[SHARDS].profiler
    asked = field_bool(body, "profile", False)
    profile = profiler.start(asked)
    searches = field_list(body, "searches")
    check_batch(call, len(searches))
    name = name_of(call)
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
        found, group_warnings = await run_searches(call, name, vectors, first, profile)
        warnings += group_warnings
        with profile.stage("serialise"):
            binary = binary_vectors_wanted(first)
            for position, hits in zip(positions, found, strict=True):
                results[position] = as_binary_vectors(hits) if binary else hits
    answer: dict[str, Any] = {"status": "ok", "results": results}
    if warnings:
        answer["warnings"] = sorted(set(warnings))
    report = profiler.finish(
        profile,
        asked,
        collection=name,
        k=None,
        queries=len(searches),
        filtered=any(item.get("filter") is not None for item in searches),
        api="native",
    )
    if report is not None:
        answer["profile"] = report
    return answer


async def cluster_status(call: Call) -> Any:
    """GET /v1/status: every node of every shard."""
    return {"status": "ok", "nodes": await call.app[SHARDS].status()}


ROUTES = (
    NativeRoute("GET", "/v1/collections", list_collections, Scope.READ),
    NativeRoute("PUT", "/v1/collections/{name}", create_collection, Scope.ADMIN),
    NativeRoute("GET", "/v1/collections/{name}", collection_info, Scope.READ),
    NativeRoute("DELETE", "/v1/collections/{name}", drop_collection, Scope.ADMIN),
    NativeRoute("PUT", "/v1/collections/{name}/index", create_index, Scope.WRITE),
    NativeRoute("DELETE", "/v1/collections/{name}/index/{key}", drop_index, Scope.WRITE),
    NativeRoute("PUT", "/v1/collections/{name}/points", upsert_points, Scope.WRITE),
    NativeRoute("POST", "/v1/collections/{name}/points/delete", delete_points, Scope.WRITE),
    NativeRoute("PUT", "/v1/collections/{name}/points/vectors", update_vectors, Scope.WRITE),
    NativeRoute("POST", "/v1/collections/{name}/points/vectors/delete", delete_vectors, Scope.WRITE),
    NativeRoute("POST", "/v1/collections/{name}/points/payload", set_payload, Scope.WRITE),
    NativeRoute("PUT", "/v1/collections/{name}/points/payload", set_payload, Scope.WRITE),
    NativeRoute("POST", "/v1/collections/{name}/points/payload/delete", delete_payload_keys, Scope.WRITE),
    NativeRoute("POST", "/v1/collections/{name}/points/get", get_points, Scope.READ),
    NativeRoute("POST", "/v1/collections/{name}/points/scroll", scroll_points, Scope.READ),
    NativeRoute("POST", "/v1/collections/{name}/points/count", count_points, Scope.READ),
    NativeRoute("POST", "/v1/collections/{name}/search", search, Scope.READ),
    NativeRoute("POST", "/v1/collections/{name}/search/batch", search_batch, Scope.READ),
    NativeRoute("POST", "/v1/collections/{name}/query", query, Scope.READ),
    NativeRoute("POST", "/v1/collections/{name}/explain", explain, Scope.READ),
    NativeRoute("GET", "/v1/status", cluster_status, Scope.READ),
    NativeRoute("GET", "/v1/aliases", list_aliases, Scope.READ),
    NativeRoute("POST", "/v1/aliases", update_aliases, Scope.ADMIN),
)


def http_handler(route: NativeRoute) -> Handler:
    """An operation as an aiohttp handler (auth and errors are the app's middleware)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await body_of(request) if request.can_read_body else {}
        call = Call(request.app, request.method, request.match_info, body)
        return respond(request, await route.op(call))

    return handle


def add_routes(app: web.Application) -> None:
    """Register the native API."""
    for route in ROUTES:
        add_route(app, RouteInfo(route.method, route.path, route.scope), http_handler(route))
