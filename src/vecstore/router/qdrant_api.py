"""The Qdrant-compatible REST subset on the router port: qdrant-client (REST) works unmodified.

This module serves the service and collection endpoints and registers every Qdrant route:
points in `qdrant_points`, search and query in `qdrant_search`, the serving machinery in
`qdrant_http`. docs/qdrant.md lists what is supported and what is refused.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vecstore.cluster.errors import CollectionConflict, CollectionNotFound, NotImplementedParameter
from vecstore.cluster.schema import CollectionSchema
from vecstore.router import qdrant_points, qdrant_search
from vecstore.router.app import SHARDS, SPEC, Handler, body_of, scope
from vecstore.router.auth import Scope
from vecstore.router.native_api import name_of
from vecstore.router.openapi import Operation
from vecstore.router.qdrant_collection import ClusterShape, collection_info, schema_from_qdrant
from vecstore.router.qdrant_http import ROUTES, qdrant_error, qdrant_route
from vecstore.router.qdrant_schemas import BOOLEAN, ref

QDRANT_VERSION = "1.20.0"
"""The Qdrant release whose REST shapes this subset follows (qdrant-client checks it)."""
ROUTE_MODULES = (qdrant_points, qdrant_search)
"""Importing these declares their routes (in qdrant_http.ROUTES)."""


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
    name = name_of(request)
    shards = request.app[SHARDS]
    await shards.refresh_schemas()  # another router (or the CLI) may have dropped it
    if name not in shards.schemas:
        raise CollectionNotFound(name)
    info = await shards.collection_info(name)
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
