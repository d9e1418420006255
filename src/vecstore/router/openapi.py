"""`GET /openapi.json`: the OpenAPI 3.1 document of exactly the routes the router serves.

The document is built from the application's route table (`router.context.ROUTE_TABLE`):
a Qdrant route's RouteInfo carries its own `Operation`; the native and service routes are
described in `NATIVE` below. A route without a description (or a description without a
route) fails loudly instead of drifting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vecstore.cluster.commands import PAYLOAD_INDEX_TYPES
from vecstore.router.auth import Scope
from vecstore.router.context import ROUTE_TABLE, RouteInfo, add_route
from vecstore.router.operation import Operation
from vecstore.router.qdrant import schemas as qdrant_schemas
from vecstore.router.qdrant.schemas import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    Schema,
    array,
    nullable,
    ref,
    strict,
)

VERSION = "0.1.0"


# ---- native API and service routes -------------------------------------------------------

ERROR = ref("Error")
OK = {"type": "string", "enum": ["ok"]}
CONSISTENCY = {"type": "string", "enum": ["eventual", "leader", "strong"]}
READ_TOKEN = {"type": "string", "pattern": "^([0-9]+:[0-9]+(,[0-9]+:[0-9]+)*)?$", "maxLength": 4_096}
IDS_OR_FILTER: dict[str, Schema] = {
    "ids": array(ref("QdrantPointId"), maxItems=10_000),
    "filter": ref("Filter"),
}
READ_OPTIONS: dict[str, Schema] = {
    "with_payload": BOOLEAN,
    "with_vector": ref("QdrantWithVector"),
    "consistency": CONSISTENCY,
    "after": READ_TOKEN,
    # msgpack answers carry vectors as raw float32 (docs/api.md, "Binary vectors")
    "binary_vectors": BOOLEAN,
}
SEARCH_OPTIONS: dict[str, Schema] = {
    "k": {"type": "integer", "minimum": 1, "maximum": 1_000},
    "filter": ref("Filter"),
    "ef": {"type": "integer", "minimum": 1, "maximum": 100_000},
    "exact": BOOLEAN,
    "score_threshold": NUMBER,
    "allow_partial": BOOLEAN,
    "using": ref("QdrantVectorName"),
    **READ_OPTIONS,
}


def ok(**properties: Schema) -> Schema:
    """A native success body: `{"status": "ok", ...}`."""
    return {"type": "object", "properties": {"status": OK, **properties}, "required": ["status"]}


def native(
    method: str, path: str, summary: str, response: Schema, request: Schema | None = None
) -> Operation:
    """A route of the native `/v1` API."""
    return Operation(method, path, summary, "native", response, ERROR, request)


def service(
    method: str, path: str, summary: str, response: Schema, content_type: str = "application/json"
) -> Operation:
    """A health, metrics or documentation route."""
    return Operation(method, path, summary, "service", response, ERROR, content_type=content_type)


def _selected(extra: dict[str, Schema], required: tuple[str, ...]) -> Schema:
    return {
        "oneOf": [
            strict({**extra, "ids": IDS_OR_FILTER["ids"]}, (*required, "ids")),
            strict({**extra, "filter": IDS_OR_FILTER["filter"]}, (*required, "filter")),
        ]
    }


WRITE_RESULT = ok(upserted=INTEGER, deleted=INTEGER, updated=INTEGER, read_token=STRING)
STORED_VECTOR = {
    "anyOf": [
        array(NUMBER),
        {"type": "object", "description": "name -> dense vector, multivector or {indices, values}"},
    ]
}
"""A stored vector: one list, or named vectors (name -> list)."""
POINTS = array(ref("Record"))
NATIVE: tuple[Operation, ...] = (
    service("GET", "/healthz", "Liveness", ok()),
    service(
        "GET",
        "/readyz",
        "Readiness: every shard has a reachable leader (503 with the shards that do not)",
        ok(),
    ),
    service("GET", "/metrics", "Prometheus metrics", STRING, content_type="text/plain"),
    service("GET", "/openapi.json", "This document", {"type": "object"}),
    native("GET", "/v1/collections", "List collections", ok(collections=array(ref("CollectionSchema")))),
    native(
        "PUT",
        "/v1/collections/{name}",
        "Create a collection (idempotent; a conflicting schema is 409)",
        ok(created=BOOLEAN, schema=ref("CollectionSchema")),
        ref("CollectionCreate"),
    ),
    native(
        "GET",
        "/v1/collections/{name}",
        "Collection schema and counts summed over shards",
        ok(
            schema=ref("CollectionSchema"),
            points=INTEGER,
            segments=INTEGER,
            indexing_lag=INTEGER,
            tombstones=INTEGER,
            payload_fields={"type": "object"},
        ),
    ),
    native("DELETE", "/v1/collections/{name}", "Drop a collection", ok(dropped=BOOLEAN)),
    native(
        "PUT",
        "/v1/collections/{name}/index",
        "Declare a payload index (recorded and reported)",
        ok(changed=BOOLEAN),
        strict(
            {
                "key": {"type": "string", "minLength": 1, "maxLength": 1_024},
                "schema": ref("PayloadFieldSchema"),
            },
            ("key", "schema"),
        ),
    ),
    native(
        "DELETE", "/v1/collections/{name}/index/{key}", "Remove a declared payload index", ok(changed=BOOLEAN)
    ),
    native(
        "PUT",
        "/v1/collections/{name}/points",
        "Upsert points",
        WRITE_RESULT,
        {
            "oneOf": [
                strict({"points": array(ref("Point"), minItems=1, maxItems=10_000)}, ("points",)),
                strict(
                    {
                        "ids": array(ref("QdrantPointId"), minItems=1, maxItems=10_000),
                        "vectors": array(ref("QdrantVector"), minItems=1, maxItems=10_000),
                        "payloads": array(nullable({"type": "object"}), maxItems=10_000),
                    },
                    ("ids", "vectors"),
                ),
            ]
        },
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/delete",
        "Delete points by ids or filter",
        WRITE_RESULT,
        _selected({}, ()),
    ),
    native(
        "PUT",
        "/v1/collections/{name}/points/vectors",
        "Set named vectors of existing points (their other vectors and payloads stay)",
        WRITE_RESULT,
        strict(
            {
                "points": array(
                    strict(
                        {"id": ref("QdrantPointId"), "vector": ref("QdrantNamedVectors")}, ("id", "vector")
                    ),
                    minItems=1,
                    maxItems=10_000,
                )
            },
            ("points",),
        ),
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/vectors/delete",
        "Remove named vectors from the selected points",
        WRITE_RESULT,
        _selected({"vectors": array(ref("QdrantVectorName"))}, ("vectors",)),
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/payload",
        "Merge payload keys into the selected points",
        WRITE_RESULT,
        _selected({"payload": {"type": "object"}}, ("payload",)),
    ),
    native(
        "PUT",
        "/v1/collections/{name}/points/payload",
        "Replace the payload of the selected points",
        WRITE_RESULT,
        _selected({"payload": {"type": "object"}}, ("payload",)),
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/payload/delete",
        "Remove payload keys from the selected points",
        WRITE_RESULT,
        _selected({"keys": array(STRING)}, ("keys",)),
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/get",
        "Points by id",
        ok(points=POINTS),
        strict({"ids": array(ref("QdrantPointId"), minItems=1, maxItems=10_000), **READ_OPTIONS}, ("ids",)),
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/scroll",
        "A page of points in id order",
        ok(points=POINTS, next_offset=nullable(ref("QdrantPointId"))),
        strict(
            {
                "offset": nullable(ref("QdrantPointId")),
                "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
                "filter": ref("Filter"),
                **READ_OPTIONS,
            }
        ),
    ),
    native(
        "POST",
        "/v1/collections/{name}/points/count",
        "Number of (matching) points",
        ok(count=INTEGER),
        strict({"filter": ref("Filter"), "consistency": CONSISTENCY, "after": READ_TOKEN}),
    ),
    native(
        "POST",
        "/v1/collections/{name}/search",
        "Top-k search for one vector (result) or several (results)",
        ok(
            result=array(ref("Hit")),
            results=array(array(ref("Hit"))),
            warnings=array(STRING),
            profile=ref("QueryProfile"),
        ),
        {
            "oneOf": [
                strict({"vector": ref("QdrantVector"), **SEARCH_OPTIONS, "profile": BOOLEAN}, ("vector",)),
                strict(
                    {
                        "vectors": array(ref("QdrantVector"), minItems=1, maxItems=1_000),
                        **SEARCH_OPTIONS,
                        "profile": BOOLEAN,
                    },
                    ("vectors",),
                ),
            ]
        },
    ),
    native(
        "POST",
        "/v1/collections/{name}/search/batch",
        "Several searches, each with its own options",
        ok(results=array(array(ref("Hit"))), warnings=array(STRING), profile=ref("QueryProfile")),
        strict(
            {
                "searches": array(
                    strict({"vector": ref("QdrantVector"), **SEARCH_OPTIONS}, ("vector",)),
                    minItems=1,
                    maxItems=1_000,
                ),
                "profile": BOOLEAN,
            },
            ("searches",),
        ),
    ),
    native(
        "POST",
        "/v1/collections/{name}/explain",
        "The plan each shard would run for a search (nothing is searched)",
        ok(plans=array({"type": "object"})),
        strict(
            {
                "k": {"type": "integer", "minimum": 1, "maximum": 1_000},
                "filter": ref("Filter"),
                "exact": BOOLEAN,
                "using": ref("QdrantVectorName"),
            }
        ),
    ),
    native(
        "POST",
        "/v1/collections/{name}/query",
        "A multi-stage query: prefetch, fusion, sparse and BM25 queries, re-scoring, MMR",
        ok(result=array(ref("Hit"))),
        strict(
            {
                "query": ref("QdrantQueryInterface"),
                "prefetch": {"anyOf": [ref("QdrantPrefetch"), array(ref("QdrantPrefetch"), maxItems=4)]},
                "using": ref("QdrantVectorName"),
                "filter": ref("Filter"),
                "params": ref("QdrantSearchParams"),
                "limit": {"type": "integer", "minimum": 1, "maximum": 1_000},
                "offset": {"type": "integer", "minimum": 0, "maximum": 999},
                "score_threshold": NUMBER,
                **READ_OPTIONS,
            },
            ("query",),
        ),
    ),
    native(
        "GET", "/v1/aliases", "Every collection alias (alias -> collection)", ok(aliases={"type": "object"})
    ),
    native(
        "POST",
        "/v1/aliases",
        "Create, delete or rename aliases (Qdrant's actions, applied together)",
        ok(aliases={"type": "object"}),
        ref("QdrantChangeAliases"),
    ),
    native("GET", "/v1/status", "Every node of every shard", ok(nodes=array({"type": "object"}))),
    native(
        "GET",
        "/v1/rpc",
        "WebSocket upgrade: this API as msgpack frames [id, method, path, body] (docs/api.md)",
        ok(),
    ),
)

NATIVE_CONDITION_FORMS: list[Schema] = [
    strict({"key": qdrant_schemas.FILTER_KEY, "match": ref("QdrantMatch")}, ("key", "match")),
    strict({"key": qdrant_schemas.FILTER_KEY, "range": ref("QdrantRange")}, ("key", "range")),
    strict({"key": qdrant_schemas.FILTER_KEY, "contains": qdrant_schemas.SCALAR}, ("key", "contains")),
    strict(
        {
            "key": qdrant_schemas.FILTER_KEY,
            "op": {"type": "string", "enum": ["==", "!="]},
            "value": qdrant_schemas.SCALAR,
        },
        ("key", "op", "value"),
    ),
    strict(
        {
            "key": qdrant_schemas.FILTER_KEY,
            "op": {"type": "string", "enum": ["<", "<=", ">", ">="]},
            "value": NUMBER,
        },
        ("key", "op", "value"),
    ),
    strict({"is_empty": strict({"key": qdrant_schemas.FILTER_KEY}, ("key",))}, ("is_empty",)),
    strict({"is_null": strict({"key": qdrant_schemas.FILTER_KEY}, ("key",))}, ("is_null",)),
    strict(
        {"key": qdrant_schemas.FILTER_KEY, "values_count": ref("QdrantValuesCount")}, ("key", "values_count")
    ),
    strict(
        {"nested": strict({"key": qdrant_schemas.FILTER_KEY, "filter": ref("Filter")}, ("key", "filter"))},
        ("nested",),
    ),
    strict({"has_id": array(ref("QdrantPointId"))}, ("has_id",)),
    *qdrant_schemas.GEO_CONDITIONS,
    strict(
        {
            "key": qdrant_schemas.FILTER_KEY,
            "match": strict({"regex": {"type": "string", "maxLength": 256}}, ("regex",)),
        },
        ("key", "match"),
    ),
    ref("Filter"),
]
NATIVE_COMPONENTS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "properties": {"status": {"type": "string"}, "error": STRING, "code": STRING},
        "required": ["status", "error"],
    },
    "Filter": strict(
        {
            **{
                clause: {"anyOf": [ref("Condition"), array(ref("Condition"), maxItems=8)]}
                for clause in ("must", "should", "must_not")
            },
            "min_should": strict(
                {
                    "conditions": array(ref("Condition"), maxItems=8),
                    "min_count": {"type": "integer", "minimum": 0, "maximum": 8},
                },
                ("conditions", "min_count"),
            ),
        }
    ),
    "Condition": {"anyOf": NATIVE_CONDITION_FORMS},
    "Hnsw": strict(
        {
            "connectivity": {"type": "integer", "minimum": 2, "maximum": 256},
            "expansion_add": {"type": "integer", "minimum": 1, "maximum": 10_000},
            "expansion_search": {"type": "integer", "minimum": 1, "maximum": 10_000},
        }
    ),
    "PayloadFieldSchema": {
        "anyOf": [
            {"type": "string", "enum": list(PAYLOAD_INDEX_TYPES)},
            {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": list(PAYLOAD_INDEX_TYPES)}},
                "required": ["type"],
            },
        ]
    },
    "VectorSpec": strict(
        {
            "dimension": {"type": "integer", "minimum": 1, "maximum": 65_536},
            "metric": {"type": "string", "enum": ["cosine", "l2", "dot"]},
            "dtype": {"type": "string", "enum": ["f32", "f16", "i8"]},
            "hnsw": ref("Hnsw"),
        },
        ("dimension",),
    ),
    "CollectionCreate": {
        "oneOf": [
            ref("VectorSpec"),
            strict(
                {
                    "vectors": {
                        "type": "object",
                        "propertyNames": ref("QdrantVectorName"),
                        "additionalProperties": ref("VectorSpec"),
                        "maxProperties": 16,
                    }
                },
                ("vectors",),
            ),
        ]
    },
    "CollectionSchema": {
        "type": "object",
        "properties": {
            "name": STRING,
            "dimension": INTEGER,
            "metric": STRING,
            "dtype": STRING,
            "hnsw": {"type": "object"},
            "vectors": {"type": "object"},
            "sparse_vectors": {"type": "object"},
        },
        "required": ["name"],
    },
    "Point": strict(
        {
            "id": ref("QdrantPointId"),
            "vector": ref("QdrantVectorStruct"),
            "payload": nullable({"type": "object"}),
        },
        ("id", "vector"),
    ),
    "Record": {
        "type": "object",
        "properties": {
            "id": ref("QdrantPointId"),
            "payload": nullable({"type": "object"}),
            "vector": nullable(STORED_VECTOR),
        },
        "required": ["id"],
    },
    "Hit": {
        "type": "object",
        "properties": {
            "id": ref("QdrantPointId"),
            "score": NUMBER,
            "payload": nullable({"type": "object"}),
            "vector": nullable(STORED_VECTOR),
        },
        "required": ["id", "score"],
    },
}


def describe(app: web.Application, route: web.AbstractRoute) -> Operation:
    """The description of a registered route; LookupError when it has none."""
    info = app[ROUTE_TABLE].get(route)
    if info is not None and info.operation is not None:
        return info.operation
    path = route.resource.canonical if route.resource is not None else ""
    for operation in NATIVE:
        if (operation.method, operation.path) == (route.method, path):
            return operation
    raise LookupError(f"route {route.method} {path} has no OpenAPI description")


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of every route registered on `app` (HEAD is implied by GET)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        operation = describe(app, route)
        paths.setdefault(operation.path, {})[operation.method.lower()] = operation.render()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "VecStore",
            "version": VERSION,
            "description": "The native /v1 API and the Qdrant-compatible REST subset (docs/qdrant.md).",
        },
        "components": {
            "schemas": {**NATIVE_COMPONENTS, **qdrant_schemas.COMPONENTS},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}, {}],
        "paths": paths,
    }


@dataclass
class DocumentCache:
    """The encoded document, built on first request (when every route is registered)."""

    body: bytes | None = None


DOCUMENT = web.AppKey("openapi_document", DocumentCache)


async def openapi_document(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    cache = request.app[DOCUMENT]
    if cache.body is None:
        cache.body = json.dumps(document(request.app)).encode()
    return web.Response(body=cache.body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Register /openapi.json."""
    app[DOCUMENT] = DocumentCache()
    add_route(app, RouteInfo("GET", "/openapi.json", Scope.READ), openapi_document)
