"""Qdrant compatibility fixes (issue 15), driven by the official qdrant-client (REST mode)
against a real 2 x 3 cluster, with qdrant-client's local mode (`QdrantClient(":memory:")`)
as the oracle: Cosine vectors answered normalised, the tuning settings Qdrant reports
accepted on create and reported on get, and `QdrantClient.migrate()` both ways.

One cluster serves the whole module; each test uses its own collections.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import qdrant_test_cluster
from vecstore.launcher.local_cluster import LocalCluster

DIM = 8
MAJORITY = models.ReadConsistencyType.MAJORITY  # read-your-writes (docs/qdrant.md)
COSINE = models.Distance.COSINE


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 2 x 3 cluster and its router (no API keys), for the whole module."""
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("qdrant-fixes") / "cluster")


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[QdrantClient]:
    with closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as qdrant:
        yield qdrant


@pytest.fixture
def local() -> Iterator[QdrantClient]:
    """qdrant-client's local mode: the oracle."""
    with closing(QdrantClient(":memory:")) as oracle:
        yield oracle


def error_of(raised: pytest.ExceptionInfo[UnexpectedResponse]) -> tuple[int, str]:
    body = raised.value.structured()
    return int(raised.value.status_code or 0), str(body["status"]["error"])


def settled(client: QdrantClient, name: str, expected: int) -> None:
    """Wait until reads from any replica (what migrate's scroll and count use) see `expected`
    points twenty times in a row (0.4 s at least): by then every replica has applied the last
    write (followers learn of a commit with the leader's next append, every 0.1 s)."""
    deadline = time.monotonic() + 30
    streak = 0
    while streak < 20:
        assert time.monotonic() < deadline, f"{name}: replicas did not reach {expected} points"
        streak = streak + 1 if client.count(name).count == expected else 0
        time.sleep(0.02)


def everything(client: QdrantClient, name: str, **consistency: Any) -> dict[Any, models.Record]:
    """Every point of a collection by id, with payload and vector (scrolled in pages of 50)."""
    found: dict[Any, models.Record] = {}
    offset: Any = None
    while True:
        page, offset = client.scroll(
            name, limit=50, offset=offset, with_payload=True, with_vectors=True, **consistency
        )
        found.update({point.id: point for point in page})
        if offset is None:
            return found


def close(got: dict[Any, Any], expected: dict[Any, list[float]]) -> bool:
    """Same ids, and each vector equal to float32 tolerance."""
    return set(got) == set(expected) and all(
        got[key] is not None and np.allclose(got[key], vector, rtol=1e-6, atol=1e-7)
        for key, vector in expected.items()
    )


def assert_same_points(got: dict[Any, models.Record], expected: dict[Any, models.Record]) -> None:
    """Same ids, payloads and vectors (to float32 tolerance)."""
    assert set(map(str, got)) == set(map(str, expected))
    for point_id, point in expected.items():
        other = got[point_id]
        assert other.payload == point.payload, point_id
        assert other.vector is not None and point.vector is not None, point_id
        assert np.allclose(other.vector, point.vector, rtol=1e-5, atol=1e-6), point_id  # type: ignore[arg-type]


def sample_points(count: int, seed: int) -> list[models.PointStruct]:
    """Integer and UUID ids, unnormalised vectors (one of them zero), varied payloads."""
    rng = np.random.default_rng(seed)
    data = rng.normal(scale=3.0, size=(count, DIM)).astype(np.float32)
    data[5] = 0.0
    points = []
    for i in range(count):
        point_id: models.ExtendedPointId = i * 3 if i % 4 else str(uuid.UUID(int=seed * 10_000 + i))
        payload: dict[str, Any] = {"n": i, "kind": ["a", "b", "c"][i % 3], "meta": {"x": i / 2, "tags": [i]}}
        if i % 7 == 0:
            payload = {}
        points.append(models.PointStruct(id=point_id, vector=data[i].tolist(), payload=payload))
    return points


# ---- 1. Cosine vectors are answered normalised -----------------------------------------


