"""The node's HTTP API (aiohttp): a thin adapter over NodeService.

Routers and ingest workers call it. Writes are msgpack-encoded commands accepted only by
the leader; reads take a consistency level. Every error is a JSON (or msgpack) body
`{"status": "error", "error": ..., "code": ...}` with the error class's HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from aiohttp import web

from vecstore.cluster.codec import decode_command
from vecstore.cluster.commands import (
    DeletePayloadKeys,
    OverwritePayload,
    SetPayload,
    as_vector_matrix,
    sparse_vector,
)
from vecstore.cluster.credentials import node_token
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import Filter, parse_filter
from vecstore.cluster.profile import NO_PROFILE, Profile
from vecstore.cluster.schema import CollectionSchema
from vecstore.node import facets
from vecstore.node.caller_auth import caller_auth_middleware
from vecstore.node.graphs import GRAPH_PATH, ship_graph
from vecstore.node.routes import Body, Params, Route, max_body_bytes
from vecstore.node.rpc_server import RpcServer
from vecstore.node.service import Consistency, NodeService, parse_consistency
from vecstore.shard import named, reads, search
from vecstore.shard.collection import Collection
from vecstore.shard.records import Record
from vecstore.shard.search import MAX_K
from vecstore.transport.rpc import RPC_PATH
from vecstore.transport.server import Handler, body_of, error_answer, respond, route_label
from vecstore.transport.wire import (
    MSGPACK,
    field_bool,
    field_float,
    field_int,
    field_list,
)

log = logging.getLogger(__name__)

SERVICE = web.AppKey("service", NodeService)
INLINE_QUERIES = 64  # unfiltered batches up to this size may search on the event loop


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map errors to status codes; count requests."""
    route = route_label(request)
    try:
        response = await handler(request)
    except Exception as err:  # every failure is answered; see transport.server.error_answer
        status, body = error_answer(err, route, "node")
        response = respond(request, body, status=status)
    request.app[SERVICE].metrics.requests.labels(route, str(response.status)).inc()
    return response


def filter_of(body: dict[str, Any]) -> Filter | None:
    """The optional `filter` field, parsed."""
    raw = body.get("filter")
    return None if raw is None else parse_filter(raw)


async def apply_command(service: NodeService, params: Params, body: Any) -> Any:
    """POST /v1/apply: one msgpack-encoded command (leader only)."""
    if not isinstance(body, bytes):
        raise InvalidRequest(f"commands must be sent as {MSGPACK}")
    result = await service.submit(body)
    if isinstance(result, dict):
        if "epoch" not in result:
            result = {**result, "epoch": service.shard.epoch}  # callers check their topology with it
        result = {**result, "applied_index": service.applied_index()}  # their reads wait for it
    return result


async def dry_run_command(service: NodeService, params: Params, body: Any) -> Any:
    """POST /v1/dry-run: would this msgpack-encoded payload change apply here? (leader only;
    nothing is replicated or changed). Answers like /v1/apply, or with the error apply
    would raise."""
    if not isinstance(body, bytes):
        raise InvalidRequest(f"commands must be sent as {MSGPACK}")
    command = decode_command(body)
    if not isinstance(command, (SetPayload, OverwritePayload, DeletePayloadKeys)):
        raise InvalidRequest(f"only payload changes have a dry run, not {type(command).__name__}")
    service.require_leader()
    return await service.run_read(lambda: service.shard.dry_run(command))


