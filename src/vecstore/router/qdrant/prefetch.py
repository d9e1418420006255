"""Qdrant's Query API beyond one nearest search: prefetch trees, fusion, sparse and MMR
queries, parsed into `vecstore.router.hybrid.Stage` trees. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vecstore.cluster.commands import sparse_vector
from vecstore.cluster.errors import InvalidRequest, NotImplementedParameter
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import normalize_point_id
from vecstore.router.hybrid import Fuse, Lookup, Mmr, MultiQuery, SparseQuery, Stage, Target
from vecstore.router.inference import is_document, sparse_of
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.filter import filter_from_qdrant
from vecstore.router.qdrant.translate import allow_only, dense_vector, is_sparse, refuse
from vecstore.router.recommend import Discover, Example, Recommend, check_discover, check_recommend

MAX_DEPTH = 4
MAX_SEARCHES = 32
"""Bounds of one query tree: nesting levels and searches in all (each is a scatter-gather)."""
PREFETCH_FIELDS = (
    "prefetch",
    "query",
    "using",
    "filter",
    "params",
    "score_threshold",
    "limit",
    "lookup_from",
)
EXAMPLE_KINDS = ("recommend", "discover", "context")
REFUSED_KINDS = ("order_by", "formula", "sample", "relevance_feedback")


def needs_plan(fields: Mapping[str, Any]) -> bool:
    """Whether a query request needs the multi-stage engine (else one nearest search does)."""
    if fields.get("prefetch") is not None or fields.get("lookup_from") is not None:
        return True
    query = fields.get("query")
    if isinstance(query, dict):
        nearest = query.get("nearest")
        sparse_nearest = isinstance(nearest, dict) and (is_sparse(nearest) or is_document(nearest))
        sparse = is_sparse(query) or is_document(query) or sparse_nearest
        multi_nearest = isinstance(nearest, list) and bool(nearest) and isinstance(nearest[0], list)
        return bool({"fusion", "rrf", "mmr", *EXAMPLE_KINDS} & set(query)) or sparse or multi_nearest
    return isinstance(query, list) and bool(query) and isinstance(query[0], list)  # a multivector


FilterParser = Callable[[Any], Filter | None]


def stage_of(
    raw: Mapping[str, Any], max_k: int, where: str, depth: int = 1, parse: FilterParser = filter_from_qdrant
) -> Stage:
    """One query level: the request itself (depth 1) or one of its prefetches. `parse` reads
    filters (Qdrant's JSON; the native API passes its own parser)."""
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"prefetches nest at most {MAX_DEPTH} levels deep")
    fields = present(raw)
    lookup = _lookup(fields.get("lookup_from"), where)
    prefetch_raw = fields.get("prefetch", [])
    prefetches = prefetch_raw if isinstance(prefetch_raw, list) else [prefetch_raw]
    if not all(isinstance(p, dict) for p in prefetches):
        raise InvalidRequest(f"{where}prefetch must be an object or a list of objects")
    for position, prefetch in enumerate(prefetches):
        allow_only(present(prefetch), PREFETCH_FIELDS, f"{where}prefetch[{position}]")
    children = tuple(
        stage_of(p, max_k, f"{where}prefetch[{n}].", depth + 1, parse) for n, p in enumerate(prefetches)
    )
    query, mmr = _query(fields.get("query"), where)
    using = fields.get("using")
    if using is not None and not isinstance(using, str):
        raise InvalidRequest(f"{where}using must be a vector name")
    limit = fields.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_k:
        raise InvalidRequest(f"{where}limit must be an integer in 1..{max_k}, got {limit!r}")
    threshold = fields.get("score_threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        raise InvalidRequest(f"{where}score_threshold must be a number")
    ef, exact = _params(fields.get("params"), where)
    stage = Stage(
        query=query,
        using=using,
        condition=parse(fields.get("filter")),
        limit=limit,
        score_threshold=None if threshold is None else float(threshold),
        prefetch=children,
        mmr=mmr,
        ef=ef,
        exact=exact,
        lookup=lookup,
    )
    if depth == 1 and stage.searches() > MAX_SEARCHES:
        raise InvalidRequest(f"a query runs at most {MAX_SEARCHES} searches; this one has {stage.searches()}")
    return stage


def _lookup(raw: object, where: str) -> Lookup | None:
    """Qdrant's lookup_from: {collection, vector?} where ids given as vectors are read."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("collection"), str):
        raise InvalidRequest(f"{where}lookup_from must be {{'collection': name, 'vector': name?}}")
    allow_only(present(raw), ("collection", "vector"), f"{where}lookup_from")
    vector = raw.get("vector")
    if vector is not None and not isinstance(vector, str):
        raise InvalidRequest(f"{where}lookup_from.vector must be a vector name")
    return Lookup(raw["collection"], vector)


def _query(raw: object, where: str) -> tuple[Target | Fuse | None, Mmr | None]:
    if raw is None:
        return None, None
    if isinstance(raw, dict):
        kinds = set(raw)
        refused = sorted(kinds & set(REFUSED_KINDS))
        if refused:
            raise NotImplementedParameter(f"query kind '{refused[0]}' is not supported")
        if "fusion" in kinds:
            allow_only(raw, ("fusion",), f"{where}query")
            if raw["fusion"] not in ("rrf", "dbsf"):
                raise InvalidRequest(f"{where}query.fusion must be rrf or dbsf, got {raw['fusion']!r}")
            return Fuse(raw["fusion"]), None
        if "rrf" in kinds:
            allow_only(raw, ("rrf",), f"{where}query")
            return _rrf(raw["rrf"], where), None
        if "nearest" in kinds:
            allow_only(raw, ("nearest", "mmr"), f"{where}query")
            return _target(raw["nearest"], where), _mmr(raw.get("mmr"), where)
        for kind in EXAMPLE_KINDS:
            if kind in kinds:
                allow_only(raw, (kind,), f"{where}query")
                return examples_query(kind, raw[kind], f"{where}query.{kind}"), None
    return _target(raw, where), None


def examples_query(kind: str, raw: object, where: str) -> Recommend | Discover:
    """Qdrant's RecommendInput, DiscoverInput or ContextInput."""
    if kind == "context":
        query = Discover(None, _pairs(raw, where))
        check_discover(query)
        return query
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where} must be an object")
    fields = present(raw)
    if kind == "discover":
        allow_only(fields, ("target", "context"), where)
        if "target" not in fields:
            raise InvalidRequest(f"{where}.target is required")
        query = Discover(_example(fields["target"], f"{where}.target"), _pairs(fields.get("context"), where))
        check_discover(query)
        return query
    allow_only(fields, ("positive", "negative", "strategy"), where)
    recommend = Recommend(
        _examples(fields.get("positive"), f"{where}.positive"),
        _examples(fields.get("negative"), f"{where}.negative"),
        fields.get("strategy", "average_vector"),
    )
    check_recommend(recommend)
    return recommend


