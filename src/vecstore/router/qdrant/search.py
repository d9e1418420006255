"""Qdrant's search endpoints: /points/search, /points/query and their batches.

Every request becomes NearestQuery values (qdrant_query); queries that share k, filter and
options are scattered to the shards together, and each merged top-k is cut at its offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, InvalidVector, NotFound
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS
from vecstore.router.hybrid import Output
from vecstore.router.hybrid_engine import hybrid_engine, searched
from vecstore.router.native_api import name_of
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.http import PROFILE_KEY, READ_QUERY, consistency_of, max_k, qdrant_route
from vecstore.router.qdrant.prefetch import needs_plan, sparse_search_body, stage_of
from vecstore.router.qdrant.query import (
    QUERY_FIELDS,
    NearestQuery,
    _hashable,
    batch_items,
    query_request,
    scored,
    scored_points,
    search_request,
)
from vecstore.router.qdrant.schemas import array, ref
from vecstore.router.qdrant.translate import (
    allow_only,
    cosine_of,
    payload_selection,
    refuse,
    vector_wanted,
)
from vecstore.transport.server import body_of

SEARCH_QUERY = (*READ_QUERY, "profile")
"""Qdrant's query parameters, and `profile=true`: the answer gets a `profile` beside `result`."""


async def run_nearest(
    request: web.Request, name: str, queries: Sequence[NearestQuery]
) -> list[list[dict[str, Any]]]:
    """Answer nearest queries; those sharing k, filter and options go to the shards together."""
    shards = request.app[SHARDS]
    asked = profile_wanted(request)
    profile = shards.profiler.start(asked)
    schema = await shards.schema(name)
    consistency = consistency_of(request)
    vectors: list[list[float]] = []
    for query in queries:
        dimension = searched(schema, query.using).dimension
        vector = query.vector if query.vector is not None else await _stored_vector(request, name, query)
        if len(vector) != dimension:
            raise InvalidVector(
                f"Wrong input: Vector dimension error: expected dim: {dimension}, got {len(vector)}"
            )
        vectors.append(vector)
    groups: dict[Any, list[int]] = {}
    for position, query in enumerate(queries):
        key = (query.k, query.shard_filter(), tuple(sorted(query.options().items())))
        groups.setdefault(key, []).append(position)

    profile.add("parse", profile.origin)

    async def search_group(positions: list[int]) -> list[list[dict[str, Any]]]:
        first = queries[positions[0]]
        found, _ = await shards.search(
            name,
            [vectors[p] for p in positions],
            first.k,
            first.shard_filter(),
            consistency=consistency,
            profile=profile,
            **first.options(),
        )
        return found

    answers: list[list[dict[str, Any]]] = [[] for _ in queries]
    results = await asyncio.gather(*(search_group(positions) for positions in groups.values()))
    with profile.stage("serialise"):
        for positions, found in zip(groups.values(), results, strict=True):
            for position, hits in zip(positions, found, strict=True):
                answers[position] = scored_points(hits, queries[position], cosine_of(schema))
    report = shards.profiler.finish(
        profile,
        asked,
        collection=name,
        k=queries[0].k if len(queries) == 1 else None,
        queries=len(queries),
        filtered=any(query.condition is not None for query in queries),
        api="qdrant",
    )
    if report is not None:
        request[PROFILE_KEY] = report
    return answers


def profile_wanted(request: web.Request) -> bool:
    """`?profile=true` (or false, the default); anything else is a 400."""
    value = request.query.get("profile", "false")
    if value not in ("true", "false"):
        raise InvalidRequest(f"query parameter profile must be true or false, got {value!r}")
    return value == "true"


async def _stored_vector(request: web.Request, name: str, query: NearestQuery) -> list[float]:
    assert query.point_id is not None
    wanted: bool | list[str] = [query.using] if query.using is not None else True
    points = await request.app[SHARDS].get(
        name, [query.point_id], consistency_of(request), with_payload=False, with_vector=wanted
    )
    vector = points[0].get("vector") if points else None
    if isinstance(vector, dict):
        vector = vector.get(str(query.using))
        if vector is None and points:
            raise InvalidRequest(f"Wrong input: point {query.point_id} has no vector {query.using!r}")
    if vector is None:
        raise NotFound(f"Not found: No point with id {query.point_id} found")
    found: list[float] = vector
    return found


SCORED = array(ref("QdrantScoredPoint"))


