"""`make bench` hybrid section: sparse (BM25), dense and hybrid (RRF) queries on real text.

WordNet 3.0 glosses with their cached MiniLM embeddings (bench/embeddings.py): N glosses are
loaded, Q other glosses are the held-out queries. Each point has a dense "text" vector
(cosine) and a sparse "bm25" vector (idf modifier). Measured in the same run: a numpy brute
force (the recall truth and a QPS baseline), VecStore clusters through qdrant-client over
HTTP (1 and 16 concurrent clients), and qdrant-client's local mode (`QdrantClient(":memory:")`,
1 client). Hybrid = dense top-50 + sparse top-50 fused by RRF (k=2), top 10. Also the ingest
time of the N points with BM25 inferred by the router against precomputed sparse vectors.
`--quick` without the WordNet cache falls back on synthetic text (a smoke run only).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from bench import embeddings
from bench.output import publish
from vecstore.client import AsyncClient
from vecstore.cluster import bm25
from vecstore.cluster.fusion import RRF_K, rrf
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready_async

K = 10
PREFETCH = 50
BATCH = 256
TASKS = (1, 16)
COLLECTION = "glosses"
INFERRED = "glosses_inferred"
EXACT = models.SearchParams(exact=True)
Floats = npt.NDArray[np.float32]
Sparse = tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]
Ranked = list[tuple[int, float]]
Search = Callable[[int], Awaitable[list[int]]]


@dataclass
class Corpus:
    """Documents and held-out queries: texts, unit dense vectors, BM25 sparse vectors."""

    source: str
    texts: list[str]
    dense: Floats
    sparse: list[Sparse]
    query_texts: list[str]
    query_dense: Floats
    query_sparse: list[Sparse]


def _unit(vectors: Floats) -> Floats:
    return np.ascontiguousarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def _with_bm25(source: str, texts: list[str], dense: Floats, queries: list[str], qdense: Floats) -> Corpus:
    return Corpus(
        source,
        texts,
        _unit(dense),
        [bm25.document_vector(t) for t in texts],
        queries,
        _unit(qdense),
        [bm25.query_vector(t) for t in queries],
    )


def wordnet_corpus(documents: int, queries: int, build: bool) -> Corpus:
    """The first documents + queries rows of the embedding cache; the queries evenly spread among
    them (held out: not loaded). Cache row i is gloss i, or the i-th of the evenly spread subset
    `embeddings.ensure` embeds when asked for fewer rows than the corpus has. Without `build`,
    a cache too small is an error instead of minutes of embedding."""
    rows = documents + queries
    if build:
        embeddings.ensure(rows)
    elif embeddings.cached_rows() < rows:
        raise FileNotFoundError(f"the embedding cache holds {embeddings.cached_rows():,} rows, not {rows:,}")
    glosses = embeddings.read_glosses(embeddings.wordnet_dir())
    cached = embeddings.cached_rows()
    positions = np.arange(cached) if cached == len(glosses) else np.linspace(0, len(glosses) - 1, cached)
    texts = [glosses[int(p)] for p in positions.round()[:rows]]
    vectors = embeddings.load(rows)
    held_out = np.zeros(rows, dtype=bool)
    held_out[np.linspace(0, rows - 1, queries).round().astype(np.int64)] = True
    layout = "all glosses" if cached == len(glosses) else f"{cached:,} glosses spread over the corpus"
    return _with_bm25(
        f"WordNet 3.0 glosses, MiniLM 384-d (cache: {layout})",
        [t for t, q in zip(texts, held_out, strict=True) if not q],
        vectors[~held_out],
        [t for t, q in zip(texts, held_out, strict=True) if q],
        vectors[held_out],
    )


def synthetic_corpus(documents: int, queries: int) -> Corpus:
    """Made-up words drawn Zipf-like; a text's dense vector is the noisy mean of its words' random
    vectors, so dense and sparse agree somewhat (for smoke runs where WordNet is not at hand)."""
    rng = np.random.default_rng(15)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, size=int(rng.integers(4, 9)))) for _ in range(3_000)]
    word_vectors = rng.normal(size=(len(vocabulary), 384)).astype(np.float32)
    weights = 1 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()

    def make(count: int) -> tuple[list[str], Floats]:
        words = [rng.choice(len(vocabulary), size=int(rng.integers(4, 16)), p=weights) for _ in range(count)]
        dense = np.stack([word_vectors[w].mean(axis=0) + rng.normal(scale=0.1, size=384) for w in words])
        return [" ".join(vocabulary[i] for i in w) for w in words], dense.astype(np.float32)

    texts, dense = make(documents)
    query_texts, query_dense = make(queries)
    return _with_bm25(
        "synthetic text (the WordNet cache is not at hand)", texts, dense, query_texts, query_dense
    )


class BruteForce:
    """Exact scores by scanning everything: every (document, term, weight) entry for sparse
    queries (idf over the loaded documents, Qdrant's formula), the whole matrix for dense."""

    def __init__(self, corpus: Corpus) -> None:
        self.dense = corpus.dense
        self.count = len(corpus.sparse)
        self.terms = np.concatenate([indices for indices, _ in corpus.sparse]).astype(np.int64)
        self.weights = np.concatenate([values for _, values in corpus.sparse]).astype(np.float64)
        self.owners = np.repeat(np.arange(self.count), [len(indices) for indices, _ in corpus.sparse])
        unique, frequencies = np.unique(self.terms, return_counts=True)
        self.frequency = dict(zip(unique.tolist(), frequencies.tolist(), strict=True))

    def idf(self, term: int) -> float:
        df = self.frequency.get(term, 0)
        return float(np.log((self.count - df + 0.5) / (df + 0.5) + 1))

    def sparse_scores(self, query: Sparse) -> npt.NDArray[np.float64]:
        """Every document's score; -inf where it shares no term with the query (never returned)."""
        weight = {int(t): float(v) * self.idf(int(t)) for t, v in zip(*query, strict=True)}
        hit = np.isin(self.terms, np.fromiter(weight, dtype=np.int64, count=len(weight)))
        terms = self.terms[hit]
        query_weights = np.array([weight[int(t)] for t in terms], dtype=np.float64)
        scores = np.bincount(self.owners[hit], self.weights[hit] * query_weights, minlength=self.count)
        overlaps = np.bincount(self.owners[hit], minlength=self.count) > 0
        return np.where(overlaps, scores, -np.inf)

    def dense_scores(self, query: Floats) -> npt.NDArray[np.float64]:
        return (self.dense @ query).astype(np.float64)


def top(scores: npt.NDArray[np.float64], limit: int) -> Ranked:
    """Best `limit` (id, score), best first, equal scores by id (as the cluster and Qdrant break
    ties: with BM25 on short glosses, dozens of documents often tie at the cut); ids whose score
    is -inf are left out."""
    chosen = np.arange(len(scores))
    if len(scores) > limit:  # everything tied with the limit-th best stays in the running
        chosen = np.flatnonzero(scores >= -np.partition(-scores, limit - 1)[limit - 1])
    order = chosen[np.lexsort((chosen, -scores[chosen]))][:limit]
    return [(int(i), float(scores[i])) for i in order if np.isfinite(scores[i])]


@dataclass
class Truth:
    """Exact answers per query kind: the ranked top-10 and each id's exact score (for ties)."""

    ranked: list[Ranked]
    scores: list[npt.NDArray[np.float64]]
    """Every document's exact score (-inf: not a candidate at all)."""


def brute_force(corpus: Corpus, force: BruteForce) -> tuple[dict[str, Truth], dict[str, Any]]:
    """The truth of every query kind, and the brute force's own QPS and p50 per kind."""
    truths: dict[str, Truth] = {kind: Truth([], []) for kind in ("sparse", "dense", "hybrid")}
    latencies: dict[str, list[float]] = {kind: [] for kind in truths}
    for dense_query, sparse_query in zip(corpus.query_dense, corpus.query_sparse, strict=True):
        t0 = time.perf_counter()
        sparse_scores = force.sparse_scores(sparse_query)
        sparse_top = top(sparse_scores, PREFETCH)
        t1 = time.perf_counter()
        dense_scores = force.dense_scores(dense_query)
        dense_top = top(dense_scores, PREFETCH)
        t2 = time.perf_counter()
        fused = rrf([dense_top, sparse_top], k=RRF_K, limit=len(dense_top) + len(sparse_top))
        t3 = time.perf_counter()
        latencies["sparse"].append(t1 - t0)
        latencies["dense"].append(t2 - t1)
        latencies["hybrid"].append(t3 - t0)
        for kind, ranked, every in (
            ("sparse", sparse_top, sparse_scores),
            ("dense", dense_top, dense_scores),
            ("hybrid", [(int(i), s) for i, s in fused], _spread(fused, force.count)),
        ):
            truths[kind].ranked.append(ranked[:K])
            truths[kind].scores.append(every)
    figures = {kind: _summary(latencies[kind], sum(latencies[kind])) for kind in truths}
    return truths, figures


def _spread(ranked: Sequence[tuple[Any, float]], count: int) -> npt.NDArray[np.float64]:
    scores = np.full(count, -np.inf)
    scores[[int(i) for i, _ in ranked]] = [score for _, score in ranked]
    return scores


def recall(found: Sequence[Sequence[int]], truth: Truth) -> float:
    """Mean recall@10, tie-aware: a returned id counts when its exact score reaches the 10th
    best exact score (equal scores make several top-10 sets equally right)."""
    values = []
    for hits, ranked, exact in zip(found, truth.ranked, truth.scores, strict=True):
        if not ranked:
            values.append(1.0 if not hits else 0.0)
            continue
        bar = ranked[-1][1] - 1e-6 * max(1.0, abs(ranked[-1][1]))
        good = sum(1 for hit in dict.fromkeys(hits) if 0 <= hit < len(exact) and exact[hit] >= bar)
        values.append(min(good, len(ranked)) / len(ranked))
    return float(np.mean(values))


def _summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    return {
        "qps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) * 1000,
        "p99_ms": float(np.percentile(latencies, 99)) * 1000,
    }


def _sparse_model(vector: Sparse) -> models.SparseVector:
    return models.SparseVector(indices=vector[0].tolist(), values=vector[1].tolist())


def points(corpus: Corpus, start: int, stop: int, inferred: bool) -> list[models.PointStruct]:
    """One batch: dense "text" and sparse "bm25" (a BM25 document to infer, or precomputed)."""
    return [
        models.PointStruct(
            id=i,
            vector={
                "text": corpus.dense[i].tolist(),
                "bm25": models.Document(text=corpus.texts[i], model=bm25.MODEL_NAME)
                if inferred
                else _sparse_model(corpus.sparse[i]),
            },
            payload={"gloss": corpus.texts[i]},
        )
        for i in range(start, stop)
    ]


def create_params() -> dict[str, Any]:
    return {
        "vectors_config": {"text": models.VectorParams(size=384, distance=models.Distance.COSINE)},
        "sparse_vectors_config": {"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    }


def query_kinds(corpus: Corpus) -> dict[str, Callable[[int], dict[str, Any]]]:
    """query_points arguments of each query kind, by query number; `(exact)` dense stages
    score every point, the others use HNSW."""

    def sparse(q: int) -> dict[str, Any]:
        return {"query": _sparse_model(corpus.query_sparse[q]), "using": "bm25"}

    def sparse_text(q: int) -> dict[str, Any]:
        return {"query": models.Document(text=corpus.query_texts[q], model=bm25.MODEL_NAME), "using": "bm25"}

    def dense(exact: bool) -> Callable[[int], dict[str, Any]]:
        return lambda q: {
            "query": corpus.query_dense[q].tolist(),
            "using": "text",
            "search_params": EXACT if exact else None,
        }

    def hybrid(exact: bool) -> Callable[[int], dict[str, Any]]:
        return lambda q: {
            "prefetch": [
                models.Prefetch(
                    query=corpus.query_dense[q].tolist(),
                    using="text",
                    limit=PREFETCH,
                    params=EXACT if exact else None,
                ),
                models.Prefetch(query=_sparse_model(corpus.query_sparse[q]), using="bm25", limit=PREFETCH),
            ],
            "query": models.FusionQuery(fusion=models.Fusion.RRF),
        }

    return {
        "sparse": sparse,
        "sparse (bm25 text)": sparse_text,
        "dense": dense(False),
        "dense (exact)": dense(True),
        "hybrid": hybrid(False),
        "hybrid (exact)": hybrid(True),
    }


def truth_of(kind: str) -> str:
    return kind.split(" ", maxsplit=1)[0]


async def run_tasks(search: Search, queries: int, tasks: int) -> tuple[dict[str, Any], list[list[int]]]:
    """`tasks` concurrent loops over the queries: QPS and latencies, and what each query found."""
    latencies: list[float] = []
    found: list[list[int]] = [[] for _ in range(queries)]

    async def task(number: int) -> None:
        for query in range(number, queries, tasks):
            t0 = time.perf_counter()
            found[query] = await search(query)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(task(n) for n in range(tasks)))
    return _summary(latencies, time.perf_counter() - started), found


async def wait_indexed(client: AsyncClient) -> None:
    """Until every node reports indexing lag 0 (measure the indexed steady state)."""
    while True:
        if not any(node.get("indexing_lag", 1) for node in await client.status()):
            return
        await asyncio.sleep(0.5)


async def ingest(client: AsyncQdrantClient, name: str, corpus: Corpus, inferred: bool) -> float:
    """Seconds to upsert every document in batches of BATCH, one batch in flight."""
    await client.create_collection(name, **create_params())
    started = time.perf_counter()
    for start in range(0, len(corpus.texts), BATCH):
        batch = points(corpus, start, min(start + BATCH, len(corpus.texts)), inferred)
        await client.upsert(name, batch, wait=True)
    return time.perf_counter() - started


async def bench_cluster(
    corpus: Corpus, truths: dict[str, Truth], scratch: Path, shards: int, replicas: int
) -> dict[str, Any]:
    """Load both ways, then every query kind with 1 and with 16 concurrent clients."""
    cluster = LocalCluster(scratch / f"cluster-{shards}x{replicas}", shards, replicas, port=free_ports(1)[0])
    cluster.start()
    try:
        await wait_ready_async(readyz_url(cluster.router_url), 180, 0.3)
        remote = AsyncQdrantClient(url=cluster.router_url, timeout=120)
        async with AsyncClient(cluster.router_url) as ours:
            say(f"{shards}x{replicas}: ingest with BM25 inferred by the router ...")
            load = {"inferred_s": await ingest(remote, INFERRED, corpus, inferred=True)}
            await wait_indexed(ours)
            say(f"{shards}x{replicas}: ingest with precomputed sparse vectors ...")
            load["precomputed_s"] = await ingest(remote, COLLECTION, corpus, inferred=False)
            await wait_indexed(ours)
        searches: dict[str, Any] = {}
        for kind, arguments in query_kinds(corpus).items():
            for tasks in TASKS:

                async def search(q: int, arguments: Callable[[int], dict[str, Any]] = arguments) -> list[int]:
                    answer = await remote.query_points(
                        COLLECTION, limit=K, with_payload=False, **arguments(q)
                    )
                    return [int(point.id) for point in answer.points]

                say(f"{shards}x{replicas}: {kind}, {tasks} clients ...")
                figures, found = await run_tasks(search, len(corpus.query_texts), tasks)
                figures["recall"] = recall(found, truths[truth_of(kind)])
                searches[f"{kind}/{tasks}"] = figures
        await remote.close()
        return {"load": load, "search": searches}
    finally:
        cluster.stop()


def bench_local(corpus: Corpus, truths: dict[str, Truth]) -> dict[str, Any]:
    """qdrant-client's local mode (everything exact), 1 client; precomputed sparse vectors."""
    local = QdrantClient(":memory:")
    local.create_collection(COLLECTION, **create_params())
    started = time.perf_counter()
    for start in range(0, len(corpus.texts), BATCH):
        local.upsert(COLLECTION, points(corpus, start, min(start + BATCH, len(corpus.texts)), False))
    load = {"precomputed_s": time.perf_counter() - started}
    searches: dict[str, Any] = {}
    kinds = query_kinds(corpus)
    for kind in ("sparse", "dense", "hybrid"):
        say(f"local mode: {kind} ...")
        latencies, found = [], []
        for q in range(len(corpus.query_texts)):
            t0 = time.perf_counter()
            answer = local.query_points(COLLECTION, limit=K, with_payload=False, **kinds[kind](q))
            latencies.append(time.perf_counter() - t0)
            found.append([int(point.id) for point in answer.points])
        searches[f"{kind}/1"] = {**_summary(latencies, sum(latencies)), "recall": recall(found, truths[kind])}
    local.close()
    return {"load": load, "search": searches}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(result: dict[str, Any]) -> str:
    """The printed table: each system and query kind, and the cluster as a ratio of local mode."""
    lines = [
        f"Sparse and hybrid search: {result['documents']:,} documents, {result['queries']} held-out "
        f"queries, k={K}; hybrid = RRF (k={RRF_K}) of dense top-{PREFETCH} + sparse top-{PREFETCH}",
        f"data: {result['source']}; recall@10 against the numpy brute force (tie-aware)",
        f"{'system':<12} {'query':<18} {'clients':>7} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'recall@10':>9} {'vs local':>8}",
    ]
    local = result["local"]["search"] if "local" in result else {}

    def row(system: str, kind: str, tasks: int, figures: dict[str, Any]) -> str:
        base = local.get(f"{truth_of(kind)}/1")
        ratio = f"{figures['qps'] / base['qps']:>7.2f}x" if base else f"{'':>8}"
        return (
            f"{system:<12} {kind:<18} {tasks:>7} {figures['qps']:>8.0f} {figures['p50_ms']:>8.2f} "
            f"{figures['p99_ms']:>8.2f} {figures.get('recall', 1.0):>9.3f} {ratio}"
        )

    for kind, figures in result["brute_force"].items():
        lines.append(row("brute force", kind, 1, figures))
    for key, figures in local.items():
        lines.append(row("local mode", key.split("/")[0], 1, figures))
    for shape, measured in result["clusters"].items():
        for key, figures in measured["search"].items():
            kind, tasks = key.split("/")
            lines.append(row(f"VecStore {shape}", kind, int(tasks), figures))
    lines.append(f"ingest of {result['documents']:,} points, batches of {BATCH}, one in flight:")
    for shape, measured in result["clusters"].items():
        load = measured["load"]
        lines.append(
            f"  VecStore {shape}: BM25 inferred by the router {load['inferred_s']:.1f} s, "
            f"precomputed sparse {load['precomputed_s']:.1f} s "
            f"({load['inferred_s'] / load['precomputed_s']:.2f}x)"
        )
    if "local" in result:
        lines.append(f"  local mode: precomputed sparse {result['local']['load']['precomputed_s']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.hybrid`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--shapes", default="1x1,2x3", help="clusters, shards x replicas, comma-separated")
    parser.add_argument("--no-local", action="store_true", help="leave qdrant-client's local mode out")
    parser.add_argument("--quick", action="store_true", help="2,000 documents, 50 queries, a 1x1 cluster")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.documents, args.queries, args.shapes = 2_000, 50, "1x1"
    started = time.perf_counter()
    try:
        corpus = wordnet_corpus(args.documents, args.queries, build=not args.quick)
    except (RuntimeError, FileNotFoundError) as error:
        if not args.quick:
            raise
        say(f"WordNet embeddings not at hand ({error}); synthetic text for this smoke run")
        corpus = synthetic_corpus(args.documents, args.queries)
    say(f"{corpus.source}: brute force truth ...")
    truths, brute = brute_force(corpus, BruteForce(corpus))
    result: dict[str, Any] = {
        "documents": len(corpus.texts),
        "queries": len(corpus.query_texts),
        "source": corpus.source,
        "brute_force": brute,
        "clusters": {},
    }
    if not args.no_local:
        result["local"] = bench_local(corpus, truths)
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-hybrid-") as scratch:
        for shape in args.shapes.split(","):
            shards, replicas = (int(part) for part in shape.strip().split("x"))
            result["clusters"][f"{shards}x{replicas}"] = asyncio.run(
                bench_cluster(corpus, truths, Path(scratch), shards, replicas)
            )
    result["seconds"] = time.perf_counter() - started
    publish(report(result), result, args.json)
    say(f"took {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