def _examples(raw: object, where: str) -> tuple[Example, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where} must be a list of point ids or vectors")
    return tuple(_example(item, f"{where}[{n}]") for n, item in enumerate(raw))


def _example(raw: object, where: str) -> Example:
    if isinstance(raw, (int, str)) and not isinstance(raw, bool):
        return normalize_point_id(raw)
    if isinstance(raw, dict) or (isinstance(raw, list) and raw and isinstance(raw[0], list)):
        raise NotImplementedParameter(f"{where}: sparse and multivector examples are not supported")
    return dense_vector(raw, where)


def _pairs(raw: object, where: str) -> tuple[tuple[Example, Example], ...]:
    if raw is None:
        return ()
    listed = raw if isinstance(raw, list) else [raw]
    pairs = []
    for n, pair in enumerate(listed):
        if not isinstance(pair, dict) or not {"positive", "negative"} <= set(present(pair)):
            raise InvalidRequest(f"{where}.context[{n}] must be an object with positive and negative")
        allow_only(present(pair), ("positive", "negative"), f"{where}.context[{n}]")
        pairs.append(
            (
                _example(pair["positive"], f"{where}.context[{n}].positive"),
                _example(pair["negative"], f"{where}.context[{n}].negative"),
            )
        )
    return tuple(pairs)


