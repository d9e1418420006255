"""Multi-stage queries: prefetch trees, fusion, re-scoring and MMR, run by the router.

A query is a tree of `Stage`s. A stage without prefetches searches the collection (a dense
vector, a sparse vector or a stored point's vector, of the named vector `using`); a stage
with prefetches either fuses their results (`Fuse`: RRF or DBSF) or re-scores the union of
their candidates with its own vector (an exact search restricted to those ids). Filters
propagate down: each stage searches with its own filter and every ancestor's, so a
prefetch's limit applies to candidates that pass them all (as Qdrant does). `Mmr` re-ranks
a nearest search's candidates for diversity. Only the final stage fetches payloads and
vectors. qdrant-client's local mode is the reference for every rule here (see
tests/integration/test_qdrant_hybrid.py).

The shards run the searches; this module only orchestrates them: no I/O of its own
besides ShardSet calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecstore.cluster.errors import InvalidRequest, NotFound, NotImplementedParameter
from vecstore.cluster.filters import And, Filter, HasId, Not
from vecstore.cluster.fusion import RRF_K, dbsf, rrf
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.router.recommend import (
    Discover,
    Example,
    Recommend,
    average_vector,
    discover_scores,
    ranked,
    recommend_scores,
)

Hit = dict[str, Any]


@dataclass(frozen=True)
class SparseQuery:
    """A sparse query vector (indices ascending, distinct)."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class MultiQuery:
    """A multivector query (one row per token), scored by MaxSim against a named multivector."""

    rows: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Fuse:
    """Fuse the prefetches' results: `rrf` (reciprocal rank, constant `k`) or `dbsf`."""

    method: str
    k: int | None = None
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Mmr:
    """Maximal marginal relevance over `candidates` nearest points (`diversity` in 0..1)."""

    diversity: float = 0.5
    candidates: int | None = None


Target = list[float] | SparseQuery | MultiQuery | PointId | Recommend | Discover
"""What a nearest search looks for: a dense vector, a sparse vector, or a stored point's; or
examples to recommend, discover or search the context of (`vecstore.router.recommend`)."""

CANDIDATES = 256
"""Candidates each example's search contributes to a best_score, sum_scores, discover or
context query (at least 4 x the limit). Scoring is exact over them: exact overall whenever the
filtered collection has at most this many points."""


@dataclass(frozen=True)
class Lookup:
    """Where ids given as vectors are looked up: another collection, and its vector (None:
    the one the stage searches)."""

    collection: str
    vector: str | None = None


@dataclass(frozen=True)
class Stage:
    """One level of a query tree."""

    query: Target | Fuse | None
    using: str | None = None
    condition: Filter | None = None
    limit: int = 10
    score_threshold: float | None = None
    prefetch: tuple[Stage, ...] = ()
    mmr: Mmr | None = None
    ef: int | None = None
    exact: bool = False
    lookup: Lookup | None = None

    def depth(self) -> int:
        """Levels below and including this one."""
        return 1 + max((p.depth() for p in self.prefetch), default=0)

    def searches(self) -> int:
        """Shard searches the tree runs (bounded per request)."""
        return 1 + sum(p.searches() for p in self.prefetch)


@dataclass(frozen=True)
class Output:
    """What the final stage returns besides ids and scores."""

    with_payload: bool = True
    with_vector: bool | tuple[str, ...] = False
    offset: int = 0


Search = Callable[..., Awaitable[list[Hit]]]
"""ShardSet-backed nearest search: (target, using, condition, k, options) -> hits, best first."""
Fetch = Callable[[list[PointId], bool, bool | tuple[str, ...]], Awaitable[list[Hit]]]
"""Points by id with payload/vectors as asked (missing ids left out)."""
FetchFrom = Callable[[str, list[PointId], bool | tuple[str, ...]], Awaitable[list[Hit]]]
"""Points of another collection by id, with the vectors asked (for `lookup_from`)."""


