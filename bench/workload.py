"""The data every system of the comparison sees: base rows, queries, a filter field, exact truth.

A workload is made once by the parent (synthetic clusters, or the cached WordNet/MiniLM
embeddings), written as .npy files to a scratch folder and memory-mapped by each child,
so every system answers the same queries against the same ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import embeddings
from bench.dataset import FloatMatrix, IntArray, exact_neighbours, make_clustered

K = 10
SELECTIVITIES = (1, 10, 50)
"""Percent of rows a filtered search may return: the filter is `bucket < selectivity`."""
BUCKETS = 100
ARRAYS = ("base", "queries", "truth", "buckets")


@dataclass(frozen=True)
class Workload:
    """One data set with its queries and the exact answers, unfiltered and filtered."""

    name: str
    """Short name used in tables and file names ("synthetic-128d")."""
    description: str
    base: FloatMatrix
    """(rows, dim) float32; row number r is point id r."""
    queries: FloatMatrix
    truth: IntArray
    """(queries, K) exact cosine neighbours among all rows, closest first."""
    buckets: IntArray
    """Per row, an integer in [0, 100): the payload field the filtered searches test."""
    filtered_truth: dict[int, IntArray]
    """Selectivity percent -> exact neighbours among rows with bucket < selectivity."""

    @property
    def rows(self) -> int:
        """Number of base rows."""
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.base.shape[1])

    def save(self, folder: Path) -> None:
        """Write every array as .npy (children memory-map them) and a small manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))
        for selectivity, truth in self.filtered_truth.items():
            np.save(folder / f"truth-{selectivity}.npy", truth)
        manifest = {
            "name": self.name,
            "description": self.description,
            "selectivities": list(self.filtered_truth),
        }
        (folder / "workload.json").write_text(json.dumps(manifest))

    @classmethod
    def load(cls, folder: Path) -> Workload:
        """Read a saved workload back, arrays memory-mapped."""
        manifest = json.loads((folder / "workload.json").read_text())
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        filtered = {int(s): np.load(folder / f"truth-{s}.npy") for s in manifest["selectivities"]}
        return cls(manifest["name"], manifest["description"], filtered_truth=filtered, **arrays)


def with_filters(name: str, description: str, base: FloatMatrix, queries: FloatMatrix, seed: int) -> Workload:
    """Add the bucket field and the exact truth (whole set and each filtered subset)."""
    buckets = np.random.default_rng(seed).integers(0, BUCKETS, size=len(base), dtype=np.int64)
    truth = exact_neighbours(base, queries, K)
    filtered: dict[int, IntArray] = {}
    for selectivity in SELECTIVITIES:
        allowed = np.flatnonzero(buckets < selectivity)
        filtered[selectivity] = allowed[exact_neighbours(base[allowed], queries, K)]
    return Workload(name, description, base, queries, truth, buckets, filtered)


def synthetic(rows: int, queries: int, seed: int = 20_261_125) -> Workload:
    """Gaussian clusters, 128-d (bench.dataset.make_clustered), one cluster per 100 rows."""
    clusters = max(10, min(1_000, rows // 100))
    data = make_clustered(rows, queries, 128, clusters, K, seed)
    description = f"synthetic clustered, {rows:,} x 128, {clusters} gaussian clusters, seed {seed}"
    return with_filters("synthetic-128d", description, data.base, data.queries, seed)


def wordnet(rows: int | None, queries: int, seed: int = 7) -> Workload:
    """The cached MiniLM embeddings of WordNet glosses: `queries` held-out glosses ask, the rest answer."""
    vectors = embeddings.load()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(vectors))
    asked = np.sort(order[:queries])
    kept = np.sort(order[queries:])
    if rows is not None:
        kept = kept[:rows]
    base = np.ascontiguousarray(vectors[kept])
    description = (
        f"WordNet 3.0 glosses embedded with all-MiniLM-L6-v2, {len(base):,} x {base.shape[1]} "
        f"(queries: {queries:,} held-out glosses)"
    )
    return with_filters("wordnet-384d", description, base, np.ascontiguousarray(vectors[asked]), seed)
