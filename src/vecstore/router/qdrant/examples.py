"""Qdrant's legacy example-based endpoints: /points/recommend, /points/discover and their
batches. Each request is rewritten as the equivalent Query API request (`recommend` or
`discover` query kind) and answered by the same engine (vecstore.router.recommend).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest
from vecstore.router.auth import Scope
from vecstore.router.native_api import name_of
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.http import max_k, qdrant_route
from vecstore.router.qdrant.query import batch_items
from vecstore.router.qdrant.schemas import array, ref
from vecstore.router.qdrant.search import SEARCH_QUERY, query_hits
from vecstore.router.qdrant.translate import allow_only
from vecstore.transport.server import body_of

COMMON = ("filter", "params", "limit", "offset", "with_payload", "with_vector", "using", "lookup_from")
RECOMMEND_FIELDS = ("positive", "negative", "strategy", "score_threshold", *COMMON)
DISCOVER_FIELDS = ("target", "context", *COMMON)


def recommend_query(body: object) -> dict[str, Any]:
    """A RecommendRequest as a query request."""
    fields = _fields(body, RECOMMEND_FIELDS, "the recommend request")
    example = {name: fields[name] for name in ("positive", "negative", "strategy") if name in fields}
    return {**_rest(fields, ("positive", "negative", "strategy")), "query": {"recommend": example}}


def discover_query(body: object) -> dict[str, Any]:
    """A DiscoverRequest as a query request (target required, as Qdrant's)."""
    fields = _fields(body, DISCOVER_FIELDS, "the discover request")
    if "target" not in fields:
        raise InvalidRequest("target is required")
    example = {"target": fields["target"], "context": fields.get("context")}
    return {**_rest(fields, ("target", "context")), "query": {"discover": example}}


def _fields(body: object, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    fields = present(body)
    allow_only(fields, allowed, what)
    if "limit" not in fields:
        raise InvalidRequest("limit is required")
    return fields


def _rest(fields: Mapping[str, Any], examples: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name not in examples}


@qdrant_route(
    "POST",
    "/collections/{name}/points/recommend",
    "Points like the positive examples and unlike the negative ones",
    Scope.READ,
    array(ref("QdrantScoredPoint")),
    ref("QdrantRecommendRequest"),
    query=SEARCH_QUERY,
)
async def recommend_points(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/recommend."""
    return await query_hits(request, name_of(request), recommend_query(await body_of(request)))


@qdrant_route(
    "POST",
    "/collections/{name}/points/recommend/batch",
    "Several recommendations in one request",
    Scope.READ,
    array(array(ref("QdrantScoredPoint"))),
    ref("QdrantRecommendRequestBatch"),
    query=SEARCH_QUERY,
)
async def recommend_batch(request: web.Request) -> list[list[dict[str, Any]]]:
    """POST /collections/{name}/points/recommend/batch."""
    items = batch_items(await body_of(request), max_k(request))
    queries = [recommend_query(item) for item in items]
    return list(await asyncio.gather(*(query_hits(request, name_of(request), q) for q in queries)))


@qdrant_route(
    "POST",
    "/collections/{name}/points/discover",
    "Points near a target and on the positive side of context pairs",
    Scope.READ,
    array(ref("QdrantScoredPoint")),
    ref("QdrantDiscoverRequest"),
    query=SEARCH_QUERY,
)
async def discover_points(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/discover."""
    return await query_hits(request, name_of(request), discover_query(await body_of(request)))


@qdrant_route(
    "POST",
    "/collections/{name}/points/discover/batch",
    "Several discovery searches in one request",
    Scope.READ,
    array(array(ref("QdrantScoredPoint"))),
    ref("QdrantDiscoverRequestBatch"),
    query=SEARCH_QUERY,
)
async def discover_batch(request: web.Request) -> list[list[dict[str, Any]]]:
    """POST /collections/{name}/points/discover/batch."""
    items = batch_items(await body_of(request), max_k(request))
    queries = [discover_query(item) for item in items]
    return list(await asyncio.gather(*(query_hits(request, name_of(request), q) for q in queries)))


ROUTES = (recommend_points, recommend_batch, discover_points, discover_batch)
"""The legacy recommend and discover endpoints."""