@dataclass
class HybridQuery:
    """Runs query trees against one collection through the given search and fetch calls."""

    schema: CollectionSchema
    search: Search
    fetch: Fetch
    fetch_from: FetchFrom | None = None
    searches_run: int = field(default=0)

    async def run(self, stage: Stage, output: Output) -> list[Hit]:
        """The final stage's hits (after `output.offset`)."""
        return await self._stage(stage, None, output, final=True)

    async def _stage(self, stage: Stage, inherited: Filter | None, output: Output, final: bool) -> list[Hit]:
        condition = _and(inherited, stage.condition)
        limit = stage.limit + (output.offset if final else 0)
        payload = output.with_payload if final else False
        vectors = output.with_vector if final else False
        if not stage.prefetch:
            if stage.query is None or isinstance(stage.query, Fuse):
                raise InvalidRequest(
                    "a fusion query needs prefetches; a query without prefetch needs a vector"
                )
            hits = await self._nearest(stage, stage.query, condition, limit, payload, vectors)
        else:
            sources = await asyncio.gather(
                *(self._stage(p, condition, output, False) for p in stage.prefetch)
            )
            if isinstance(stage.query, Fuse):
                hits = self._fuse(stage.query, list(sources), limit, stage.score_threshold)
                if payload or vectors:
                    hits = await self._with_contents(hits, payload, vectors)
            elif stage.query is None:
                raise InvalidRequest(
                    "a query with prefetches needs a query: a vector to re-score with, or fusion"
                )
            else:
                candidates = list(dict.fromkeys(hit["id"] for source in sources for hit in source))
                if not candidates:
                    return []
                among = _and(condition, HasId(frozenset(candidates)))
                rescoring = Stage(
                    stage.query, stage.using, None, stage.limit, stage.score_threshold, exact=True
                )
                hits = await self._nearest(rescoring, stage.query, among, limit, payload, vectors)
        return hits[output.offset :] if final else hits

    async def _nearest(
        self,
        stage: Stage,
        target: Target,
        condition: Filter | None,
        limit: int,
        payload: bool,
        vectors: bool | tuple[str, ...],
    ) -> list[Hit]:
        if isinstance(target, (Recommend, Discover)):
            return await self._examples_query(stage, target, condition, limit, payload, vectors)
        if isinstance(target, (int, str)):  # a stored point's vector, that point left out
            if stage.lookup is None:
                condition = _and(condition, Not(HasId(frozenset({target}))))
            target = await self._stored(target, stage.using, stage.lookup)
        options = {"ef": stage.ef, "exact": stage.exact, "score_threshold": stage.score_threshold}
        self.searches_run += 1
        if stage.mmr is None:
            return await self.search(target, stage.using, condition, limit, payload, vectors, options)
        if isinstance(target, MultiQuery):
            raise NotImplementedParameter("mmr over a multivector is not supported")
        using = stage.using
        wanted: tuple[str, ...] = (using,) if using else ()
        fetched: bool | tuple[str, ...] = wanted if self.schema.named else True
        candidates = await self.search(
            target, using, condition, stage.mmr.candidates or limit, payload, fetched, options
        )
        chosen = mmr(candidates, target, self._metric(using), stage.mmr.diversity, limit, using)
        if vectors != fetched:
            for hit in chosen:
                hit["vector"] = None
            if vectors:
                chosen = await self._with_contents(chosen, payload, vectors)
        return chosen

    async def _examples_query(
        self,
        stage: Stage,
        query: Recommend | Discover,
        condition: Filter | None,
        limit: int,
        payload: bool,
        vectors: bool | tuple[str, ...],
    ) -> list[Hit]:
        """Recommend, discover or context: example ids resolved to their vectors (and left out
        of the results, as Qdrant does); average_vector is one nearest search, the others are
        scored here over each example's nearest candidates, fetched with their vectors."""
        using = stage.using
        metric = self._dense_metric(using)
        dimension = self.schema.searched(using).dimension
        ids = [example for example in query.examples() if isinstance(example, (int, str))]
        stored = {
            point_id: await self._stored(point_id, using, stage.lookup) for point_id in dict.fromkeys(ids)
        }
        if ids and stage.lookup is None:
            condition = _and(condition, Not(HasId(frozenset(ids))))

        def vector(example: Example) -> list[float]:
            found = stored[example] if isinstance(example, (int, str)) else example
            if not isinstance(found, list):
                raise InvalidRequest(f"examples of {using!r} must be dense vectors")
            if len(found) != dimension:
                raise InvalidRequest(
                    f"Wrong input: Vector dimension error: expected dim: {dimension}, got {len(found)}"
                )
            if isinstance(example, (int, str)) and metric is Metric.COSINE:
                return _unit(found)  # Qdrant stores cosine vectors normalised
            return found

        options: dict[str, Any] = {"ef": stage.ef, "exact": stage.exact, "score_threshold": None}
        if isinstance(query, Recommend) and query.strategy == "average_vector":
            combined = average_vector(
                [vector(e) for e in query.positive], [vector(e) for e in query.negative]
            )
            options["score_threshold"] = stage.score_threshold
            self.searches_run += 1
            return await self.search(combined, using, condition, limit, payload, vectors, options)
        searched = [vector(example) for example in query.examples()]
        if isinstance(query, Recommend) and metric is not Metric.L2:  # the farthest from negatives
            searched += [[-value for value in vector(example)] for example in query.negative]
        pool = max(CANDIDATES, 4 * limit)
        wanted: bool | tuple[str, ...] = (using,) if self.schema.named and using else True
        self.searches_run += len(searched)
        found = await asyncio.gather(
            *(self.search(example, using, condition, pool, False, wanted, options) for example in searched)
        )
        candidates = list({hit["id"]: hit for hits in found for hit in hits}.values())
        if not candidates:
            return []
        matrix = np.array([_vector_of(hit, using) for hit in candidates], dtype=np.float32)
        if isinstance(query, Recommend):
            scores = recommend_scores(
                [vector(e) for e in query.positive],
                [vector(e) for e in query.negative],
                query.strategy,
                matrix,
                metric,
            )
        else:
            target = None if query.target is None else vector(query.target)
            pairs = [(vector(positive), vector(negative)) for positive, negative in query.pairs]
            scores = discover_scores(target, pairs, matrix, metric)
        chosen: list[Hit] = []
        threshold = stage.score_threshold
        for position in ranked(scores):
            score = float(scores[position])
            if threshold is not None and (score >= threshold if metric is Metric.L2 else score <= threshold):
                break  # as qdrant-client's local mode compares (the metric's order)
            chosen.append({"id": candidates[position]["id"], "score": score, "payload": None, "vector": None})
            if len(chosen) == limit:
                break
        if payload or vectors:
            chosen = await self._with_contents(chosen, payload, vectors)
        return chosen

    def _dense_metric(self, using: str | None) -> Metric:
        """The metric of the dense vector recommend/discover reads (501 for other kinds)."""
        metric = self._metric(using)
        multi = {name for name, _ in self.schema.multivectors()}
        if metric is None or using in multi:
            raise NotImplementedParameter(
                f"recommend, discover and context queries over {using!r} are not supported: "
                "dense vectors only"
            )
        return metric

    async def _stored(
        self, point_id: PointId, using: str | None, lookup: Lookup | None = None
    ) -> list[float] | SparseQuery | MultiQuery:
        if lookup is not None:  # the vector of a point of another collection
            assert self.fetch_from is not None, "lookup_from needs fetch_from"
            using = lookup.vector if lookup.vector is not None else using
            wanted_there: bool | tuple[str, ...] = (using,) if using else True
            found = await self.fetch_from(lookup.collection, [point_id], wanted_there)
            return self._vector_in(found, point_id, using)
        wanted: bool | tuple[str, ...] = (using,) if using else True
        found = await self.fetch([point_id], False, wanted)
        return self._vector_in(found, point_id, using)

    @staticmethod
    def _vector_in(
        found: list[Hit], point_id: PointId, using: str | None
    ) -> list[float] | SparseQuery | MultiQuery:
        vector = found[0].get("vector") if found else None
        if isinstance(vector, dict):
            vector = vector.get(using or "")
            if vector is None and found:
                raise InvalidRequest(f"Wrong input: point {point_id} has no vector {using!r}")
        if vector is None:
            raise NotFound(f"Not found: No point with id {point_id} found")
        if isinstance(vector, dict):
            return SparseQuery(tuple(vector["indices"]), tuple(vector["values"]))
        if vector and isinstance(vector[0], list):  # a multivector
            return MultiQuery(tuple(tuple(row) for row in vector))
        stored: list[float] = vector
        return stored

    def _metric(self, using: str | None) -> Metric | None:
        """The metric of the vector searched (None for a sparse one: dot products)."""
        if not self.schema.named:
            return self.schema.metric
        sparse = {name for name, _ in self.schema.sparse_vectors}
        return None if using in sparse else self.schema.vector(str(using)).metric

    @staticmethod
    def _fuse(method: Fuse, sources: list[list[Hit]], limit: int, threshold: float | None) -> list[Hit]:
        ranked = [[(hit["id"], float(hit["score"])) for hit in source] for source in sources]
        if method.method == "rrf":
            fused = rrf(
                ranked, k=method.k if method.k is not None else RRF_K, limit=limit, weights=method.weights
            )
        else:
            fused = dbsf(ranked, limit=limit)
        kept = [(point_id, score) for point_id, score in fused if threshold is None or score >= threshold]
        return [{"id": point_id, "score": score, "payload": None, "vector": None} for point_id, score in kept]

    async def _with_contents(
        self, hits: list[Hit], payload: bool, vectors: bool | tuple[str, ...]
    ) -> list[Hit]:
        found = {
            point["id"]: point for point in await self.fetch([hit["id"] for hit in hits], payload, vectors)
        }
        for hit in hits:
            point = found.get(hit["id"], {})
            hit["payload"] = point.get("payload") if payload else None
            hit["vector"] = point.get("vector") if vectors else None
        return hits


