"""What every router handler reads from its application, and the route table.

The application holds the shard set, the API keys, the metrics and the spec under typed
keys, and `ROUTE_TABLE`: for each registered route, a `RouteInfo` saying which scope it
needs, how its errors are shaped and how it is documented. Handler modules import this
module; `router.app` imports them, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vecstore.cluster.spec import ClusterSpec
from vecstore.router.audit import AuditLog, points_in
from vecstore.router.auth import ApiKeys, Scope
from vecstore.router.metrics import RouterMetrics
from vecstore.router.operation import Operation
from vecstore.router.rate_limit import CallerLimits, key_fingerprint
from vecstore.router.shards import ShardSet
from vecstore.transport.server import Handler

SHARDS = web.AppKey("shards", ShardSet)
KEYS = web.AppKey("keys", ApiKeys)
METRICS = web.AppKey("metrics", RouterMetrics)
SPEC = web.AppKey("spec", ClusterSpec)
LIMITS = web.AppKey("limits", CallerLimits)
AUDIT = web.AppKey("audit", AuditLog)

ErrorShape = Callable[[dict[str, Any], float], dict[str, Any]]
"""`shape(native_error_body, seconds) -> body`: an error in the route's API's own shape."""


@dataclass(frozen=True)
class RouteInfo:
    """One route of the router: what it needs and how it answers."""

    method: str
    path: str
    scope: Scope
    operation: Operation | None = None
    """Its OpenAPI description; None for routes that `router.openapi.NATIVE` describes."""
    error_shape: ErrorShape | None = None
    """None: the native error body."""


ROUTE_TABLE: web.AppKey[dict[web.AbstractRoute, RouteInfo]] = web.AppKey("route_table")
"""aiohttp route -> RouteInfo, filled by `add_route` (`router.app.create_app` creates it)."""


def add_route(app: web.Application, info: RouteInfo, handler: Handler) -> None:
    """Register `handler` for `info.method info.path` and remember its RouteInfo."""
    route = app.router.add_route(info.method, info.path, handler)
    app[ROUTE_TABLE][route] = info


def route_info(request: web.Request) -> RouteInfo | None:
    """The RouteInfo of the route a request matched (None for 404s and unregistered routes)."""
    return request.app.get(ROUTE_TABLE, {}).get(request.match_info.route)


def required_scope(request: web.Request) -> Scope:
    """What a request needs: the route's declared scope; otherwise reads for GET, writes else."""
    info = route_info(request)
    if info is not None:
        return info.scope
    return Scope.READ if request.method == "GET" else Scope.WRITE


def record_audit(
    app: web.Application,
    key: str | None,
    client: str | None,
    method: str,
    path: str,
    params: Mapping[str, str],
    status: int,
    code: object,
    answer: object = None,
) -> None:
    """One audit record of a write or admin operation (HTTP or an RPC frame); `answer`
    (the HTTP response or the RPC answer) gives the point count when it has one."""
    log = app[AUDIT]
    if not log.enabled:
        return
    scope = app[KEYS].scope_of(key)
    log.record(
        who=f"{scope.name.lower()}:{key_fingerprint(key)}" if scope is not None and key else "anonymous",
        client=client,
        method=method,
        path=path,
        collection=params.get("name"),
        status=status,
        error=code,
        points=points_in(answer),
    )
