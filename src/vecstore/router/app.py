"""The router's aiohttp application: middlewares (errors, auth, metrics) and lifecycle.

Routes live in `native_api` (the `/v1` JSON API), `rpc` (the same over a WebSocket),
`qdrant.routes` (the Qdrant-compatible subset) and `openapi`; each registers its routes
with a `RouteInfo` (`router.context`). Every error becomes `{"status": "error", "error":
..., "code": ...}`, except on routes whose RouteInfo carries an `error_shape` (Qdrant's).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vecstore.cluster.credentials import NO_ACCESS, NodeAccess
from vecstore.cluster.errors import RateLimited, VecStoreError
from vecstore.cluster.spec import ClusterSpec
from vecstore.router import admin, native_api, openapi
from vecstore.router.aliases import resolve_alias
from vecstore.router.audit import AuditLog
from vecstore.router.auth import ApiKeys, Scope, presented_key
from vecstore.router.context import (
    AUDIT,
    KEYS,
    LIMITS,
    METRICS,
    ROUTE_TABLE,
    SHARDS,
    SPEC,
    RouteInfo,
    add_route,
    record_audit,
    required_scope,
    route_info,
)
from vecstore.router.cors import allow_origin, check_body_type, is_preflight, preflight
from vecstore.router.metrics import RouterMetrics
from vecstore.router.qdrant import routes as qdrant_routes
from vecstore.router.rate_limit import CallerLimits, retry_after_header
from vecstore.router.rpc import RouterRpc
from vecstore.router.shards import ShardSet
from vecstore.transport.rpc import RPC_PATH
from vecstore.transport.server import Handler, error_answer, quiet_malformed_http, respond, route_label

OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json"}


def error_response(request: web.Request, body: dict[str, Any], status: int, started: float) -> web.Response:
    """An error in the shape of the route's API: native, unless its RouteInfo says otherwise."""
    info = route_info(request)
    if info is not None and info.error_shape is not None:
        body = info.error_shape(body, time.perf_counter() - started)
    return respond(request, body, status=status)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth, error mapping and metrics for every request."""
    metrics = request.app[METRICS]
    route = route_label(request)
    started = time.perf_counter()
    origins = request.app[SPEC].router.cors_origins
    key = presented_key(request.headers)
    code = None
    try:
        if is_preflight(request):
            response: web.StreamResponse = preflight(request, origins)
        else:
            if request.path not in OPEN_PATHS:
                limits = request.app[LIMITS]
                limits.check_address(request.remote or "unknown", time.monotonic())
                request.app[KEYS].check(key, required_scope(request))
                limits.check_key(key, time.monotonic())
            check_body_type(request)
            await resolve_alias(request.app, request.method, request.path, request.match_info)
            response = await handler(request)
    except Exception as err:  # every failure is answered; see transport.server.error_answer
        status, body = error_answer(err, route, "router")
        code = body.get("code")
        response = error_response(request, body, status, started)
        if isinstance(err, RateLimited):
            response.headers["Retry-After"] = retry_after_header(err.retry_after)
    allow_origin(request, response, origins)
    if request.path not in OPEN_PATHS and not is_preflight(request) and required_scope(request) > Scope.READ:
        record_audit(
            request.app,
            key,
            request.remote,
            request.method,
            request.path,
            request.match_info,
            response.status,
            code,
            response,
        )
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
    for shard_id, client in sorted(shards.clients.items()):
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


def create_app(spec: ClusterSpec, keys: ApiKeys, access: NodeAccess = NO_ACCESS) -> web.Application:
    """The router application for a cluster spec; `access` is what it presents to nodes."""
    quiet_malformed_http()
    app = web.Application(middlewares=[middleware], client_max_size=spec.router.max_body_bytes)
    metrics = RouterMetrics()
    app[SPEC] = spec
    app[KEYS] = keys
    app[METRICS] = metrics
    app[SHARDS] = ShardSet(spec, metrics, access)
    app[LIMITS] = CallerLimits.of_spec(spec.router)
    app[AUDIT] = AuditLog(spec.router.audit_log)
    app[ROUTE_TABLE] = {}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await app[SHARDS].start()
        yield
        await app[SHARDS].close()
        app[AUDIT].close()

    app.cleanup_ctx.append(lifecycle)
    add_route(app, RouteInfo("GET", "/healthz", Scope.READ), health)
    add_route(app, RouteInfo("GET", "/readyz", Scope.READ), ready)
    add_route(app, RouteInfo("GET", "/metrics", Scope.READ), metrics_endpoint)
    native_api.add_routes(app)
    admin.add_routes(app)
    rpc = RouterRpc(spec.router.max_body_bytes)
    add_route(app, RouteInfo("GET", RPC_PATH, Scope.READ), rpc.endpoint.handle)
    app.on_shutdown.append(rpc.endpoint.close_all)
    qdrant_routes.add_routes(app)
    openapi.add_routes(app)
    return app
