"""Qdrant's service and collection endpoints: version, list, info, exists, create, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vecstore.cluster.errors import CollectionConflict, CollectionNotFound, InvalidRequest
from vecstore.cluster.schema import CollectionSchema
from vecstore.router.aliases import alias_actions
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS, SPEC
from vecstore.router.native_api import name_of
from vecstore.router.qdrant.collection import ClusterShape, collection_info, present, schema_from_qdrant
from vecstore.router.qdrant.http import UPDATE_COMPLETED, WRITE_QUERY, body_object, qdrant_route
from vecstore.router.qdrant.schemas import BOOLEAN, ref
from vecstore.router.qdrant.translate import allow_only
from vecstore.transport.server import body_of

QDRANT_VERSION = "1.20.0"
"""The Qdrant release whose REST shapes this subset follows (qdrant-client checks it)."""


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


@qdrant_route(
    "PUT",
    "/collections/{name}/index",
    "Declare a payload index (recorded and reported; every filtered key is indexed either way)",
    Scope.WRITE,
    ref("QdrantUpdateResult"),
    ref("QdrantCreateFieldIndex"),
    query=WRITE_QUERY,
)
async def create_field_index(request: web.Request) -> dict[str, Any]:
    """PUT /collections/{name}/index."""
    body = await body_object(request)
    allow_only(present(body), ("field_name", "field_schema"), "the create-index request")
    if present(body).get("field_schema") is None:
        raise InvalidRequest(
            "field_schema is required: keyword, integer, float, geo, text, bool, datetime or uuid"
        )
    await request.app[SHARDS].set_payload_index(
        name_of(request), body.get("field_name"), body["field_schema"]
    )
    return UPDATE_COMPLETED


@qdrant_route(
    "DELETE",
    "/collections/{name}/index/{field_name}",
    "Remove a declared payload index",
    Scope.WRITE,
    ref("QdrantUpdateResult"),
    query=WRITE_QUERY,
)
async def delete_field_index(request: web.Request) -> dict[str, Any]:
    """DELETE /collections/{name}/index/{field_name}."""
    await request.app[SHARDS].set_payload_index(name_of(request), request.match_info["field_name"], None)
    return UPDATE_COMPLETED


@qdrant_route(
    "POST",
    "/collections/aliases",
    "Create, delete or rename collection aliases (all actions applied together)",
    Scope.ADMIN,
    BOOLEAN,
    ref("QdrantChangeAliases"),
    query=("timeout",),
)
async def update_aliases(request: web.Request) -> bool:
    """POST /collections/aliases."""
    await request.app[SHARDS].update_aliases(alias_actions(await body_object(request)))
    return True


def _alias_list(aliases: dict[str, str], collection: str | None = None) -> dict[str, Any]:
    rows = [
        {"alias_name": alias, "collection_name": target}
        for alias, target in sorted(aliases.items())
        if collection is None or target == collection
    ]
    return {"aliases": rows}


@qdrant_route("GET", "/aliases", "Every collection alias", Scope.READ, ref("QdrantAliases"))
async def list_aliases(request: web.Request) -> dict[str, Any]:
    """GET /aliases."""
    shards = request.app[SHARDS]
    await shards.refresh_schemas()
    return _alias_list(shards.aliases)


@qdrant_route(
    "GET", "/collections/{name}/aliases", "The aliases of a collection", Scope.READ, ref("QdrantAliases")
)
async def collection_aliases(request: web.Request) -> dict[str, Any]:
    """GET /collections/{name}/aliases."""
    name = name_of(request)
    shards = request.app[SHARDS]
    await shards.schema(name)  # 404 for a missing collection
    await shards.refresh_schemas()
    return _alias_list(shards.aliases, name)


ROUTES = (
    root,
    update_aliases,
    list_aliases,
    collection_aliases,
    list_collections,
    get_collection,
    collection_exists,
    create_collection,
    delete_collection,
    create_field_index,
    delete_field_index,
)
"""The service and collection endpoints, in the order they are registered."""
