"""The Qdrant-compatible REST subset on the router port: qdrant-client (REST) works unmodified.

Every Qdrant route is listed in `ROUTES`: the service and collection endpoints
(`collections`), points (`points`), search and query (`search`), and the Qdrant endpoints
VecStore refuses with a 501. The serving machinery is in `http`. docs/qdrant.md lists what
is supported and what is refused.
"""

from __future__ import annotations

from aiohttp import web

from vecstore.cluster.errors import NotImplementedParameter
from vecstore.router.auth import Scope
from vecstore.router.context import add_route
from vecstore.router.operation import Operation
from vecstore.router.qdrant import batch, collections, examples, facet, groups, points, search
from vecstore.router.qdrant.http import QdrantRoute
from vecstore.router.qdrant.schemas import ref

# ---- Qdrant endpoints VecStore does not implement: a clear 501 instead of a bare 404 ----

UNSUPPORTED_ENDPOINTS = (
    ("PATCH", "/collections/{name}", "updating collection parameters"),
    ("GET", "/collections/{name}/snapshots", "Qdrant snapshots (use `vecstore snapshot`)"),
    ("POST", "/collections/{name}/snapshots", "Qdrant snapshots (use `vecstore snapshot`)"),
)


def unsupported(method: str, path: str, what: str) -> QdrantRoute:
    """An endpoint that always answers 501, documented as such."""

    async def refuse_endpoint(request: web.Request) -> None:
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
    return QdrantRoute(operation, Scope.READ, refuse_endpoint)


ROUTES: tuple[QdrantRoute, ...] = (
    *collections.ROUTES,
    *points.ROUTES,
    *batch.ROUTES,
    *facet.ROUTES,
    *search.ROUTES,
    *groups.ROUTES,
    *examples.ROUTES,
    *(unsupported(method, path, what) for method, path, what in UNSUPPORTED_ENDPOINTS),
)
"""Every Qdrant route the router serves, in registration order."""


def add_routes(app: web.Application) -> None:
    """Register the Qdrant-compatible routes."""
    for route in ROUTES:
        add_route(app, route.info, route.handler())