@qdrant_route(
    "POST",
    "/collections/{name}/points/search",
    "Nearest neighbours of a vector",
    Scope.READ,
    SCORED,
    ref("QdrantSearchRequest"),
    query=SEARCH_QUERY,
)
async def search_points(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/search."""
    body = await body_of(request)
    sparse = sparse_search_body(body)
    if sparse is not None:  # a NamedSparseVector: the hybrid engine's sparse search
        return await run_plan(request, name_of(request), sparse)
    query = search_request(body, max_k(request))
    return (await run_nearest(request, name_of(request), [query]))[0]


@qdrant_route(
    "POST",
    "/collections/{name}/points/search/batch",
    "Several searches in one request",
    Scope.READ,
    array(SCORED),
    ref("QdrantSearchRequestBatch"),
    query=SEARCH_QUERY,
)
async def search_batch(request: web.Request) -> list[list[dict[str, Any]]]:
    """POST /collections/{name}/points/search/batch."""
    items = batch_items(await body_of(request), max_k(request))
    queries = [search_request(item, max_k(request)) for item in items]
    return await run_nearest(request, name_of(request), queries)


@qdrant_route(
    "POST",
    "/collections/{name}/points/query",
    "Nearest neighbours of a vector or of a stored point (plain nearest queries only)",
    Scope.READ,
    ref("QdrantQueryResponse"),
    ref("QdrantQueryRequest"),
    query=SEARCH_QUERY,
)
async def query_points(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/query."""
    return {"points": await query_hits(request, name_of(request), await body_of(request))}


async def query_hits(request: web.Request, name: str, body: Any) -> list[dict[str, Any]]:
    """A query request's ScoredPoints: multi-stage ones through the hybrid engine, plain
    nearest ones straight to the shards."""
    if isinstance(body, dict) and await _planned(request, body):
        return await run_plan(request, name, body)
    query = query_request(body, max_k(request))
    return (await run_nearest(request, name, [query]))[0]


async def _planned(request: web.Request, body: Mapping[str, Any]) -> bool:
    """Whether a query request goes to the hybrid engine: multi-stage, sparse or MMR ones
    (a query by id of a sparse vector too)."""
    fields = present(body)
    if needs_plan(fields):
        return True
    using = fields.get("using")
    if not isinstance(using, str):
        return False
    schema = await request.app[SHARDS].schema(name_of(request))
    multi = {name for name, _ in schema.multivectors()}
    return using in {name for name, _ in schema.sparse_vectors} | multi


async def run_plan(request: web.Request, name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A multi-stage query (prefetch, fusion, sparse, MMR) through the hybrid engine."""
    fields = present(body)
    allow_only(fields, (*QUERY_FIELDS, "prefetch", "lookup_from"), "the query request")
    refuse(fields, ("shard_key",))
    stage = stage_of(fields, max_k(request), "")
    offset = fields.get("offset", 0)
    if (
        isinstance(offset, bool)
        or not isinstance(offset, int)
        or not 0 <= offset <= max_k(request) - stage.limit
    ):
        raise InvalidRequest(f"offset must be an integer with offset + limit at most {max_k(request)}")
    payload = payload_selection(fields.get("with_payload"), default=False)
    with_vector = vector_wanted(fields.get("with_vector"))
    schema = await request.app[SHARDS].schema(name)
    engine = hybrid_engine(request.app[SHARDS], name, schema, consistency_of(request))
    hits = await engine.run(stage, Output(payload.wanted, _hashable(with_vector), offset))
    return scored(hits, payload, with_vector, cosine_of(await request.app[SHARDS].schema(name)))


@qdrant_route(
    "POST",
    "/collections/{name}/points/query/batch",
    "Several nearest queries in one request",
    Scope.READ,
    array(ref("QdrantQueryResponse")),
    ref("QdrantQueryRequestBatch"),
    query=SEARCH_QUERY,
)
async def query_batch(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/query/batch: plain nearest queries go to the shards
    together; multi-stage ones run on their own, concurrently."""
    name = name_of(request)
    items = batch_items(await body_of(request), max_k(request))
    planned = [position for position, item in enumerate(items) if await _planned(request, item)]
    plain = [position for position in range(len(items)) if position not in set(planned)]
    queries = [query_request(items[position], max_k(request)) for position in plain]
    answers: list[list[dict[str, Any]]] = [[] for _ in items]
    found = await asyncio.gather(
        run_nearest(request, name, queries) if queries else _nothing(),
        *(run_plan(request, name, dict(items[position])) for position in planned),
    )
    for position, hits in zip(plain, found[0], strict=True):
        answers[position] = hits
    for position, hits in zip(planned, found[1:], strict=True):
        answers[position] = hits
    return [{"points": hits} for hits in answers]


async def _nothing() -> list[list[dict[str, Any]]]:
    return []


ROUTES = (search_points, search_batch, query_points, query_batch)
"""The search and query endpoints, in the order they are registered."""
