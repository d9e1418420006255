"""SparseVectors: validation, exact search semantics (checked against qdrant-client's local
mode), IDF statistics, digests, and memory-mapped save/load with writes layered on top."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from vecstore.cluster.errors import InvalidPointId, InvalidRequest, InvalidVector
from vecstore.cluster.ids import PointId
from vecstore.shard.sparse import SparseVectors, idf_weights, validate_sparse

UUID_A = "00000000-0000-0000-0000-00000000000a"


def space_of(points: dict[PointId, tuple[list[int], list[float]]]) -> SparseVectors:
    space = SparseVectors()
    space.upsert(list(points), list(points.values()))
    return space


@pytest.mark.parametrize(
    ("indices", "values", "message"),
    [
        ([1, 2], [1.0], "2 indices and 1 values"),
        ([1, 1], [1.0, 2.0], "repeats index 1"),
        ([-1], [1.0], "outside 0..4294967295"),
        ([2**32], [1.0], "outside 0..4294967295"),
        ([1], [float("nan")], "NaN"),
        ([1], [float("inf")], "NaN, infinite"),
        ([1], [1e39], "beyond float32"),
        ([1.5], [1.0], "integers"),
        ([[1]], [[1.0]], "flat"),
        (["a"], [1.0], "integers"),
        ([1], ["x"], "numbers"),
    ],
)
def test_bad_vectors_are_refused_with_a_clear_message(indices: Any, values: Any, message: str) -> None:
    space = SparseVectors()
    with pytest.raises(InvalidVector, match=message) as raised:
        space.upsert([1], [(indices, values)])
    assert raised.value.http_status == 400
    assert "point 1" in raised.value.message
    assert len(space) == 0


def test_a_bad_vector_in_a_batch_changes_nothing() -> None:
    space = space_of({1: ([1], [1.0])})
    before = space.digest()
    with pytest.raises(InvalidVector):
        space.upsert([1, 2], [([2], [5.0]), ([3, 3], [1.0, 1.0])])
    assert len(space) == 1
    assert space.digest() == before
    got = space.get(1)
    assert got is not None
    assert got[0].tolist() == [1]


def test_bad_ids_and_mismatched_batches_are_refused() -> None:
    space = SparseVectors()
    with pytest.raises(InvalidPointId):
        space.upsert([-1], [([1], [1.0])])
    with pytest.raises(InvalidRequest, match="2 point ids but 1 sparse vectors"):
        space.upsert([1, 2], [([1], [1.0])])


def test_vectors_are_sorted_by_index_on_the_way_in() -> None:
    space = space_of({7: ([9, 2, 5], [0.9, 0.2, 0.5])})
    got = space.get(7)
    assert got is not None
    assert got[0].dtype == np.uint32
    assert got[1].dtype == np.float32
    assert got[0].tolist() == [2, 5, 9]
    assert got[1].tolist() == pytest.approx([0.2, 0.5, 0.9])
    indices, values = validate_sparse([3, 1], [1.0, 2.0])
    assert indices.tolist() == [1, 3]
    assert values.tolist() == [2.0, 1.0]


def test_upsert_replaces_and_a_later_repeat_in_one_batch_wins() -> None:
    space = space_of({1: ([1], [1.0])})
    space.upsert([1, 2, 1], [([2], [2.0]), ([3], [3.0]), ([4], [4.0])])
    assert len(space) == 2
    got = space.get(1)
    assert got is not None
    assert got[0].tolist() == [4]
    assert space.search(([1], [1.0]), 10) == []
    assert space.search(([4], [1.0]), 10) == [(1, 4.0)]


def test_delete_get_contains_ids() -> None:
    space = space_of({3: ([1], [1.0]), 1: ([1], [2.0]), UUID_A: ([1], [3.0])})
    assert 3 in space
    assert space.ids() == [1, 3, UUID_A]
    assert space.delete([3, 99]) == 1
    assert 3 not in space
    assert space.get(3) is None
    assert space.ids() == [1, UUID_A]
    assert [point_id for point_id, _ in space.search(([1], [1.0]), 10)] == [UUID_A, 1]


def test_no_overlap_is_no_match_but_a_zero_score_overlap_is_one() -> None:
    space = space_of(
        {1: ([1, 2], [1.0, 1.0]), 2: ([2], [0.0]), 3: ([3], [5.0]), 4: ([], []), 5: ([2], [-1.0])}
    )
    assert space.search(([2], [1.0]), 10) == [(1, 1.0), (2, 0.0), (5, -1.0)]
    assert space.search(([], []), 10) == []
    assert space.search(([8], [1.0]), 10) == []
    assert len(space) == 5


def test_ties_go_to_the_smaller_id_integers_before_uuids() -> None:
    ids: list[PointId] = [UUID_A, 30, 2, 10]
    space = space_of({point_id: ([1], [1.0]) for point_id in ids})
    assert space.search(([1], [2.0]), 10) == [(2, 2.0), (10, 2.0), (30, 2.0), (UUID_A, 2.0)]
    assert space.search(([1], [2.0]), 2) == [(2, 2.0), (10, 2.0)]


def test_limit_and_allowed() -> None:
    space = space_of({i: ([1, i + 10], [float(i), 1.0]) for i in range(20)})
    assert [p for p, _ in space.search(([1], [1.0]), 3)] == [19, 18, 17]
    assert space.search(([1], [1.0]), 0) == []
    assert [p for p, _ in space.search(([1], [1.0]), 3, allowed={2, 5, 99})] == [5, 2]
    assert space.search(([1], [1.0]), 3, allowed=set()) == []
    with pytest.raises(InvalidRequest, match="limit is -1"):
        space.search(([1], [1.0]), -1)
    with pytest.raises(InvalidVector, match="query sparse vector repeats index 1"):
        space.search(([1, 1], [1.0, 1.0]), 3)


def test_scores_sum_over_shared_indices_as_float32() -> None:
    space = space_of({1: ([1, 2, 3], [0.5, 0.25, 2.0])})
    [(point_id, score)] = space.search(([3, 1, 9], [1.5, 2.0, 7.0]), 5)
    assert point_id == 1
    assert score == float(np.float32(0.5 * 2.0 + 2.0 * 1.5))


def test_document_frequencies_and_idf_weights() -> None:
    space = space_of({1: ([1, 2], [1.0, 1.0]), 2: ([2], [1.0]), 3: ([], []), 4: ([2, 5], [1.0, 1.0])})
    space.delete([4])
    assert len(space) == 3
    assert space.document_frequencies([2, 1, 5, 77]) == [2, 1, 0, 0]
    weights = idf_weights(3, [2, 1, 0])
    assert weights == [math.log((3 - n + 0.5) / (n + 0.5) + 1) for n in (2, 1, 0)]
    found = space.search(([1, 2], [1.0, 1.0]), 5, idf={1: weights[1], 2: weights[0]})
    assert found[0][0] == 1
    assert found[0][1] == pytest.approx(weights[0] + weights[1], rel=1e-6)
    with pytest.raises(InvalidRequest, match="no idf weight for query index 2"):
        space.search(([1, 2], [1.0, 1.0]), 5, idf={1: 1.0})


def test_digest_depends_on_content_only() -> None:
    first = space_of({1: ([1], [1.0]), 2: ([2], [2.0]), UUID_A: ([3, 4], [1.0, 2.0])})
    second = SparseVectors()
    second.upsert([UUID_A, 9], [([3, 4], [1.0, 2.0]), ([5], [5.0])])
    second.upsert([2, 1], [([2], [7.0]), ([1], [1.0])])
    second.upsert([2], [([2], [2.0])])
    second.delete([9])
    assert second.digest() == first.digest()
    assert 0 <= first.digest() < 2**64
    changed = space_of({1: ([1], [1.0]), 2: ([2], [2.5]), UUID_A: ([3, 4], [1.0, 2.0])})
    assert changed.digest() != first.digest()
    assert SparseVectors().digest() == 0
    emptied = space_of({1: ([1], [1.0])})
    emptied.delete([1])
    assert emptied.digest() == 0


def test_many_small_upserts_keep_few_chunks_and_exact_answers() -> None:
    space = SparseVectors()
    rng = np.random.default_rng(3)
    for i in range(300):
        space.upsert([i], [(rng.choice(50, 5, replace=False).tolist(), rng.random(5).tolist())])
    assert len(space._chunks) <= 12
    everything = {i: space.get(i) for i in range(300)}
    query = ([3, 7, 11], [1.0, 0.5, 2.0])
    expected = []
    for point_id, stored in everything.items():
        assert stored is not None
        shared = {int(i): float(v) for i, v in zip(*stored, strict=True)}
        hits = [(w, shared[i]) for i, w in zip(*query, strict=True) if i in shared]
        if hits:
            expected.append((point_id, float(np.float32(sum(w * v for w, v in hits)))))
    expected.sort(key=lambda hit: (-hit[1], hit[0]))
    assert space.search(query, 25) == expected[:25]


def file_hashes(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())}


def test_save_and_load_memory_mapped_then_write_on_top(tmp_path: Path) -> None:
    space = space_of({i: ([i % 7, 100 + i], [1.0 + i, 0.5]) for i in range(50)})
    space.upsert([UUID_A], [([3], [9.0])])
    space.delete([4])
    query = ([3, 100, 110], [1.0, 1.0, 2.0])
    expected = space.search(query, 10)
    space.save(tmp_path / "saved")
    saved = file_hashes(tmp_path / "saved")
    assert not [p for p in tmp_path.iterdir() if p.name != "saved"]  # the temporary folder is gone

    loaded = SparseVectors.load(tmp_path / "saved")
    assert isinstance(loaded._chunks[0].indices, np.memmap)
    assert loaded.search(query, 10) == expected
    assert loaded.digest() == space.digest()
    assert loaded.ids() == space.ids()
    assert loaded.document_frequencies([3, 110]) == space.document_frequencies([3, 110])

    loaded.upsert([3, 4000], [([110], [5.0]), ([3], [1.0])])
    loaded.delete([UUID_A, 10])
    space.upsert([3, 4000], [([110], [5.0]), ([3], [1.0])])
    space.delete([UUID_A, 10])
    assert loaded.search(query, 60) == space.search(query, 60)
    assert loaded.digest() == space.digest()
    assert file_hashes(tmp_path / "saved") == saved  # the mapped files were never written

    loaded.save(tmp_path / "again")
    reloaded = SparseVectors.load(tmp_path / "again")
    assert reloaded.search(query, 60) == space.search(query, 60)
    assert reloaded.digest() == space.digest()
    assert reloaded.nbytes() > 0


def test_save_is_canonical_and_refuses_an_existing_folder(tmp_path: Path) -> None:
    first = space_of({2: ([1], [1.0]), 1: ([2], [2.0])})
    second = SparseVectors()
    second.upsert([1], [([2], [2.0])])
    second.upsert([2, 3], [([1], [1.0]), ([5], [5.0])])
    second.delete([3])
    first.save(tmp_path / "a")
    second.save(tmp_path / "b")
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    with pytest.raises(FileExistsError):
        first.save(tmp_path / "a")


def test_an_empty_space_saves_and_loads(tmp_path: Path) -> None:
    SparseVectors().save(tmp_path / "empty")
    loaded = SparseVectors.load(tmp_path / "empty")
    assert len(loaded) == 0
    assert loaded.search(([1], [1.0]), 5) == []
    loaded.upsert([1], [([1], [1.0])])
    assert loaded.search(([1], [1.0]), 5) == [(1, 1.0)]


def local_mode(points: dict[PointId, tuple[list[int], list[float]]], idf: bool) -> QdrantClient:
    client = QdrantClient(":memory:")
    modifier = models.Modifier.IDF if idf else None
    client.create_collection(
        "c", vectors_config={}, sparse_vectors_config={"s": models.SparseVectorParams(modifier=modifier)}
    )
    client.upsert(
        "c",
        [
            models.PointStruct(id=p, vector={"s": models.SparseVector(indices=i, values=v)})
            for p, (i, v) in points.items()
        ],
    )
    return client


@pytest.mark.parametrize("idf", [False, True])
def test_agrees_with_qdrant_local_mode(idf: bool) -> None:
    rng = np.random.default_rng(11)
    points: dict[PointId, tuple[list[int], list[float]]] = {}
    for point_id in range(200):
        count = int(rng.integers(0, 8))
        indices = rng.choice(40, count, replace=False).tolist()
        # values on a 1/8 grid: float32-exact, so both sides multiply the same numbers
        values = (rng.integers(-16, 17, count) / 8).tolist()
        points[point_id] = (indices, values)
    space = space_of(points)
    client = local_mode(points, idf)
    for _ in range(30):
        count = int(rng.integers(1, 6))
        q_indices = rng.choice(45, count, replace=False).tolist()
        q_values = (rng.integers(1, 9, count) / 4).tolist()
        weights = None
        if idf:
            frequencies = space.document_frequencies(q_indices)
            weights = dict(zip(q_indices, idf_weights(len(space), frequencies), strict=True))
        ours = space.search((q_indices, q_values), 10_000, idf=weights)
        theirs = client.query_points(
            "c", query=models.SparseVector(indices=q_indices, values=q_values), using="s", limit=10_000
        ).points
        # local mode's tie order is numpy's unstable argsort; compare ids per score
        assert sorted((round(s, 4), p) for p, s in ours) == sorted((round(h.score, 4), h.id) for h in theirs)
        assert [s for _, s in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)