def _target(raw: object, where: str) -> Target:
    if isinstance(raw, (int, str)) and not isinstance(raw, bool):
        return normalize_point_id(raw)
    if is_document(raw):  # BM25: the query's terms, weight 1 each
        assert isinstance(raw, dict)
        raw = sparse_of(raw, f"{where}query", query=True)
    if isinstance(raw, dict) and is_sparse(raw):
        indices, values = sparse_vector(raw["indices"], raw["values"], f"{where}query")
        return SparseQuery(tuple(int(i) for i in indices), tuple(float(v) for v in values))
    if isinstance(raw, list) and raw and isinstance(raw[0], list):  # a multivector (ColBERT)
        rows = [dense_vector(row, f"{where}query[{n}]") for n, row in enumerate(raw)]
        return MultiQuery(tuple(tuple(row) for row in rows))
    return dense_vector(raw, f"{where}query")


def _rrf(raw: object, where: str) -> Fuse:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}query.rrf must be an object with k and weights")
    params = present(raw)
    allow_only(params, ("k", "weights"), f"{where}query.rrf")
    k = params.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InvalidRequest(f"{where}query.rrf.k must be a positive integer, got {k!r}")
    weights = params.get("weights")
    if weights is not None and (
        not isinstance(weights, list)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights)
    ):
        raise InvalidRequest(f"{where}query.rrf.weights must be a list of non-negative numbers")
    return Fuse("rrf", k, None if weights is None else tuple(float(w) for w in weights))


def _mmr(raw: object, where: str) -> Mmr | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}query.mmr must be an object")
    params = present(raw)
    allow_only(params, ("diversity", "candidates_limit"), f"{where}query.mmr")
    diversity = params.get("diversity", 0.5)
    if isinstance(diversity, bool) or not isinstance(diversity, (int, float)) or not 0 <= diversity <= 1:
        raise InvalidRequest(f"{where}query.mmr.diversity must be a number in 0..1, got {diversity!r}")
    candidates = params.get("candidates_limit")
    if candidates is not None and (
        isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= 10_000
    ):
        raise InvalidRequest(f"{where}query.mmr.candidates_limit must be an integer in 1..10000")
    return Mmr(float(diversity), candidates)


def _params(raw: object, where: str) -> tuple[int | None, bool]:
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}params must be an object")
    params = present(raw)
    refuse(params, ("quantization", "acorn", "idf"), f"{where}params.")
    allow_only(params, ("hnsw_ef", "exact", "indexed_only"), f"{where}params")
    if params.get("indexed_only") is True:
        raise NotImplementedParameter(f"{where}params.indexed_only=true is not supported")
    ef = params.get("hnsw_ef")
    if ef is not None and (isinstance(ef, bool) or not isinstance(ef, int) or not 1 <= ef <= 100_000):
        raise InvalidRequest(f"{where}params.hnsw_ef must be an integer in 1..100000, got {ef!r}")
    exact = params.get("exact", False)
    if not isinstance(exact, bool):
        raise InvalidRequest(f"{where}params.exact must be true or false")
    return ef, exact


def sparse_search_body(body: object) -> dict[str, Any] | None:
    """A search request (POST /points/search) whose vector is a NamedSparseVector, as the
    equivalent query request; None for any other search."""
    if not isinstance(body, dict):
        return None
    vector = body.get("vector")
    if not (
        isinstance(vector, dict) and isinstance(vector.get("vector"), dict) and is_sparse(vector["vector"])
    ):
        return None
    allow_only(vector, ("name", "vector"), "vector")
    fields = {key: value for key, value in body.items() if key != "vector"}
    if "limit" not in fields:
        raise InvalidRequest("limit is required")
    return {**fields, "query": vector["vector"], "using": vector.get("name")}
