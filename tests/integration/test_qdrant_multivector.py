"""Multivectors (ColBERT-style MaxSim) through the official qdrant-client against a real
2 x 3 cluster, with qdrant-client's local mode (`QdrantClient(":memory:")`) as the oracle:
exact MaxSim scores for cosine, dot and euclid multivectors, a dense prefetch re-scored by a
multivector, vector updates and deletes, and clear errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import qdrant_test_cluster
from vecstore.launcher.local_cluster import LocalCluster

MAJORITY = models.ReadConsistencyType.MAJORITY
MAX_SIM = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
CONFIG = {
    "dense": models.VectorParams(size=6, distance=models.Distance.COSINE),
    "colbert": models.VectorParams(size=4, distance=models.Distance.COSINE, multivector_config=MAX_SIM),
    "tokens": models.VectorParams(size=3, distance=models.Distance.DOT, multivector_config=MAX_SIM),
    "places": models.VectorParams(size=2, distance=models.Distance.EUCLID, multivector_config=MAX_SIM),
}
SIZES = {"dense": 6, "colbert": 4, "tokens": 3, "places": 2}
POINTS = 120


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("qdrant-multivector") / "cluster")


def _matrix(rng: np.random.Generator, size: int) -> list[list[float]]:
    rows: list[list[float]] = rng.normal(size=(int(rng.integers(1, 6)), size)).round(3).tolist()
    return rows


def _point(i: int, rng: np.random.Generator) -> models.PointStruct:
    vector: dict[str, Any] = {"dense": rng.normal(size=6).round(3).tolist()}
    for name in ("colbert", "tokens", "places"):
        if (i + len(name)) % 4:
            vector[name] = _matrix(rng, SIZES[name])
    return models.PointStruct(id=i, vector=vector, payload={"group": i % 5})


@pytest.fixture(scope="module")
def pair(cluster: LocalCluster) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(8)
        points = [_point(i, rng) for i in range(POINTS)]
        for client in (remote, local):
            client.create_collection("multi", vectors_config=CONFIG)
            client.upsert("multi", points)
        yield remote, local


def _same_vector(mine: Any, theirs: Any) -> None:
    np.testing.assert_allclose(
        np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float), rtol=1e-5, atol=1e-6
    )


def _same_hits(remote: list[models.ScoredPoint], local: list[models.ScoredPoint]) -> None:
    assert [h.id for h in remote] == [h.id for h in local]
    np.testing.assert_allclose([h.score for h in remote], [h.score for h in local], rtol=1e-4, atol=1e-4)
    for mine, theirs in zip(remote, local, strict=True):
        assert mine.payload == theirs.payload
        if isinstance(theirs.vector, dict):
            assert isinstance(mine.vector, dict) and sorted(mine.vector) == sorted(theirs.vector)
            for name, vector in theirs.vector.items():
                _same_vector(mine.vector[name], vector)


def test_collection_info_reports_multivectors(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    assert (
        remote.get_collection("multi").config.params.vectors
        == local.get_collection("multi").config.params.vectors
    )


@pytest.mark.parametrize("using", ["colbert", "tokens", "places"])
def test_max_sim_searches_agree(pair: tuple[QdrantClient, QdrantClient], using: str) -> None:
    remote, local = pair
    rng = np.random.default_rng(len(using))
    condition = models.Filter(must_not=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
    for query_filter in (None, condition):
        query = _matrix(rng, SIZES[using])
        asked: dict[str, Any] = {
            "using": using,
            "limit": 10,
            "query_filter": query_filter,
            "with_vectors": [using],
        }
        _same_hits(
            remote.query_points("multi", query, consistency=MAJORITY, **asked).points,
            local.query_points("multi", query, **asked).points,
        )
    having = next(i for i in range(POINTS) if (i + len(using)) % 4)
    _same_hits(
        remote.query_points("multi", having, using=using, limit=5, consistency=MAJORITY).points,
        local.query_points("multi", having, using=using, limit=5).points,
    )


def test_dense_prefetch_rescored_by_a_multivector(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    rng = np.random.default_rng(2)
    dense, colbert = rng.normal(size=6).tolist(), _matrix(rng, 4)
    exact = models.SearchParams(exact=True)
    _same_hits(
        remote.query_points(
            "multi",
            colbert,
            using="colbert",
            prefetch=models.Prefetch(query=dense, using="dense", limit=40, params=exact),
            limit=8,
            consistency=MAJORITY,
        ).points,
        local.query_points(
            "multi",
            colbert,
            using="colbert",
            prefetch=models.Prefetch(query=dense, using="dense", limit=40),
            limit=8,
        ).points,
    )


def test_retrieve_updates_and_deletes_agree(cluster: LocalCluster) -> None:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(4)
        points = [_point(i, rng) for i in range(20)]
        for client in (remote, local):
            client.create_collection("multi-edits", vectors_config=CONFIG)
            client.upsert("multi-edits", points)
            client.update_vectors(
                "multi-edits",
                [models.PointVectors(id=1, vector={"tokens": [[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]})],
            )
            client.delete_vectors("multi-edits", ["colbert"], models.PointIdsList(points=[2, 3, 5]))
            client.delete("multi-edits", models.PointIdsList(points=[7]))
        mine = remote.retrieve("multi-edits", list(range(20)), with_vectors=True, consistency=MAJORITY)
        theirs = local.retrieve("multi-edits", list(range(20)), with_vectors=True)
        assert [p.id for p in mine] == [p.id for p in theirs]
        for one, other in zip(mine, theirs, strict=True):
            assert isinstance(one.vector, dict) and isinstance(other.vector, dict)
            assert sorted(one.vector) == sorted(other.vector)
            for name, vector in other.vector.items():
                _same_vector(one.vector[name], vector)


def test_bad_multivector_input_is_a_clear_4xx(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, _ = pair
    before = remote.count("multi").count
    cases: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: remote.upsert("multi", [models.PointStruct(id=1, vector={"tokens": [[1.0, 2.0]]})]),
            "expects 3",
        ),
        (
            lambda: remote.upsert("multi", [models.PointStruct(id=1, vector={"tokens": [1.0, 2.0, 3.0]})]),
            "multivector",
        ),
        (
            lambda: remote.upsert("multi", [models.PointStruct(id=1, vector={"dense": [[1.0] * 6]})]),
            "one vector per point",
        ),
        (lambda: remote.query_points("multi", [[1.0, 2.0]], using="tokens"), "expected dim: 3"),
        (lambda: remote.query_points("multi", [1.0, 2.0, 3.0], using="tokens"), "multivector"),
    ]
    for call, expected in cases:
        with pytest.raises(UnexpectedResponse) as raised:
            call()
        message = str(raised.value.structured()["status"]["error"])
        assert raised.value.status_code == 400 and expected in message, message
    assert remote.count("multi").count == before


def test_an_unnamed_multivector_collection_agrees(cluster: LocalCluster) -> None:
    """`vectors: {size, distance, multivector_config}` without a name: points give a plain
    list of lists, queries need no `using`; kept as the named vector "" inside."""
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False, check_compatibility=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(9)
        points = [models.PointStruct(id=i, vector=_matrix(rng, 4), payload={"i": i}) for i in range(40)]
        config = models.VectorParams(size=4, distance=models.Distance.COSINE, multivector_config=MAX_SIM)
        for client in (remote, local):
            client.create_collection("multi-plain", vectors_config=config)
            client.upsert("multi-plain", points)
            client.update_vectors("multi-plain", [models.PointVectors(id=3, vector=[[1.0, 0.0, 0.0, 0.0]])])
        assert (
            remote.get_collection("multi-plain").config.params.vectors
            == local.get_collection("multi-plain").config.params.vectors
        )
        ids = list(range(40))
        mine = remote.retrieve("multi-plain", ids, with_vectors=True, consistency=MAJORITY)
        theirs = local.retrieve("multi-plain", ids, with_vectors=True)
        assert [p.id for p in mine] == [p.id for p in theirs]
        for one, other in zip(mine, theirs, strict=True):
            _same_vector(one.vector, other.vector)
        query = _matrix(np.random.default_rng(1), 4)
        _same_hits(
            remote.query_points(
                "multi-plain", query, limit=10, with_vectors=True, consistency=MAJORITY
            ).points,
            local.query_points("multi-plain", query, limit=10, with_vectors=True).points,
        )
        with pytest.raises(UnexpectedResponse) as raised:
            remote.upsert("multi-plain", [models.PointStruct(id=1, vector=[1.0, 2.0, 3.0, 4.0])])
        assert raised.value.status_code == 400
        assert remote.count("multi-plain").count == 40


def test_a_multivector_for_a_plain_dense_collection_is_a_clear_400(cluster: LocalCluster) -> None:
    with closing(
        QdrantClient(url=cluster.router_url, prefer_grpc=False, check_compatibility=False)
    ) as remote:
        config = models.VectorParams(size=2, distance=models.Distance.DOT)
        remote.create_collection("dense-plain", vectors_config=config)
        remote.upsert("dense-plain", [models.PointStruct(id=1, vector=[1.0, 2.0])])
        cases: list[tuple[Callable[[], Any], str]] = [
            (
                lambda: remote.upsert("dense-plain", [models.PointStruct(id=2, vector=[[1.0, 2.0]])]),
                "multivector_config",
            ),
            (lambda: remote.query_points("dense-plain", [[1.0, 2.0]]), "multivector"),
        ]
        for call, expected in cases:
            with pytest.raises(UnexpectedResponse) as raised:
                call()
            message = str(raised.value.structured()["status"]["error"])
            assert raised.value.status_code == 400 and expected in message, message
        assert remote.count("dense-plain").count == 1
