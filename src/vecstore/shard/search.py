"""Nearest-neighbour search over one collection: exact or HNSW, as the planner decides.

Every search runs under the collection's read lock, so it sees one applied state: all
segments through HNSW, the unindexed write buffer by exact scoring, tombstones removed,
and f16/i8 candidates re-scored with full-precision vectors.
"""

from __future__ import annotations

from time import perf_counter

import numpy as np
import numpy.typing as npt

from vecstore.cluster.commands import as_vector_matrix
from vecstore.cluster.errors import InvalidRequest, InvalidVector
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId
from vecstore.cluster.profile import NO_PROFILE, Profile
from vecstore.cluster.schema import StorageDtype
from vecstore.shard.collection import Collection
from vecstore.shard.memtable import NO_KEY, FloatMatrix, KeyArray, MemTable
from vecstore.shard.payload_index import contains_keys
from vecstore.shard.planner import choose_plan
from vecstore.shard.records import ScoredPoint, SearchPlan
from vecstore.shard.scorer import distance_to_score
from vecstore.shard.segment import SealedSegment

MAX_K = 10_000


def validate_queries(collection: Collection, queries: npt.ArrayLike, k: int) -> FloatMatrix:
    """Queries as a finite (n, dimension) matrix; k in range; else a clear error."""
    matrix = as_vector_matrix(queries)
    if matrix.shape[1] != collection.schema.dimension:
        raise InvalidVector(
            f"query vector has {matrix.shape[1]} dimensions, collection "
            f"{collection.schema.name!r} expects {collection.schema.dimension}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidRequest(f"k (limit) must be an integer in 1..{MAX_K}, got {k!r}")
    return matrix


def explain(collection: Collection, k: int, condition: Filter | None, exact: bool = False) -> SearchPlan:
    """The plan a search with these parameters would run."""
    with collection.reading():
        allowed = collection.matching_keys(condition) if condition is not None else None
        return _plan(collection, k, condition, exact, allowed)


def _plan(
    collection: Collection, k: int, condition: Filter | None, exact: bool, allowed: KeyArray | None
) -> SearchPlan:
    settings = collection.settings
    live = len(collection.id_map)
    matching = live if allowed is None else len(allowed)
    plan = choose_plan(live, condition, matching, k, settings.exact_limit, exact)
    return SearchPlan(
        plan.kind,
        plan.live_points,
        plan.estimated_matches,
        plan.sample_size,
        plan.reason,
        fetch=plan.fetch,
        segments=len(collection.sealed),
        details={"unindexed": collection.pending(), "backend": collection.scorer.backend},
    )


def search(
    collection: Collection,
    queries: npt.ArrayLike,
    k: int,
    condition: Filter | None = None,
    *,
    ef: int | None = None,
    exact: bool = False,
    with_payload: bool = True,
    with_vector: bool = False,
    score_threshold: float | None = None,
    profile: Profile = NO_PROFILE,
) -> list[list[ScoredPoint]]:
    """Top-k points for each query, best first. `profile` gets the stages: plan, then exact
    (an exact plan) or hnsw, exact_tail, filter and rescore (an HNSW plan), then fetch."""
    matrix = validate_queries(collection, queries, k)
    with collection.reading():
        started = perf_counter()
        # one pass of the payload index serves the plan's count and the search itself
        allowed = collection.matching_keys(condition) if condition is not None else None
        plan = _plan(collection, k, condition, exact, allowed)
        profile.add("plan", started)
        if plan.kind == "exact":
            started = perf_counter()
            keys, distances = _search_exact(collection, matrix, k, allowed)
            profile.add("exact", started)
        else:
            keys, distances = _search_hnsw(collection, matrix, k, allowed, plan.fetch, ef, profile)
        started = perf_counter()
        results = _results(collection, keys, distances, with_payload, with_vector, score_threshold)
        profile.add("fetch", started)
        return results


def _results(
    collection: Collection,
    keys: list[KeyArray],
    distances: list[FloatMatrix],
    with_payload: bool,
    with_vector: bool,
    score_threshold: float | None,
) -> list[list[ScoredPoint]]:
    """Each query's hits with their external ids (and payloads, vectors)."""
    ids = _external_ids(collection, np.concatenate(keys)) if keys else []  # one lookup per batch
    results = []
    start = 0
    for row_keys, row_distances in zip(keys, distances, strict=True):
        stop = start + len(row_keys)
        results.append(
            _hits(
                collection,
                row_keys,
                row_distances,
                ids[start:stop],
                with_payload,
                with_vector,
                score_threshold,
            )
        )
        start = stop
    return results


def _search_exact(
    collection: Collection, queries: FloatMatrix, k: int, allowed: KeyArray | None
) -> tuple[list[KeyArray], list[FloatMatrix]]:
    """Score every allowed key (every live key without a filter), in key order."""
    if allowed is None:
        allowed = np.sort(np.fromiter(collection.id_map.values(), np.uint64, len(collection.id_map)))
    keys = allowed
    vectors = collection.vectors_of(keys)
    rows, distances = collection.scorer.top_k(queries, vectors, collection.schema.metric, k)
    return [keys[r] for r in rows], list(distances)


def _search_hnsw(
    collection: Collection,
    queries: FloatMatrix,
    k: int,
    allowed: KeyArray | None,
    fetch: int,
    ef: int | None,
    profile: Profile = NO_PROFILE,
) -> tuple[list[KeyArray], list[FloatMatrix]]:
    rescore = collection.schema.dtype is not StorageDtype.F32
    want = k * collection.settings.rescore_factor if rescore else k
    fetch = max(fetch, want, ef or 0)
    total = collection.next_key
    enough = want if allowed is None else min(want, len(allowed))  # no more can ever pass
    while True:
        candidates = _candidates(collection, queries, fetch, profile)
        started = perf_counter()
        chosen = [_accept(collection, keys, dists, allowed, want) for keys, dists in candidates]
        profile.add("filter", started)
        if all(len(keys) >= enough for keys, _ in chosen) or fetch >= total:
            break
        fetch *= 4
    if rescore:
        with profile.stage("rescore"):
            chosen = _rescore_all(collection, queries, [keys for keys, _ in chosen], k)
    return [keys[:k] for keys, _ in chosen], [dists[:k] for _, dists in chosen]


def _candidates(
    collection: Collection, queries: FloatMatrix, fetch: int, profile: Profile = NO_PROFILE
) -> list[tuple[KeyArray, FloatMatrix]]:
    """Per query, candidate keys and distances from every container, closest first (one
    hnsw stage per graph searched, one exact_tail stage per unindexed tail scored)."""
    parts_keys: list[KeyArray] = []
    parts_dists: list[FloatMatrix] = []
    exact_tail = False
    for container in collection.containers():
        count = min(fetch + container.dead, container.count)
        if count <= 0:
            continue
        # read the watermark before the graph search: the indexer thread may publish a
        # bigger graph in between, whose extra rows the exact scan covers too (duplicates
        # are dropped later)
        searchable = container.searchable if isinstance(container, MemTable) else container.count
        started = perf_counter()
        keys, dists = container.search(queries, count)
        profile.add("hnsw", started)
        parts_keys.append(keys)
        parts_dists.append(dists)
        if isinstance(container, MemTable) and searchable < container.count:
            with profile.stage("exact_tail"):
                rows, tail_dists = collection.scorer.top_k_normed(
                    queries,
                    container.vectors(searchable),
                    container.norms(searchable),
                    collection.schema.metric,
                    count,
                )
            parts_keys.append(container.keys(searchable)[rows])
            parts_dists.append(tail_dists)
            exact_tail = True
    if not parts_keys:
        empty_keys = np.zeros(0, np.uint64)
        return [(empty_keys, np.zeros(0, np.float32)) for _ in range(len(queries))]
    if len(parts_keys) == 1:  # one graph's results are already closest first
        return list(zip(parts_keys[0], parts_dists[0], strict=True))
    all_keys = np.concatenate(parts_keys, axis=1)
    all_dists = np.concatenate(parts_dists, axis=1)
    if exact_tail and collection.schema.dtype is not StorageDtype.F32:
        # quantized graphs measure on their own scale (usearch normalises i8 vectors), so
        # the exact tail's distances cannot be merged with them: compare all at full precision
        all_dists = _full_precision_distances(collection, queries, all_keys)
    order = np.argsort(all_dists, axis=1, kind="stable")
    sorted_keys = np.take_along_axis(all_keys, order, 1)
    sorted_dists = np.take_along_axis(all_dists, order, 1)
    return list(zip(sorted_keys, sorted_dists, strict=True))


def _full_precision_distances(collection: Collection, queries: FloatMatrix, keys: KeyArray) -> FloatMatrix:
    """Each query's exact distances to its own candidate keys; padding stays at +inf."""
    distances = np.full(keys.shape, np.inf, dtype=np.float32)
    for row, (query, row_keys) in enumerate(zip(queries, keys, strict=True)):
        real = np.flatnonzero(row_keys != NO_KEY)
        if len(real):
            vectors = collection.vectors_of(row_keys[real])
            scored = collection.scorer.distances(query[None, :], vectors, collection.schema.metric)
            distances[row, real] = scored[0]
    return distances


def _accept(
    collection: Collection,
    keys: KeyArray,
    distances: FloatMatrix,
    allowed: KeyArray | None,
    want: int,
) -> tuple[KeyArray, FloatMatrix]:
    """Drop padding, duplicates, tombstones and filter misses; keep at most `want`.

    `allowed` (sorted live keys passing the filter) already excludes padding and tombstones.
    """
    if allowed is not None:
        positions = np.flatnonzero(contains_keys(allowed, keys))
        if len(positions):
            _, first = np.unique(keys[positions], return_index=True)  # first = closest copy
            positions = positions[np.sort(first)][:want]
        return keys[positions], np.asarray(distances[positions], dtype=np.float32)
    kept_keys: list[int] = []
    kept_dists: list[float] = []
    seen: set[int] = set()
    tombstones = collection.tombstones
    for key, distance in zip(keys.tolist(), distances.tolist(), strict=True):
        if key == int(NO_KEY) or key in seen or key in tombstones:
            continue
        seen.add(key)
        kept_keys.append(key)
        kept_dists.append(distance)
        if len(kept_keys) >= want:
            break
    return np.array(kept_keys, dtype=np.uint64), np.array(kept_dists, dtype=np.float32)


RESCORE_CHUNK_FLOATS = 1 << 20
"""Bound on candidate floats gathered at once when re-scoring a batch (4 MiB of float32)."""


def _rescore_all(
    collection: Collection, queries: FloatMatrix, candidates: list[KeyArray], k: int
) -> list[tuple[KeyArray, FloatMatrix]]:
    """Re-rank each query's quantized candidates by full-precision distance.

    When every query has the same number of candidates (the usual case) the vectors are
    gathered and scored a chunk of queries at a time instead of one query at a time.
    """
    sizes = {len(keys) for keys in candidates}
    if len(sizes) != 1 or not (size := sizes.pop()):
        return [_rescore(collection, q, keys, k) for q, keys in zip(queries, candidates, strict=True)]
    keys = np.stack(candidates)
    chunk = max(1, RESCORE_CHUNK_FLOATS // (size * collection.schema.dimension))
    results: list[tuple[KeyArray, FloatMatrix]] = []
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        vectors = collection.vectors_of(part.reshape(-1)).reshape(len(part), size, -1)
        rows, distances = collection.scorer.top_k_each(
            queries[start : start + chunk], vectors, collection.schema.metric, k
        )
        picked = part[np.arange(len(part))[:, None], rows]
        results.extend(zip(picked, distances, strict=True))
    return results


def _rescore(
    collection: Collection, query: FloatMatrix, keys: KeyArray, k: int
) -> tuple[KeyArray, FloatMatrix]:
    if not len(keys):
        return keys, np.zeros(0, np.float32)
    vectors = collection.vectors_of(keys)
    rows, distances = collection.scorer.top_k(query[None, :], vectors, collection.schema.metric, k)
    return keys[rows[0]], distances[0]


def _hits(
    collection: Collection,
    keys: KeyArray,
    distances: FloatMatrix,
    ids: list[PointId],
    with_payload: bool,
    with_vector: bool,
    score_threshold: float | None,
) -> list[ScoredPoint]:
    metric = collection.schema.metric
    scores = distance_to_score(np.asarray(distances, dtype=np.float32), metric)
    vectors = collection.vectors_of(keys) if with_vector and len(keys) else None
    hits = []
    for position, (key, score) in enumerate(zip(keys.tolist(), scores.tolist(), strict=True)):
        if score_threshold is not None and (
            score < score_threshold if metric.higher_is_better else score > score_threshold
        ):
            continue
        hits.append(
            ScoredPoint(
                id=ids[position],
                score=float(score),
                payload=collection.payload_of(key) if with_payload else None,
                vector=vectors[position].tolist() if vectors is not None else None,
            )
        )
    return hits


def _external_ids(collection: Collection, keys: KeyArray) -> list[PointId]:
    """External ids of live keys: one vectorised lookup per container, not one per key."""
    if not len(keys):
        return []
    first = collection.container_of(int(keys.min()))
    if int(keys.max()) < first.key_hi:  # the usual case: every key in one container
        return [first.ext_ids[row] for row in _rows(first, keys).tolist()]
    ids: list[PointId] = [0] * len(keys)
    for container, positions in collection.group_by_container(keys):
        for position, row in zip(positions.tolist(), _rows(container, keys[positions]).tolist(), strict=True):
            ids[position] = container.ext_ids[row]
    return ids


def _rows(container: MemTable | SealedSegment, keys: KeyArray) -> npt.NDArray[np.int64]:
    if isinstance(container, MemTable):
        return keys.astype(np.int64) - container.key_lo
    return container.rows_of(keys)