def test_cosine_vectors_are_answered_normalised(
    client: QdrantClient, local: QdrantClient, cluster: LocalCluster
) -> None:
    points = [
        models.PointStruct(id=1, vector=[3.0, 4.0], payload={"p": 1}),
        models.PointStruct(id=2, vector=[0.0, 0.0], payload={"p": 2}),
        models.PointStruct(id=3, vector=[-0.5, 0.0], payload={"p": 3}),
    ]
    for qdrant in (client, local):
        for name, distance in (("unit-cos", COSINE), ("unit-dot", models.Distance.DOT)):
            qdrant.create_collection(name, vectors_config=models.VectorParams(size=2, distance=distance))
            qdrant.upsert(name, points)
    expected = {1: [0.6, 0.8], 2: [0.0, 0.0], 3: [-1.0, 0.0]}
    strong: dict[str, Any] = {"consistency": MAJORITY}

    def vectors_of(found: list[Any]) -> dict[Any, Any]:
        return {point.id: point.vector for point in found}

    for qdrant, read in ((client, strong), (local, {})):
        retrieved = qdrant.retrieve("unit-cos", [1, 2, 3], with_vectors=True, **read)
        assert close(vectors_of(retrieved), expected), vectors_of(retrieved)
        scrolled, _ = qdrant.scroll("unit-cos", limit=10, with_vectors=True, **read)
        assert close(vectors_of(scrolled), expected), vectors_of(scrolled)
        hits = qdrant.query_points("unit-cos", query=[1.0, 0.0], limit=3, with_vectors=True, **read).points
        assert close(vectors_of(hits), expected), vectors_of(hits)
        assert [hit.id for hit in hits] == [1, 2, 3]
        batch = qdrant.query_batch_points(
            "unit-cos", [models.QueryRequest(query=[0.0, 1.0], limit=3, with_vector=True)], **read
        )
        assert close(vectors_of(batch[0].points), expected)
        by_id = qdrant.query_points("unit-cos", query=1, limit=2, with_vectors=True, **read).points
        assert close(vectors_of(by_id), {2: [0.0, 0.0], 3: [-1.0, 0.0]}), vectors_of(by_id)
        # Dot collections keep the vectors as sent, in Qdrant as here
        dot = qdrant.retrieve("unit-dot", [1, 3], with_vectors=True, **read)
        assert close(vectors_of(dot), {1: [3.0, 4.0], 3: [-0.5, 0.0]}), vectors_of(dot)

    single = client.http.points_api.get_point("unit-cos", 1, consistency=MAJORITY).result
    assert single is not None and single.vector == pytest.approx([0.6, 0.8])
    # /points/search and its batch (dropped from qdrant-client 1.20), as an older client calls them
    url = f"{cluster.router_url}/collections/unit-cos/points/search"
    params = {"consistency": "majority"}
    body = {"vector": [1.0, 0.0], "limit": 3, "with_vector": True}
    answer = httpx.post(url, json=body, params=params).json()["result"]
    assert close({hit["id"]: hit["vector"] for hit in answer}, expected), answer
    batch_raw = httpx.post(f"{url}/batch", json={"searches": [body]}, params=params).json()["result"]
    assert close({hit["id"]: hit["vector"] for hit in batch_raw[0]}, expected), batch_raw
    # the native API keeps answering what was stored
    native = httpx.post(
        f"{cluster.router_url}/v1/collections/unit-cos/points/get",
        json={"ids": [1, 2], "with_vector": True, "consistency": "strong"},
    ).json()["points"]
    assert {point["id"]: point["vector"] for point in native} == {1: [3.0, 4.0], 2: [0.0, 0.0]}


# ---- 2 and 3. Tuning settings: reported on get, accepted on create ---------------------


def test_collection_info_reports_wal_config(client: QdrantClient) -> None:
    client.create_collection("wal", vectors_config=models.VectorParams(size=DIM, distance=COSINE))
    config = client.get_collection("wal").config
    assert config.wal_config == models.WalConfig(
        wal_capacity_mb=32, wal_segments_ahead=0, wal_retain_closed=1
    )
    assert config.hnsw_config.full_scan_threshold == 10_000
    assert config.optimizer_config.default_segment_number == 0


