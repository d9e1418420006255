"""HNSW recall of Shard.search on clustered synthetic data, against numpy brute force.

The data is laid out the way a live shard holds it: sealed segments, a memtable whose
graph covers part of its rows, an unindexed tail scored exactly, and some tombstones.
Recall must not depend on that layout, on the storage dtype, or on a filter.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from vecstore.cluster.commands import CreateCollection, DeletePoints, Selector, Upsert
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema, Metric, StorageDtype
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

POINTS = 3_000
DIM = 32
CLUSTERS = 20
QUERIES = 100
K = 10
BATCH = 500
SEAL_THRESHOLD = 1_000
INDEX_CHUNK = 256
MIN_RECALL = 0.9
GROUPS = 10
FILTER = {"must": [{"key": "group", "match": {"any": [0, 1, 2]}}]}  # about 30% of the points

FloatMatrix = npt.NDArray[np.float32]
IdMatrix = npt.NDArray[np.int64]


@functools.cache
def dataset() -> tuple[FloatMatrix, FloatMatrix]:
    """Points and queries drawn around the same gaussian cluster centres (fixed seed)."""
    rng = np.random.default_rng(20261125)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    points = centres[rng.integers(0, CLUSTERS, POINTS)] + rng.normal(scale=0.35, size=(POINTS, DIM))
    queries = centres[rng.integers(0, CLUSTERS, QUERIES)] + rng.normal(scale=0.35, size=(QUERIES, DIM))
    return points.astype(np.float32), queries.astype(np.float32)


def deleted_ids() -> set[int]:
    """Every 25th point is deleted after loading (tombstones in segments and memtable)."""
    return set(range(0, POINTS, 25))


def brute_force(metric: Metric, points: FloatMatrix, queries: FloatMatrix, ids: list[int]) -> IdMatrix:
    """The true top-K ids among `ids`, in float64."""
    chosen = points[ids].astype(np.float64)
    q = queries.astype(np.float64)
    if metric is Metric.L2:
        distances = (q * q).sum(1)[:, None] + (chosen * chosen).sum(1)[None, :] - 2 * q @ chosen.T
    else:
        chosen /= np.linalg.norm(chosen, axis=1, keepdims=True)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        distances = -(q @ chosen.T)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :K]
    result: IdMatrix = np.asarray(ids, dtype=np.int64)[nearest]
    return result


def recall(found: list[list[int]], truth: IdMatrix) -> float:
    """Mean fraction of the true top-K that a search returned."""
    hits = [len(set(row) & set(expected.tolist())) for row, expected in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / K


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vecstore-recall-") as directory:
        yield Path(directory)


def load_shard(data_dir: Path, metric: Metric, dtype: StorageDtype, exact_limit: int = 4_000) -> Shard:
    """A shard holding the dataset as 2 sealed segments plus a 1,000-row memtable of which
    756 rows are in its graph and 244 are an unindexed tail; every 25th point deleted."""
    settings = ShardSettings(
        data_dir=data_dir,
        seal_threshold=SEAL_THRESHOLD,
        index_chunk=INDEX_CHUNK,
        exact_limit=exact_limit,
        gpu=GpuMode.OFF,
    )
    shard = Shard(settings)
    shard.apply(CreateCollection(CollectionSchema("docs", DIM, metric, dtype)))
    points, _ = dataset()
    for start in range(0, POINTS, BATCH):
        ids = list(range(start, start + BATCH))
        payloads = [{"group": i % GROUPS} for i in ids]
        shard.apply(Upsert.build("docs", ids, points[start : start + BATCH], payloads))
        if start + BATCH < POINTS:
            shard.maintain(seal=True, compact=False)  # index everything, seal past the threshold
    shard.collection("docs").index_pending()  # one chunk: leave an unindexed tail
    shard.apply(DeletePoints("docs", Selector.of_ids(sorted(deleted_ids()))))
    stats = shard.status()["collections"]["docs"]
    assert stats["segments"] == 2
    assert stats["memtable_points"] == 1_000
    assert stats["indexing_lag"] == 1_000 - 500 - INDEX_CHUNK
    return shard


def search_ids(shard: Shard, queries: FloatMatrix, filtered: bool) -> list[list[int]]:
    condition = parse_filter(FILTER) if filtered else None
    results = shard.search("docs", queries, K, condition)
    return [[int(hit.id) for hit in hits] for hits in results]


@functools.cache
def measured_recall(metric: Metric, dtype: StorageDtype) -> float:
    """Unfiltered recall@K for one configuration (cached: the i8 test compares with f32)."""
    points, queries = dataset()
    live = [i for i in range(POINTS) if i not in deleted_ids()]
    with tempfile.TemporaryDirectory(prefix="vecstore-recall-") as directory:
        shard = load_shard(Path(directory), metric, dtype)
        try:
            assert shard.explain("docs", K).kind == "hnsw"
            found = search_ids(shard, queries, filtered=False)
        finally:
            shard.close()
    assert all(not set(row) & deleted_ids() for row in found)
    return recall(found, brute_force(metric, points, queries, live))


@pytest.mark.parametrize("dtype", list(StorageDtype))
@pytest.mark.parametrize("metric", [Metric.COSINE, Metric.L2])
def test_hnsw_recall_at_10(metric: Metric, dtype: StorageDtype) -> None:
    value = measured_recall(metric, dtype)
    assert value >= MIN_RECALL, f"recall@{K} {value:.3f} for {metric.value}/{dtype.value}"


@pytest.mark.parametrize("metric", [Metric.COSINE, Metric.L2])
def test_i8_with_rescoring_keeps_f32_recall(metric: Metric) -> None:
    f32 = measured_recall(metric, StorageDtype.F32)
    i8 = measured_recall(metric, StorageDtype.I8)
    assert i8 >= f32 - 0.02, f"i8 recall {i8:.3f} vs f32 {f32:.3f} ({metric.value})"


@pytest.mark.parametrize("dtype", [StorageDtype.F32, StorageDtype.I8])
@pytest.mark.parametrize("metric", [Metric.COSINE, Metric.L2])
def test_filtered_hnsw_recall(data_dir: Path, metric: Metric, dtype: StorageDtype) -> None:
    points, queries = dataset()
    matching = [i for i in range(POINTS) if i % GROUPS < 3 and i not in deleted_ids()]
    shard = load_shard(data_dir, metric, dtype, exact_limit=50)
    try:
        plan = shard.explain("docs", K, parse_filter(FILTER))
        assert plan.kind == "hnsw", plan.reason
        assert 0.25 <= plan.estimated_matches / plan.live_points <= 0.35
        found = search_ids(shard, queries, filtered=True)
    finally:
        shard.close()
    assert all(set(row) <= set(matching) for row in found)
    assert all(len(row) == K for row in found)
    value = recall(found, brute_force(metric, points, queries, matching))
    assert value >= MIN_RECALL, f"filtered recall@{K} {value:.3f} for {metric.value}/{dtype.value}"
