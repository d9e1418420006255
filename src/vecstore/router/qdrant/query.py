"""Qdrant search and query requests as NearestQuery values, and hits as ScoredPoints.

Only plain nearest-neighbour search exists here: by vector, or by a stored point's vector
(that point left out, as in Qdrant), of the one unnamed vector or of a named one (`using`).
Prefetch, fusion, recommend and the other query kinds are refused with 501 naming them.
Pure functions: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vecstore.cluster.errors import InvalidRequest, NotImplementedParameter
from vecstore.cluster.filters import And, Filter, HasId, Not
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.router.qdrant.translate import (
    Cosine,
    PayloadSelection,
    VectorWanted,
    allow_only,
    answered_vectors,
    as_float,
    dense_vector,
    payload_selection,
    refuse,
    vector_wanted,
)

QUERY_KINDS = (
    "recommend",
    "discover",
    "context",
    "order_by",
    "fusion",
    "rrf",
    "formula",
    "sample",
    "relevance_feedback",
    "text",
)


@dataclass(frozen=True)
class NearestQuery:
    """One nearest-neighbour search: by vector, or by a stored point's vector (excluded)."""

    vector: list[float] | None
    point_id: PointId | None
    limit: int
    offset: int
    condition: Filter | None
    score_threshold: float | None
    ef: int | None
    exact: bool
    payload: PayloadSelection
    with_vector: VectorWanted
    using: str | None = None
    """Which named vector to search (collections of named vectors)."""

    @property
    def k(self) -> int:
        """How many hits to ask the shards for: the page plus what the offset skips."""
        return self.offset + self.limit

    def shard_filter(self) -> Filter | None:
        """The filter to send: the user's, minus the query point itself when searching by id."""
        if self.point_id is None:
            return self.condition
        itself: Filter = Not(HasId(frozenset({self.point_id})))
        return itself if self.condition is None else And((self.condition, itself))

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ShardSet.search."""
        return {
            "ef": self.ef,
            "exact": self.exact,
            "with_payload": self.payload.wanted,
            "with_vector": tuple(self.with_vector)
            if isinstance(self.with_vector, list)
            else self.with_vector,
            "score_threshold": self.score_threshold,
            **({"using": self.using} if self.using is not None else {}),
        }


def _hashable(wanted: VectorWanted) -> bool | tuple[str, ...]:
    """A list of vector names as a tuple: concurrent identical searches are keyed by options."""
    return tuple(wanted) if isinstance(wanted, list) else wanted


def _count(body: Mapping[str, Any], name: str, default: int | None, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def _search_params(raw: object) -> tuple[int | None, bool]:
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        raise InvalidRequest("params must be an object with hnsw_ef and exact")
    params = present(raw)
    refuse(params, ("quantization", "acorn", "idf"), "params.")
    if params.get("indexed_only") is True:
        raise NotImplementedParameter(
            "params.indexed_only=true is not supported: every search covers all points"
        )
    allow_only(params, ("hnsw_ef", "exact", "indexed_only"), "params")
    ef = params.get("hnsw_ef")
    if ef is not None and (isinstance(ef, bool) or not isinstance(ef, int) or not 1 <= ef <= 100_000):
        raise InvalidRequest(f"params.hnsw_ef must be an integer in 1..100000, got {ef!r}")
    exact = params.get("exact", False)
    if not isinstance(exact, bool):
        raise InvalidRequest("params.exact must be true or false")
    return ef, exact


def _threshold(raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(as_float(raw)):
        raise InvalidRequest(f"score_threshold must be a finite number, got {raw!r}")
    return float(raw)


SEARCH_FIELDS = (
    "vector",
    "filter",
    "params",
    "limit",
    "offset",
    "with_payload",
    "with_vector",
    "score_threshold",
)


def search_request(body: Mapping[str, Any], max_k: int) -> NearestQuery:
    """Qdrant's SearchRequest (POST /points/search)."""
    fields = present(body)
    refuse(fields, ("shard_key",))
    allow_only(fields, SEARCH_FIELDS, "the search request")
    if "vector" not in fields:
        raise InvalidRequest("vector is required")
    raw = fields["vector"]
    if isinstance(raw, dict) and "name" in raw and "vector" in raw:  # Qdrant's NamedVector
        allow_only(raw, ("name", "vector"), "vector")
        name = _vector_name(raw["name"], "vector.name")
        return _nearest(fields, dense_vector(raw["vector"], "vector.vector"), None, max_k, None, name)
    return _nearest(fields, dense_vector(raw, "vector"), None, max_k, default_limit=None)


