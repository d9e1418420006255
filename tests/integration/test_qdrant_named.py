"""Named vectors through the Qdrant API, driven by the official qdrant-client (REST mode)
against a real 2 x 3 cluster, with qdrant-client's local mode (`QdrantClient(":memory:")`)
as the oracle: the same collection (three named vectors of different sizes and metrics,
points lacking some of them), the same writes, and the same reads on both must agree.

Searches are exact (`params.exact`) so that ids and scores must match to float tolerance.
"""

from __future__ import annotations

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

MAJORITY = models.ReadConsistencyType.MAJORITY  # read-your-writes (docs/qdrant.md)
SIZES = {"text": 12, "image": 20, "code": 16}
CONFIG = {
    "text": models.VectorParams(size=12, distance=models.Distance.COSINE),
    "image": models.VectorParams(size=20, distance=models.Distance.DOT),
    "code": models.VectorParams(size=16, distance=models.Distance.EUCLID),
}
EXACT = models.SearchParams(exact=True)
POINTS = 240


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("qdrant-named") / "cluster")


@pytest.fixture(scope="module")
def pair(cluster: LocalCluster) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    """(the cluster, the oracle), each with the same collection and points."""
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(11)
        points = [_point(i, rng) for i in range(POINTS)]
        for client in (remote, local):
            client.create_collection("named", vectors_config=CONFIG)
            client.upsert("named", points[:150])
            client.upload_points("named", points[150:], batch_size=40)
        yield remote, local


def _point(i: int, rng: np.random.Generator) -> models.PointStruct:
    vector = {
        name: rng.normal(size=size).round(4).tolist() for name, size in SIZES.items() if (i + len(name)) % 4
    }
    payload = {"rand": int(rng.integers(0, 10)), "word": ["alpha", "beta", "gamma"][i % 3]}
    return models.PointStruct(id=i, vector=vector, payload=payload)


def _same_vectors(remote: Any, local: Any) -> None:
    if isinstance(local, dict):
        assert isinstance(remote, dict) and sorted(remote) == sorted(local)
        for name in local:
            np.testing.assert_allclose(remote[name], local[name], rtol=1e-5, atol=1e-6)
    elif local is None:
        assert remote is None
    else:  # one unnamed vector: local mode keeps float64, VecStore float32
        np.testing.assert_allclose(remote, local, rtol=1e-5, atol=1e-6)


def _same_records(remote: list[models.Record], local: list[models.Record]) -> None:
    assert [r.id for r in remote] == [r.id for r in local]
    for mine, theirs in zip(remote, local, strict=True):
        assert mine.payload == theirs.payload
        _same_vectors(mine.vector, theirs.vector)


def _same_hits(remote: list[models.ScoredPoint], local: list[models.ScoredPoint]) -> None:
    assert [h.id for h in remote] == [h.id for h in local]
    np.testing.assert_allclose([h.score for h in remote], [h.score for h in local], rtol=1e-4, atol=1e-4)
    for mine, theirs in zip(remote, local, strict=True):
        assert mine.payload == theirs.payload
        _same_vectors(mine.vector, theirs.vector)


