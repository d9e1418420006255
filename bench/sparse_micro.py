"""Micro-benchmark of vecstore.shard.sparse: build, query, save and load of a synthetic space.

Run: .venv/bin/python -m bench.sparse_micro [--points 100000] [--nnz 100] [--vocab 30000]
Terms are drawn Zipf-like (a few common, many rare), as in text; queries have 10 terms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vecstore.shard.sparse import SparseVectors, idf_weights


def term_weights(vocab: int) -> np.ndarray:
    weights: np.ndarray = 1.0 / np.arange(1, vocab + 1) ** 0.8
    normalized: np.ndarray = weights / weights.sum()
    return normalized


def random_vectors(
    rng: np.random.Generator, count: int, nnz: int, vocab: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    weights = term_weights(vocab)
    vectors = []
    for _ in range(count):
        indices = np.unique(rng.choice(vocab, nnz, p=weights)).astype(np.uint32)
        vectors.append((indices, rng.random(len(indices)).astype(np.float32)))
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--nnz", type=int, default=100)
    parser.add_argument("--vocab", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = random_vectors(rng, args.points, args.nnz, args.vocab)
    nnz = sum(len(i) for i, _ in vectors)
    print(f"{args.points} points, {nnz / args.points:.1f} nnz each, vocabulary {args.vocab}")

    space = SparseVectors()
    started = time.perf_counter()
    for start in range(0, args.points, args.batch):
        space.upsert(list(range(start, start + args.batch)), vectors[start : start + args.batch])
    build = time.perf_counter() - started
    print(
        f"build ({args.batch}-point upserts): {build:.2f} s, {len(space._chunks)} chunks, "
        f"{space.nbytes() / 2**20:.0f} MiB"
    )

    uniform = [(np.sort(rng.choice(args.vocab, 10, replace=False)), np.ones(10)) for _ in range(args.queries)]
    # terms drawn like the documents' own (common ones often): long postings, many candidates
    like_text = [
        (np.unique(rng.choice(args.vocab, 10, p=term_weights(args.vocab))), None) for _ in range(args.queries)
    ]
    like_text_queries = [(indices, np.ones(len(indices))) for indices, _ in like_text]
    allowed = set(range(0, args.points, 10))

    def timed(label: str, **options: object) -> None:
        for name, queries in (("uniform terms", uniform), ("zipf terms", like_text_queries)):
            timed_set(f"{label}, {name}", queries, **options)

    def timed_set(label: str, queries: list[tuple[np.ndarray, np.ndarray]], **options: object) -> None:
        started = time.perf_counter()
        for query in queries:
            weights = None
            if options.get("idf"):
                frequencies = space.document_frequencies(query[0].tolist())
                weights = dict(zip(query[0].tolist(), idf_weights(len(space), frequencies), strict=True))
            space.search(query, 10, allowed=options.get("allowed"), idf=weights)  # type: ignore[arg-type]
        elapsed = (time.perf_counter() - started) / len(queries)
        print(f"query top-10, 10 terms, {label}: {elapsed * 1e3:.2f} ms")

    timed("plain")
    timed("idf (stats + search)", idf=True)
    timed("allowed = 10% of points", allowed=allowed)

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        space.save(Path(folder) / "saved")
        print(f"save: {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        space = SparseVectors.load(Path(folder) / "saved")
        print(f"load (mmap): {time.perf_counter() - started:.2f} s")
        timed("after load (mapped)")


if __name__ == "__main__":
    main()