def _unit(vector: list[float]) -> list[float]:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    unit: list[float] = (array / norm).tolist() if norm > float(np.finfo(np.float32).eps) else vector
    return unit


def _and(first: Filter | None, second: Filter | None) -> Filter | None:
    if first is None:
        return second
    if second is None:
        return first
    return And((first, second))


# ---- MMR ------------------------------------------------------------------------------


def mmr(
    candidates: Sequence[Hit],
    query: list[float] | SparseQuery,
    metric: Metric | None,
    diversity: float,
    limit: int,
    using: str | None,
) -> list[Hit]:
    """Maximal marginal relevance: the most relevant candidate first, then repeatedly the one
    maximising (1 - diversity) * relevance - diversity * (its highest similarity to those
    chosen). Similarities are the core's (cosine, dot, minus the squared euclidean distance,
    sparse dot products); ties go to the last candidate, as in Qdrant's core. Scores stay the
    candidates' own."""
    if not 0.0 <= diversity <= 1.0:
        raise InvalidRequest(f"mmr.diversity must be in 0..1, got {diversity}")
    if not candidates:
        return []
    vectors = [_vector_of(hit, using) for hit in candidates]
    relevance = [_similarity(query, vector, metric) for vector in vectors]
    lambda_ = 1.0 - diversity
    pending = list(range(len(candidates)))
    selected = [_swap_remove(pending, _last_argmax([relevance[i] for i in pending]))]
    matrix: dict[tuple[int, int], float] = {}
    while len(selected) < limit and pending:
        scores = []
        for index in pending:
            closest = max(_cached(matrix, index, chosen, vectors, metric) for chosen in selected)
            scores.append(lambda_ * relevance[index] - (1.0 - lambda_) * closest)
        if all(np.isneginf(score) for score in scores):
            break
        selected.append(_swap_remove(pending, _last_argmax(scores)))
    return [dict(candidates[index]) for index in selected]


