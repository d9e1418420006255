"""The router's aiohttp application: middlewares (errors, auth, metrics) and lifecycle.

Routes live in `native_api` (the `/v1` JSON API) and `qdrant_api` (the Qdrant-compatible
subset). Every error becomes `{"status": "error", "error": ..., "code": ...}`, except on the
Qdrant routes, whose handlers reshape it as Qdrant does (`error_shape`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import PayloadTooLarge, VecStoreError
from vecstore.cluster.spec import ClusterSpec
from vecstore.router.auth import ApiKeys, Scope, presented_key
from vecstore.router.metrics import RouterMetrics
from vecstore.router.shards import ShardSet
from vecstore.transport.rpc import RPC_PATH
from vecstore.transport.wire import JSON, MSGPACK, decode_body, encode_body

log = logging.getLogger(__name__)

SHARDS = web.AppKey("shards", ShardSet)
KEYS = web.AppKey("keys", ApiKeys)
METRICS = web.AppKey("metrics", RouterMetrics)
SPEC = web.AppKey("spec", ClusterSpec)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json"}


def respond(request: web.Request, body: Any, status: int = 200) -> web.Response:
    """JSON, or msgpack when the client accepts it."""
    kind = MSGPACK if MSGPACK in request.headers.get("Accept", "") else JSON
    return web.Response(body=encode_body(body, kind), status=status, content_type=kind)


async def body_of(request: web.Request) -> dict[str, Any]:
    """The decoded request body (JSON or msgpack)."""
    return decode_body(await request.read(), request.content_type)


def required_scope(request: web.Request) -> Scope:
    """What a request needs: reads are GET or read-only POSTs; DDL needs admin."""
    handler = request.match_info.handler
    declared = getattr(handler, "scope", None)
    if isinstance(declared, Scope):
        return declared
    return Scope.READ if request.method == "GET" else Scope.WRITE


def scope(needed: Scope) -> Callable[[Handler], Handler]:
    """Declare the scope a handler needs."""

    def mark(handler: Handler) -> Handler:
        handler.scope = needed  # type: ignore[attr-defined]
        return handler

    return mark


def error_response(request: web.Request, body: dict[str, Any], status: int, started: float) -> web.Response:
    """An error in the shape of the route's API: native, unless the handler carries an
    `error_shape(body, seconds) -> body` (the Qdrant routes do)."""
    shape = getattr(request.match_info.handler, "error_shape", None)
    if callable(shape):
        body = shape(body, time.perf_counter() - started)
    return respond(request, body, status=status)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth, error mapping and metrics for every request."""
    metrics = request.app[METRICS]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    started = time.perf_counter()
    try:
        if request.path not in OPEN_PATHS:
            request.app[KEYS].check(presented_key(request.headers), required_scope(request))
        response = await handler(request)
    except VecStoreError as err:
        response = error_response(request, err.to_dict(), err.http_status, started)
    except web.HTTPRequestEntityTooLarge as err:
        error = PayloadTooLarge(f"request body too large: {err.text}")
        response = error_response(request, error.to_dict(), 413, started)
    except web.HTTPException as err:
        body = {"status": "error", "error": err.reason, "code": "http"}
        response = error_response(request, body, err.status, started)
    except Exception:
        log.exception("unhandled router error", extra={"route": route})
        body = {"status": "error", "error": "internal error; see the router log", "code": "internal"}
        response = error_response(request, body, 500, started)
    metrics.requests.labels(route, str(response.status)).inc()
    metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
    return response


async def health(request: web.Request) -> web.Response:
    """GET /healthz."""
    return respond(request, {"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """GET /readyz: every shard has a reachable leader."""
    shards = request.app[SHARDS]
    missing = []
    for shard_id, client in enumerate(shards.clients):
        try:
            await client.find_leader()
        except VecStoreError:
            missing.append(shard_id)
    if missing:
        return respond(request, {"status": "not_ready", "shards_without_leader": missing}, 503)
    return respond(request, {"status": "ok"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """GET /metrics."""
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain")


def create_app(spec: ClusterSpec, keys: ApiKeys) -> web.Application:
    """The router application for a cluster spec."""
    from vecstore.router import native_api, openapi, qdrant_api
    from vecstore.router.rpc import RouterRpc

    app = web.Application(middlewares=[middleware], client_max_size=spec.router.max_body_bytes)
    metrics = RouterMetrics()
    app[SPEC] = spec
    app[KEYS] = keys
    app[METRICS] = metrics
    app[SHARDS] = ShardSet(spec, metrics)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await app[SHARDS].start()
        yield
        await app[SHARDS].close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics_endpoint)
    native_api.add_routes(app)
    rpc = RouterRpc()
    app.router.add_get(RPC_PATH, rpc.route_handler())
    app.on_shutdown.append(rpc.close_all)
    qdrant_api.add_routes(app)
    openapi.add_routes(app)
    return app