def test_collection_info_reports_each_named_vector(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    mine, theirs = remote.get_collection("named"), local.get_collection("named")
    assert mine.config.params.vectors == theirs.config.params.vectors
    assert remote.count("named").count == local.count("named").count == POINTS


@pytest.mark.parametrize("with_vectors", [True, False, ["image"], ["text", "code"]])
def test_retrieve_and_scroll_agree(pair: tuple[QdrantClient, QdrantClient], with_vectors: Any) -> None:
    remote, local = pair
    ids = [0, 1, 2, 3, 57, 199, 238, 999]
    _same_records(
        remote.retrieve("named", ids, with_vectors=with_vectors, consistency=MAJORITY),
        local.retrieve("named", ids, with_vectors=with_vectors),
    )
    condition = models.Filter(must=[models.FieldCondition(key="rand", range=models.Range(gte=3))])
    page, following = remote.scroll("named", condition, limit=25, offset=10, with_vectors=with_vectors)
    expected, expected_next = local.scroll("named", condition, limit=25, offset=10, with_vectors=with_vectors)
    _same_records(page, expected)
    assert following == expected_next


@pytest.mark.parametrize("using", sorted(SIZES))
def test_exact_searches_of_each_vector_agree(
    cluster: LocalCluster, pair: tuple[QdrantClient, QdrantClient], using: str
) -> None:
    remote, local = pair
    url = cluster.router_url
    rng = np.random.default_rng(len(using))
    condition = models.Filter(must=[models.FieldCondition(key="word", match=models.MatchValue(value="beta"))])
    for query_filter in (None, condition):
        query = rng.normal(size=SIZES[using]).tolist()
        asked: dict[str, Any] = {"query_filter": query_filter, "limit": 12}
        _same_hits(
            remote.query_points(
                "named", query, using=using, with_vectors=True, search_params=EXACT, **asked
            ).points,
            local.query_points("named", query, using=using, with_vectors=True, **asked).points,
        )
        # the older search endpoint, with a NamedVector (qdrant-client 1.20 no longer sends it)
        body: dict[str, Any] = {"vector": {"name": using, "vector": query}, "limit": 12, "with_payload": True}
        body["params"] = {"exact": True}
        if query_filter is not None:
            body["filter"] = query_filter.model_dump(exclude_none=True)
        answer = httpx.post(
            f"{url}/collections/named/points/search?consistency=majority", json=body, timeout=30
        )
        assert answer.status_code == 200, answer.text
        _same_hits(
            [models.ScoredPoint(**hit) for hit in answer.json()["result"]],
            local.query_points("named", query, using=using, **asked).points,
        )
    # by a stored point's id (the point itself left out), of the vector named by `using`
    having = next(i for i in range(POINTS) if (i + len(using)) % 4)
    _same_hits(
        remote.query_points("named", having, using=using, limit=5, search_params=EXACT).points,
        local.query_points("named", having, using=using, limit=5).points,
    )


def test_hnsw_search_finds_the_exact_neighbours(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    rng = np.random.default_rng(3)
    found = expected = 0
    for _ in range(10):
        query = rng.normal(size=SIZES["text"]).tolist()
        mine = {h.id for h in remote.query_points("named", query, using="text", limit=10).points}
        truth = {h.id for h in local.query_points("named", query, using="text", limit=10).points}
        found += len(mine & truth)
        expected += len(truth)
    assert found / expected >= 0.95


def test_vector_updates_and_deletes_agree(cluster: LocalCluster) -> None:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(5)
        points = [_point(i, rng) for i in range(40)]
        for client in (remote, local):
            client.create_collection("edited", vectors_config=CONFIG)
            client.upsert("edited", points)
            client.update_vectors(
                "edited",
                [
                    models.PointVectors(id=1, vector={"text": [1.0] * 12}),
                    models.PointVectors(id=2, vector={"image": [0.5] * 20, "code": [2.0] * 16}),
                ],
            )
            client.delete_vectors("edited", ["code"], models.PointIdsList(points=[3, 4, 2]))
            client.delete_vectors(
                "edited",
                ["image"],
                models.Filter(must=[models.FieldCondition(key="rand", match=models.MatchValue(value=7))]),
            )
            client.set_payload("edited", {"extra": True}, models.PointIdsList(points=[1, 2]))
            client.delete("edited", models.PointIdsList(points=[5]))
        ids = list(range(40))
        _same_records(
            remote.retrieve("edited", ids, with_vectors=True, consistency=MAJORITY),
            local.retrieve("edited", ids, with_vectors=True),
        )
        # the payload change reached the copy a filtered search of each vector reads
        extra = models.Filter(must=[models.FieldCondition(key="extra", match=models.MatchValue(value=True))])
        for using, size in SIZES.items():
            query = [0.1] * size
            asked: dict[str, Any] = {"query_filter": extra, "search_params": EXACT, "consistency": MAJORITY}
            _same_hits(
                remote.query_points("edited", query, using=using, **asked).points,
                local.query_points("edited", query, using=using, query_filter=extra).points,
            )


def test_the_unnamed_vector_is_updated_as_in_local_mode(cluster: LocalCluster) -> None:
    """`update_vectors` with a plain list on a collection of one unnamed vector."""
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(6)
        points = [
            models.PointStruct(id=i, vector=rng.normal(size=8).tolist(), payload={"n": i}) for i in range(30)
        ]
        for client in (remote, local):
            config = models.VectorParams(size=8, distance=models.Distance.COSINE)
            client.create_collection("plain_edited", vectors_config=config)
            client.upsert("plain_edited", points)
            client.update_vectors(
                "plain_edited",
                [models.PointVectors(id=i, vector=[float(i + d) for d in range(8)]) for i in (3, 17)],
            )
        status, message = _error(
            lambda: remote.update_vectors("plain_edited", [models.PointVectors(id=3, vector=[1.0] * 5)])
        )
        assert status == 400 and "expected dim: 8, got 5" in message, message
        status, message = _error(
            lambda: remote.update_vectors("plain_edited", [models.PointVectors(id=999, vector=[1.0] * 8)])
        )
        assert status == 404 and "999" in message, message
        status, message = _error(lambda: remote.delete_vectors("plain_edited", [""], [3]))
        assert status == 501 and "which every point keeps" in message, message
        ids = list(range(30))
        _same_records(
            remote.retrieve("plain_edited", ids, with_vectors=True, consistency=MAJORITY),
            local.retrieve("plain_edited", ids, with_vectors=True),
        )
        asked: dict[str, Any] = {"search_params": EXACT, "consistency": MAJORITY, "limit": 5}
        _same_hits(
            remote.query_points("plain_edited", [1.0] * 8, **asked).points,
            local.query_points("plain_edited", [1.0] * 8, limit=5).points,
        )


def _error(call: Any) -> tuple[int, str]:
    with pytest.raises(UnexpectedResponse) as raised:
        call()
    body = raised.value.structured()
    return int(raised.value.status_code or 0), str(body["status"]["error"])


def test_bad_named_vector_input_is_a_clear_4xx_and_changes_nothing(
    pair: tuple[QdrantClient, QdrantClient],
) -> None:
    remote, _ = pair
    before = remote.count("named").count
    status, message = _error(
        lambda: remote.upsert("named", [models.PointStruct(id=1, vector={"text": [1.0] * 3})])
    )
    assert status == 400 and "expects 12" in message
    status, message = _error(
        lambda: remote.upsert("named", [models.PointStruct(id=1, vector={"audio": [1.0]})])
    )
    assert status == 400 and "no vector named 'audio'" in message
    status, message = _error(lambda: remote.upsert("named", [models.PointStruct(id=1, vector=[1.0] * 12)]))
    assert status == 400 and "named vectors" in message
    status, message = _error(lambda: remote.query_points("named", [1.0] * 12))
    assert status == 400 and "named vectors" in message
    status, message = _error(lambda: remote.query_points("named", [1.0] * 5, using="text"))
    assert status == 400 and "expected dim: 12" in message
    status, message = _error(lambda: remote.retrieve("named", [1], with_vectors=["nope"]))
    assert status == 400 and "no vector named 'nope'" in message
    status, message = _error(
        lambda: remote.update_vectors("named", [models.PointVectors(id=10_000, vector={"text": [1.0] * 12})])
    )
    assert status == 404 and "10000" in message
    assert remote.count("named").count == before
    status, _ = _error(
        lambda: remote.create_collection(
            "bad-name", vectors_config={"a b": models.VectorParams(size=2, distance=models.Distance.DOT)}
        )
    )
    assert status == 400
    assert not remote.collection_exists("bad-name")


def test_lookup_from_another_collection_agrees(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    rng = np.random.default_rng(33)
    example = rng.normal(size=12).round(4).tolist()
    for client in (remote, local):
        if not client.collection_exists("lookups"):
            client.create_collection("lookups", vectors_config={"title": CONFIG["text"]})
            client.upsert("lookups", [models.PointStruct(id=7, vector={"title": example})])
    lookup = models.LookupLocation(collection="lookups", vector="title")
    exact = models.SearchParams(exact=True)
    _same_hits(
        remote.query_points(
            "named", 7, using="text", lookup_from=lookup, limit=5, search_params=exact, consistency=MAJORITY
        ).points,
        local.query_points("named", 7, using="text", lookup_from=lookup, limit=5).points,
    )
    with pytest.raises(UnexpectedResponse) as raised:
        remote.query_points("named", 7, using="text", lookup_from=models.LookupLocation(collection="absent"))
    assert raised.value.status_code == 404 and "Not found: Collection" in str(raised.value.structured())