def _vector_name(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise InvalidRequest(f"{where} must be a vector name")
    return raw


QUERY_FIELDS = (
    "query",
    "filter",
    "params",
    "limit",
    "offset",
    "with_payload",
    "with_vector",
    "score_threshold",
    "using",
)


def query_request(body: Mapping[str, Any], max_k: int) -> NearestQuery:
    """Qdrant's QueryRequest (POST /points/query), plain nearest-neighbour only."""
    fields = present(body)
    refuse(fields, ("shard_key", "lookup_from"))
    if "prefetch" in fields:
        raise NotImplementedParameter(
            "prefetch (multi-stage and hybrid queries) is not supported; send a single nearest query"
        )
    allow_only(fields, QUERY_FIELDS, "the query request")
    if "query" not in fields:
        raise NotImplementedParameter(
            "a query request without 'query' (listing points by id) is not supported; use /points/scroll"
        )
    query = fields["query"]
    if isinstance(query, dict):
        kinds = set(query)
        if "nearest" not in kinds and "model" not in kinds:
            known = sorted(kinds & set(QUERY_KINDS))
            if known:
                raise NotImplementedParameter(
                    f"query kind '{known[0]}' is not supported; only nearest-neighbour queries are"
                )
            if not kinds & {"indices", "values"}:
                raise InvalidRequest(f"query has unknown kind(s) {sorted(kinds)}")
        elif "nearest" in kinds:
            refuse(query, ("mmr",), "query.")
            allow_only(query, ("nearest", "mmr"), "query")
            query = query["nearest"]
    using = _vector_name(fields["using"], "using") if "using" in fields else None
    if isinstance(query, (int, str)) and not isinstance(query, bool):
        return _nearest(fields, None, normalize_point_id(query), max_k, 10, using)
    return _nearest(fields, dense_vector(query, "query"), None, max_k, 10, using)


def _nearest(
    fields: Mapping[str, Any],
    vector: list[float] | None,
    point_id: PointId | None,
    max_k: int,
    default_limit: int | None,
    using: str | None = None,
) -> NearestQuery:
    limit = _count(fields, "limit", default_limit, 1, max_k)
    offset = _count(fields, "offset", 0, 0, max_k)
    if offset + limit > max_k:
        raise InvalidRequest(f"offset + limit must be at most {max_k}, got {offset + limit}")
    ef, exact = _search_params(fields.get("params"))
    return NearestQuery(
        vector=vector,
        point_id=point_id,
        limit=limit,
        offset=offset,
        condition=filter_from_qdrant(fields.get("filter")),
        score_threshold=_threshold(fields.get("score_threshold")),
        ef=ef,
        exact=exact,
        payload=payload_selection(fields.get("with_payload"), default=False),
        with_vector=vector_wanted(fields.get("with_vector")),
        using=using,
    )


def batch_items(body: Mapping[str, Any], limit: int) -> list[Mapping[str, Any]]:
    """The `searches` list of a batch request."""
    allow_only(present(body), ("searches",), "the batch request")
    searches = body.get("searches")
    if not isinstance(searches, list) or not all(isinstance(item, dict) for item in searches):
        raise InvalidRequest("searches must be a list of request objects")
    if len(searches) > limit:
        raise InvalidRequest(f"batch has {len(searches)} searches; the limit is {limit} per request")
    return searches


def scored_points(
    hits: Sequence[Mapping[str, Any]], query: NearestQuery, cosine: Cosine = False
) -> list[dict[str, Any]]:
    """Merged hits as Qdrant ScoredPoints, after the offset (cosine vectors normalised, as
    Qdrant answers them). VecStore keeps no point versions: 0."""
    return scored(hits[query.offset :], query.payload, query.with_vector, cosine)


def scored(
    page: Sequence[Mapping[str, Any]], payload: PayloadSelection, with_vector: VectorWanted, cosine: Cosine
) -> list[dict[str, Any]]:
    """Hits as Qdrant ScoredPoints (cosine vectors normalised, the payload selected)."""
    vectors = [hit.get("vector") if with_vector else None for hit in page]
    if with_vector:
        vectors = answered_vectors(vectors, cosine)
    return [
        {
            "id": hit["id"],
            "version": 0,
            "score": hit["score"],
            "payload": payload.apply(hit.get("payload")),
            "vector": vector,
        }
        for hit, vector in zip(page, vectors, strict=True)
    ]
