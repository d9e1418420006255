"""Qdrant's `POST /collections/{name}/facet`: how many matching points hold each value of a
keyword, integer, bool or uuid key (a payload index on the key is required, as in Qdrant).

Counts are always exact (`exact` is accepted): each shard counts its points, the router sums.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest
from vecstore.router import ordered
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS
from vecstore.router.native_api import name_of
from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.router.qdrant.http import READ_QUERY, body_object, consistency_of, qdrant_route
from vecstore.router.qdrant.schemas import MAX_BATCH, ref
from vecstore.router.qdrant.translate import allow_only, refuse


@qdrant_route(
    "POST",
    "/collections/{name}/facet",
    "Counts of a key's values over the matching points (needs a keyword/integer/bool/uuid index)",
    Scope.READ,
    ref("QdrantFacetResponse"),
    ref("QdrantFacetRequest"),
    query=READ_QUERY,
)
async def facet_counts(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/facet."""
    body = await body_object(request)
    refuse(body, ("shard_key",))
    allow_only(body, ("key", "limit", "filter", "exact"), "the facet request")
    key = ordered.payload_key(body.get("key"), "key")
    limit = body.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
        raise InvalidRequest(f"limit must be an integer in 1..{MAX_BATCH}, got {limit!r}")
    if not isinstance(body.get("exact", True), bool):
        raise InvalidRequest("exact must be true or false")
    hits = await ordered.facet(
        request.app[SHARDS],
        name_of(request),
        key,
        filter_from_qdrant(body.get("filter")),
        limit,
        consistency_of(request),
    )
    return {"hits": hits}


ROUTES = (facet_counts,)
"""The facet endpoint."""