def _vector_of(hit: Hit, using: str | None) -> Any:
    vector = hit.get("vector")
    if isinstance(vector, dict) and "indices" not in vector:
        vector = vector.get(str(using))
    if vector is None:
        raise InvalidRequest(f"point {hit['id']} has no vector {using!r} for MMR")
    if isinstance(vector, dict):
        return SparseQuery(tuple(vector["indices"]), tuple(vector["values"]))
    return np.asarray(vector, dtype=np.float32)


def _similarity(first: Any, second: Any, metric: Metric | None) -> float:
    if isinstance(first, SparseQuery) or isinstance(second, SparseQuery):
        return _sparse_dot(_as_sparse(first), _as_sparse(second))
    a = np.asarray(first, dtype=np.float32)
    b = np.asarray(second, dtype=np.float32)
    if metric is Metric.L2:
        return -float(np.square(a - b, dtype=np.float32).sum(dtype=np.float32))
    if metric is Metric.COSINE:
        norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
        return float(np.dot(a, b)) / norms if norms > 0 else 0.0
    return float(np.dot(a, b))


def _as_sparse(vector: Any) -> SparseQuery:
    if isinstance(vector, SparseQuery):
        return vector
    raise InvalidRequest("MMR compares a sparse query with sparse vectors only")


def _sparse_dot(first: SparseQuery, second: SparseQuery) -> float:
    weights = dict(zip(second.indices, second.values, strict=True))
    return float(
        sum(value * weights.get(index, 0.0) for index, value in zip(first.indices, first.values, strict=True))
    )


def _cached(
    matrix: dict[tuple[int, int], float], a: int, b: int, vectors: list[Any], metric: Metric | None
) -> float:
    key = (a, b)
    if key not in matrix:
        matrix[key] = _similarity(vectors[a], vectors[b], metric)
    return matrix[key]


def _last_argmax(values: Sequence[float]) -> int:
    best = 0
    for index, value in enumerate(values):
        if value >= values[best]:
            best = index
    return best


def _swap_remove(items: list[int], position: int) -> int:
    """Remove `items[position]` by moving the last item into its place (Rust's swap_remove)."""
    chosen = items[position]
    last = items.pop()
    if position < len(items):
        items[position] = last
    return chosen


def hits_of(points: Sequence[Mapping[str, Any]]) -> list[Hit]:
    """Shard answers as mutable hit dicts."""
    return [dict(point) for point in points]