def test_create_accepts_tuning_settings_and_refuses_bad_values(
    client: QdrantClient, cluster: LocalCluster
) -> None:
    assert client.create_collection(
        "tuned",
        vectors_config=models.VectorParams(
            size=DIM, distance=COSINE, hnsw_config=models.HnswConfigDiff(full_scan_threshold=20)
        ),
        hnsw_config=models.HnswConfigDiff(
            m=12, ef_construct=80, full_scan_threshold=5000, max_indexing_threads=2
        ),
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=0,
            deleted_threshold=0.3,
            max_optimization_threads=models.MaxOptimizationThreadsSetting.AUTO,
        ),
        wal_config=models.WalConfigDiff(wal_capacity_mb=64, wal_segments_ahead=1),
    )
    info = client.get_collection("tuned")
    assert (info.config.hnsw_config.m, info.config.hnsw_config.ef_construct) == (12, 80)
    # ignored, so the reported values are the neutral ones (docs/qdrant.md)
    assert info.config.hnsw_config.full_scan_threshold == 10_000
    assert info.config.wal_config is not None and info.config.wal_config.wal_capacity_mb == 32
    client.upsert("tuned", [models.PointStruct(id=1, vector=[1.0] * DIM)])
    assert [p.id for p in client.retrieve("tuned", [1], consistency=MAJORITY)] == [1]

    vectors = {"size": DIM, "distance": "Cosine"}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"optimizers_config": {"deleted_threshold": 1.5}}, "optimizers_config.deleted_threshold"),
        ({"optimizers_config": {"indexing_threshold": -1}}, "optimizers_config.indexing_threshold"),
        ({"optimizers_config": {"surprise": 1}}, "unknown optimizers_config field(s) ['surprise']"),
        ({"wal_config": {"wal_capacity_mb": 0}}, "wal_config.wal_capacity_mb"),
        ({"wal_config": "big"}, "wal_config must be an object"),
        ({"hnsw_config": {"full_scan_threshold": "all"}}, "hnsw_config.full_scan_threshold"),
    ]
    for extra, message in refused:
        answer = httpx.put(f"{cluster.router_url}/collections/refused", json={"vectors": vectors, **extra})
        assert answer.status_code == 400, (extra, answer.text)
        assert message in answer.json()["status"]["error"], (extra, answer.text)
    with pytest.raises(UnexpectedResponse) as raised:  # still not something VecStore can do
        client.create_collection(
            "refused",
            vectors_config=models.VectorParams(size=DIM, distance=COSINE),
            hnsw_config=models.HnswConfigDiff(on_disk=True),
        )
    assert error_of(raised)[0] == 501
    assert not client.collection_exists("refused")


# ---- 4. QdrantClient.migrate() both ways ------------------------------------------------


def test_migrate_from_local_mode_into_vecstore(client: QdrantClient, local: QdrantClient) -> None:
    """migrate() ends by comparing count() on both sides; a plain client's count() reads any
    replica, which has applied every batch this router acknowledged (read-your-writes; before
    it, about one run in 20 failed on a follower that had not applied the last batch)."""
    collections = {
        "mig-in-cos": COSINE,
        "mig-in-dot": models.Distance.DOT,
        "mig-in-l2": models.Distance.EUCLID,
    }
    for seed, (name, distance) in enumerate(collections.items()):
        local.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=distance))
        local.upsert(name, sample_points(230, seed=seed))  # several scroll pages of 100

    local.migrate(client, batch_size=100)

    query = np.random.default_rng(9).normal(size=DIM).tolist()
    for name, distance in collections.items():
        info = client.get_collection(name)
        assert isinstance(info.config.params.vectors, models.VectorParams)
        assert (info.config.params.vectors.size, info.config.params.vectors.distance) == (DIM, distance)
        source = local.get_collection(name).config.hnsw_config  # local mode reports its defaults
        assert (info.config.hnsw_config.m, info.config.hnsw_config.ef_construct) == (
            source.m,
            source.ef_construct,
        )
        assert_same_points(everything(client, name, consistency=MAJORITY), everything(local, name))
        ours = client.query_points(
            name, query=query, limit=10, search_params=models.SearchParams(exact=True), consistency=MAJORITY
        ).points
        theirs = local.query_points(name, query=query, limit=10).points
        assert [hit.id for hit in ours] == [hit.id for hit in theirs]
        assert np.allclose([hit.score for hit in ours], [hit.score for hit in theirs], atol=1e-4)


def test_migrate_from_vecstore_into_local_mode(client: QdrantClient, local: QdrantClient) -> None:
    oracle = QdrantClient(":memory:")  # the same points written straight into local mode
    collections = {
        "mig-out-cos": COSINE,
        "mig-out-dot": models.Distance.DOT,
        "mig-out-l2": models.Distance.EUCLID,
    }
    with closing(oracle):
        for seed, (name, distance) in enumerate(collections.items()):
            points = sample_points(210, seed=seed + 10)
            for qdrant in (client, oracle):
                qdrant.create_collection(
                    name, vectors_config=models.VectorParams(size=DIM, distance=distance)
                )
                qdrant.upsert(name, points)
            settled(client, name, len(points))

        client.migrate(local, collection_names=list(collections), batch_size=100)

        assert {c.name for c in local.get_collections().collections} == set(collections)
        for name, distance in collections.items():
            params = local.get_collection(name).config.params.vectors
            assert isinstance(params, models.VectorParams)
            assert (params.size, params.distance) == (DIM, distance)
            assert_same_points(everything(local, name), everything(oracle, name))