async def search_sparse(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/search with `"sparse": [{"indices", "values"}]` and
    `using`: exact top-k by dot product over a named sparse vector (query values already
    weighted by the router when the vector has the idf modifier)."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    name = params["name"]
    using = body.get("using")
    if not isinstance(using, str):
        raise InvalidRequest("a sparse search names its vector: 'using'")
    raw = field_list(body, "sparse")
    if not raw or not all(isinstance(q, dict) and set(q) == {"indices", "values"} for q in raw):
        raise InvalidRequest("'sparse' must be a non-empty list of {indices, values} objects")
    queries = [sparse_vector(q["indices"], q["values"], f"sparse[{n}]") for n, q in enumerate(raw)]
    k = field_int(body, "k", 10, 1, MAX_K) or 10
    condition = service.shard.resolve(params["name"], filter_of(body))
    with_payload = field_bool(body, "with_payload", True)
    threshold = field_float(body, "score_threshold")
    rows = service.shard.collection(name)
    wanted = _vector_names(rows.schema, body)

    def run() -> list[list[Record]]:
        found = service.shard.sparse_search(
            name, using, queries, k, condition, with_payload=with_payload, score_threshold=threshold
        )
        return [_attach(service, name, row, wanted) for row in found]  # type: ignore[arg-type]

    results = await service.run_read(run)
    return {
        "status": "ok",
        "results": [[hit.to_dict() for hit in row] for row in results],
        "epoch": service.shard.epoch,
    }


async def search_multi(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/search with `"multi": [matrices]` and `using`: exact
    top-k by MaxSim over a named multivector."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    name = params["name"]
    using = body.get("using")
    if not isinstance(using, str):
        raise InvalidRequest("a multivector search names its vector: 'using'")
    raw = field_list(body, "multi")
    if not raw:
        raise InvalidRequest("'multi' must be a non-empty list of query matrices")
    queries = [as_vector_matrix(matrix) for matrix in raw]
    k = field_int(body, "k", 10, 1, MAX_K) or 10
    condition = service.shard.resolve(params["name"], filter_of(body))
    with_payload = field_bool(body, "with_payload", True)
    threshold = field_float(body, "score_threshold")
    rows = service.shard.collection(name)
    wanted = _vector_names(rows.schema, body)

    def run() -> list[list[Record]]:
        found = service.shard.multi_search(
            name, using, queries, k, condition, with_payload=with_payload, score_threshold=threshold
        )
        return [_attach(service, name, row, wanted) for row in found]  # type: ignore[arg-type]

    results = await service.run_read(run)
    answer = [[hit.to_dict() for hit in row] for row in results]
    return {"status": "ok", "results": answer, "epoch": service.shard.epoch}


async def sparse_stats(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/sparse/stats {"using", "indices"}: this shard's part of
    the IDF statistics (points with the vector, and per index how many use it)."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    using = body.get("using")
    indices = field_list(body, "indices")
    if not isinstance(using, str) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise InvalidRequest("sparse stats take 'using' (a vector name) and 'indices' (integers)")
    count, frequencies = await service.run_read(
        lambda: service.shard.sparse_stats(params["name"], using, indices)
    )
    return {"status": "ok", "count": count, "df": frequencies, "epoch": service.shard.epoch}


async def search_points(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/search: batch top-k. With `"profile": true` the answer
    has the stages this node and its shard ran (`vecstore.cluster.profile`)."""
    if "sparse" in body:
        return await search_sparse(service, params, body)
    if "multi" in body:
        return await search_multi(service, params, body)
    asked = field_bool(body, "profile", False)
    profile = Profile(service.node_place) if asked or service.config.query_stages else NO_PROFILE
    if "min_applied" in body:  # read-your-writes: may wait for this replica to apply
        with profile.stage("catch_up"):
            await service.catch_up(body)
    name = params["name"]
    vectors = body["vectors"] if "vectors" in body else [field_list(body, "vector")]
    k = field_int(body, "k", 10, 1, MAX_K) or 10
    condition = service.shard.resolve(params["name"], filter_of(body))
    ef = field_int(body, "ef", None, 1, 100_000)
    exact = field_bool(body, "exact", False)
    with_payload = field_bool(body, "with_payload", True)
    using = body.get("using")
    if using is not None and not isinstance(using, str):
        raise InvalidRequest("'using' must be a vector name")
    rows = service.shard.collection(name)
    wanted = _vector_names(rows.schema, body)
    with_vector = wanted is None and field_bool(body, "with_vector", False)
    threshold = field_float(body, "score_threshold")
    started = time.perf_counter()
    collection = service.shard.searched(name, using)
    if not isinstance(vectors, list) or not vectors:
        raise InvalidRequest("'vectors' must be a non-empty list of vectors")
    # validate alone, so one bad request never fails the batch it would join
    vectors = search.validate_queries(collection, vectors, k)
    timed = profile.enabled
    key = (name, id(collection), k, condition, ef, exact, with_payload, with_vector, threshold, timed)

    def run(batch: list[Any]) -> list[Any]:
        # one profile per batch: every search of the batch shared its stages
        shared = Profile(service.shard_place) if timed else NO_PROFILE
        rows = search.search(
            collection,
            np.stack(batch),
            k,
            condition,
            ef=ef,
            exact=exact,
            with_payload=with_payload,
            with_vector=with_vector,
            score_threshold=threshold,
            profile=shared,
        )
        return [(row, shared) for row in rows]

    def quick(batch: list[Any]) -> bool:
        # A search that also scores rows exactly (past the published graphs) takes too long
        # for the event loop: it runs in a thread.
        return (
            condition is None
            and not exact
            and len(batch) <= INLINE_QUERIES
            and not collection.frozen
            and collection.exact_tail() == 0
        )

    async def run_batch(batch: list[Any]) -> list[Any]:
        if quick(batch):
            return run(batch)  # a few HNSW searches of an idle index: cheaper than a thread hop
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(service.executor, run, batch)

    consistency = parse_consistency(body.get("consistency"))
    if consistency is Consistency.EVENTUAL:
        await service.check_consistency(consistency)
    else:  # a leader check, and for strong a barrier through the Raft log
        with profile.stage("consistency"):
            await service.check_consistency(consistency)
    queued = time.perf_counter()
    results = await service.searches.submit(key, list(vectors), run_batch)
    if wanted:
        spaces = service.shard.spaces(name)
        results = [(named.attach_vectors(rows, spaces, row, wanted), shared) for row, shared in results]
    service.metrics.search_seconds.observe(time.perf_counter() - started)
    if not timed:
        found = [[hit.to_dict() for hit in row] for row, _ in results]
        return {"status": "ok", "results": found, "epoch": service.shard.epoch}
    shared = results[0][1]
    # queue: from here until the shard began (the coalescer's wait, the read pool's)
    profile.add("queue", queued, shared.first_start(queued))
    profile.extend(shared.stages)
    serialising = time.perf_counter()
    answer: Body = {"status": "ok", "results": [[hit.to_dict() for hit in row] for row, _ in results]}
    profile.add("serialise", serialising)
    service.observe_stages(profile)
    if asked:
        answer["profile"] = profile.wire()  # the router grafts it into the search's profile
    return answer | {"epoch": service.shard.epoch}


async def explain_search(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/explain: the plan a search would run."""
    k = field_int(body, "k", 10, 1, MAX_K) or 10
    using = body.get("using")
    if using is not None and not isinstance(using, str):
        raise InvalidRequest("'using' must be a vector name")
    collection = service.shard.searched(params["name"], using)
    condition = service.shard.resolve(params["name"], filter_of(body))
    plan = search.explain(collection, k, condition, field_bool(body, "exact", False))
    return {"status": "ok", "plan": plan.to_dict()}


async def get_points(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/points/get."""
    await service.catch_up(body)
    ids = field_list(body, "ids")
    with_payload = field_bool(body, "with_payload", True)
    consistency = parse_consistency(body.get("consistency"))
    await service.check_consistency(consistency)  # a follower says "not the leader" first
    collection = service.shard.collection(params["name"])
    wanted = _vector_names(collection.schema, body)
    with_vector = wanted is None and field_bool(body, "with_vector", False)
    records = await service.run_read(
        lambda: _attach(
            service,
            params["name"],
            reads.get(collection, ids, with_payload=with_payload, with_vector=with_vector),
            wanted,
        )
    )
    return {"status": "ok", "points": [r.to_dict() for r in records], "epoch": service.shard.epoch}


def _vector_names(schema: CollectionSchema, body: Body) -> list[str] | None:
    """For a collection of named vectors, the vectors a read returns (None for others)."""
    wanted = body.get("with_vector", False)
    if isinstance(wanted, tuple):  # in process, from the router's options
        wanted = list(wanted)
    if not schema.named:
        for name in wanted if isinstance(wanted, list) else ():
            schema.vector(name)  # raises: one unnamed vector
        return None
    return named.vector_names(schema, wanted)


def _attach(service: NodeService, name: str, found: list[Record], wanted: list[str] | None) -> list[Record]:
    if not wanted:
        return found
    shard = service.shard
    return named.attach_vectors(shard.collection(name), shard.spaces(name), found, wanted)


async def scroll_points(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/points/scroll."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    collection = service.shard.collection(params["name"])
    offset = body.get("offset")
    limit = field_int(body, "limit", 100, 1, reads.MAX_SCROLL_LIMIT) or 100
    condition = service.shard.resolve(params["name"], filter_of(body))
    with_payload = field_bool(body, "with_payload", True)
    wanted = _vector_names(collection.schema, body)
    with_vector = wanted is None and field_bool(body, "with_vector", False)

    def page() -> tuple[list[Record], Any]:
        found, following = reads.scroll(
            collection,
            offset=offset,
            limit=limit,
            condition=condition,
            with_payload=with_payload,
            with_vector=with_vector,
        )
        return _attach(service, params["name"], found, wanted), following

    records, next_offset = await service.run_read(page)
    points = [r.to_dict() for r in records]
    return {"status": "ok", "points": points, "next_offset": next_offset, "epoch": service.shard.epoch}


async def count_points(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/points/count."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    collection = service.shard.collection(params["name"])
    condition = service.shard.resolve(params["name"], filter_of(body))
    total = await service.run_read(lambda: reads.count(collection, condition))
    return {"status": "ok", "count": total, "epoch": service.shard.epoch}


async def list_collections(service: NodeService, params: Params, body: Body) -> Body:
    """GET /v1/collections: schemas and counts (after catching up to `min_applied`)."""
    await service.catch_up(body)
    shard = service.shard
    collections = [
        {"schema": c.schema.to_dict(), **c.stats(), **_payload_fields(c)}
        for name, c in sorted(shard.collections.items())
        if not named.is_space(name)
    ]
    return {"status": "ok", "collections": collections, "aliases": dict(shard.aliases), "epoch": shard.epoch}


def _payload_fields(collection: Collection) -> Body:
    """Declared payload indexes with the points each covers on this shard."""
    if not collection.payload_fields:
        return {}
    with collection.reading():
        fields = {
            key: {"schema": schema, "points": collection.indexed_points(key)}
            for key, schema in sorted(collection.payload_fields.items())
        }
    return {"payload_fields": fields}


async def node_status(service: NodeService, params: Params, body: Body) -> Body:
    """GET /v1/status."""
    return {"status": "ok", **service.status()}


async def membership(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/membership {"action": "add"|"remove", "raft_address": "host:port"}."""
    address = body.get("raft_address")
    if not isinstance(address, str) or ":" not in address:
        raise InvalidRequest("raft_address must look like host:port")
    await service.change_membership(str(body.get("action")), address)
    return {"status": "ok"}


async def topology_status(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/topology: this shard's topology fence (epoch, topology, any migration)."""
    consistency = parse_consistency(body.get("consistency", "leader"))
    status = await service.read(consistency, service.shard.topology_status)
    return {"status": "ok", **status}


async def dirty_points(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/topology/dirty {"collection"}: moving points written during a migration."""
    name = body.get("collection")
    if not isinstance(name, str):
        raise InvalidRequest("'collection' must be a collection name")
    consistency = parse_consistency(body.get("consistency", "leader"))
    ids = await service.read(consistency, lambda: service.shard.dirty_points(name))
    return {"status": "ok", "ids": ids}


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process serves HTTP."""
    return respond(request, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when a leader is known and this node has caught up."""
    ready = request.app[SERVICE].is_ready()
    return respond(request, {"status": "ok" if ready else "not_ready"}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    service = request.app[SERVICE]
    service.refresh_metrics()
    return web.Response(body=service.metrics.render(), content_type="text/plain")


ROUTES = (
    Route("POST", "/v1/apply", apply_command, raw_body=True),
    Route("POST", "/v1/dry-run", dry_run_command, raw_body=True),
    Route("GET", "/v1/collections", list_collections),
    Route("POST", "/v1/collections/{name}/search", search_points),
    Route("POST", "/v1/collections/{name}/explain", explain_search),
    Route("POST", "/v1/collections/{name}/sparse/stats", sparse_stats),
    Route("POST", "/v1/collections/{name}/points/get", get_points),
    Route("POST", "/v1/collections/{name}/points/scroll", scroll_points),
    Route("POST", "/v1/collections/{name}/points/count", count_points),
    Route("GET", "/v1/status", node_status),
    Route("POST", "/v1/membership", membership),
    Route("POST", "/v1/topology", topology_status),
    Route("POST", "/v1/topology/dirty", dirty_points),
    *facets.ROUTES,
)


async def graph(request: web.Request) -> web.StreamResponse:
    """A graph this node published, for a follower (`vecstore.node.graphs`)."""
    service = request.app[SERVICE]
    body = await body_of(request)
    return await ship_graph(service.shard, service.run_read, request.match_info["name"], body)


def http_handler(route: Route) -> Handler:
    """The aiohttp handler of one operation: decode the body, run it, answer."""

    async def handle(request: web.Request) -> web.Response:
        if route.raw_body:
            body: Any = await request.read() if request.content_type == MSGPACK else None
        else:
            body = await body_of(request)
        return respond(request, await route.op(request.app[SERVICE], request.match_info, body))

    return handle


def create_app(service: NodeService) -> web.Application:
    """The aiohttp application of one node: every operation over HTTP and over `/v1/rpc`."""
    secret = service.config.cluster_secret
    middlewares = [error_middleware, caller_auth_middleware(node_token(secret) if secret else None)]
    app = web.Application(middlewares=middlewares, client_max_size=max_body_bytes(service))
    app[SERVICE] = service
    for route in ROUTES:
        app.router.add_route(route.method, route.path, http_handler(route))
    rpc = RpcServer(service, ROUTES)
    app.router.add_get(RPC_PATH, rpc.endpoint.handle)
    app.on_shutdown.append(rpc.endpoint.close_all)
    app.router.add_post(GRAPH_PATH, graph)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
