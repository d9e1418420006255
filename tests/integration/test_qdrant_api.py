"""The official qdrant-client (REST mode), unmodified, against a real 2 x 3 cluster's router.

One cluster serves the whole module (starting one costs seconds); each test uses its own
collections. The router runs with API keys so scopes are exercised too.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import TEST_ENV, _wait_router_ready, join_version_checks
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports

ADMIN_KEY = "qdrant-admin-key-0001"
WRITE_KEY = "qdrant-write-key-0001"
READ_KEY = "qdrant-read-key-00001"
DIM = 8
MAJORITY = models.ReadConsistencyType.MAJORITY  # read-your-writes (docs/qdrant.md)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 2 x 3 cluster and a router with admin, write and read keys, for the whole module."""
    data_dir: Path = tmp_path_factory.mktemp("qdrant") / "cluster"
    started = LocalCluster(data_dir, shards=2, replicas=3, port=free_ports(1)[0])
    for process in started.processes:
        process.env.update(TEST_ENV)
        process.env["VECSTORE_API_KEYS"] = f"{ADMIN_KEY}:admin,{WRITE_KEY}:write,{READ_KEY}:read"
    started.start()
    try:
        asyncio.run(_wait_router_ready(started.router_url))
        yield started
    finally:
        join_version_checks()
        started.stop()


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[QdrantClient]:
    """An admin client, as an application would build it (the key in a header)."""
    qdrant = QdrantClient(url=cluster.router_url, prefer_grpc=False, headers={"api-key": ADMIN_KEY})
    yield qdrant
    qdrant.close()


def vectors(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)


def error_of(raised: pytest.ExceptionInfo[UnexpectedResponse]) -> tuple[int, str]:
    """Status and Qdrant-shaped error message of a failed call."""
    body = json.loads(raised.value.content)
    assert set(body) >= {"status", "time"}, body
    return int(raised.value.status_code or 0), str(body["status"]["error"])


def count(client: QdrantClient, name: str, condition: models.Filter | None = None, exact: bool = True) -> int:
    """Count with read-your-writes: count() has no consistency argument; the REST API it wraps does."""
    request = models.CountRequest(filter=condition, exact=exact)
    answer = client.http.points_api.count_points(name, consistency=MAJORITY, count_request=request).result
    assert answer is not None
    return answer.count


def eventually(read: Callable[[], object], expected: object, seconds: float = 10.0) -> bool:
    """True once `read()` returns `expected` (eventual reads converge), False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if read() == expected:
            return True
        time.sleep(0.05)
    return False


def make_collection(
    client: QdrantClient, name: str, distance: models.Distance = models.Distance.COSINE
) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=distance))


def test_collections_lifecycle(client: QdrantClient, cluster: LocalCluster) -> None:
    version = get_server_version(cluster.router_url, {"api-key": READ_KEY}, None, 5)
    assert is_compatible("1.20.0", version)
    for name, distance in [
        ("cosine", models.Distance.COSINE),
        ("euclid", models.Distance.EUCLID),
        ("dot", models.Distance.DOT),
    ]:
        assert client.create_collection(
            name,
            vectors_config=models.VectorParams(size=DIM, distance=distance),
            hnsw_config=models.HnswConfigDiff(m=12, ef_construct=90),
        )
        info = client.get_collection(name)
        assert isinstance(info.config.params.vectors, models.VectorParams)
        assert info.config.params.vectors.size == DIM
        assert info.config.params.vectors.distance == distance
        assert (info.config.hnsw_config.m, info.config.hnsw_config.ef_construct) == (12, 90)
        assert info.points_count == 0
        assert info.status == models.CollectionStatus.GREEN
        assert info.config.params.shard_number == 2
        assert info.config.params.replication_factor == 3
    per_vector = models.VectorParams(
        size=4, distance=models.Distance.DOT, hnsw_config=models.HnswConfigDiff(m=20)
    )
    assert client.create_collection("per-vector", vectors_config=per_vector, shard_number=2)
    assert client.get_collection("per-vector").config.hnsw_config.m == 20
    names = {c.name for c in client.get_collections().collections}
    assert {"cosine", "euclid", "dot", "per-vector"} <= names
    assert client.collection_exists("cosine")
    assert not client.collection_exists("never-made")

    with pytest.raises(UnexpectedResponse) as raised:
        make_collection(client, "cosine")
    assert error_of(raised) == (409, "Wrong input: Collection `cosine` already exists!")
    with pytest.raises(UnexpectedResponse) as raised:
        client.get_collection("never-made")
    assert error_of(raised) == (404, "Not found: Collection `never-made` doesn't exist!")

    assert client.delete_collection("per-vector")
    assert not client.delete_collection("per-vector")
    assert not client.collection_exists("per-vector")


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (
            {"vectors_config": {"a b": models.VectorParams(size=4, distance=models.Distance.COSINE)}},
            400,
            "vector name 'a b' is invalid",
        ),
        (
            {
                "quantization_config": models.ScalarQuantization(
                    scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)
                )
            },
            501,
            "quantization_config",
        ),
        ({"on_disk_payload": True}, 501, "on_disk_payload"),
        (  # accepted and ignored (test_qdrant_fixes.py), but still validated
            {"optimizers_config": models.OptimizersConfigDiff(deleted_threshold=2.0)},
            400,
            "optimizers_config.deleted_threshold",
        ),
        ({"shard_number": 3}, 400, "shard_number=3"),
        ({"replication_factor": 1}, 400, "replication_factor=1"),
        (
            {"hnsw_config": models.HnswConfigDiff(on_disk=True)},
            501,
            "hnsw_config.on_disk",
        ),
        ({"hnsw_config": models.HnswConfigDiff(m=0)}, 400, "hnsw_config.m"),
    ],
)
def test_unsupported_collection_parameters(
    client: QdrantClient, arguments: dict[str, Any], status: int, message: str
) -> None:
    vectors_config = models.VectorParams(size=4, distance=models.Distance.COSINE)
    with pytest.raises(UnexpectedResponse) as raised:
        client.create_collection("refused", **{"vectors_config": vectors_config, **arguments})
    code, error = error_of(raised)
    assert (code, message in error) == (status, True), error
    assert not client.collection_exists("refused")


def test_unsupported_distance_and_datatype(client: QdrantClient) -> None:
    for params, message in [
        (models.VectorParams(size=4, distance=models.Distance.MANHATTAN), "Manhattan"),
        (
            models.VectorParams(size=4, distance=models.Distance.COSINE, datatype=models.Datatype.UINT8),
            "uint8",
        ),
        (models.VectorParams(size=4, distance=models.Distance.COSINE, on_disk=True), "vectors.on_disk"),
    ]:
        with pytest.raises(UnexpectedResponse) as raised:
            client.create_collection("refused", vectors_config=params)
        assert error_of(raised)[0] == 501
        assert message in error_of(raised)[1]


def test_point_writes_and_reads(client: QdrantClient, cluster: LocalCluster) -> None:
    make_collection(client, "writes")
    data = vectors(30, seed=1)
    assert (
        client.upsert(
            "writes",
            models.Batch(
                ids=list(range(20)),
                vectors=data[:20].tolist(),
                payloads=[
                    {"n": i, "group": "even" if i % 2 == 0 else "odd", "tags": ["a", f"t{i}"]}
                    for i in range(20)
                ],
            ),
        ).status
        == models.UpdateStatus.COMPLETED
    )
    uuids = [str(uuid.UUID(int=i + 1)) for i in range(10)]
    client.upsert(
        "writes",
        [
            models.PointStruct(
                id=uuids[i], vector=data[20 + i].tolist(), payload={"n": 100 + i, "group": "uuid"}
            )
            for i in range(10)
        ],
        wait=False,  # answered after commit anyway
    )
    assert count(client, "writes") == 30
    even = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value="even"))])
    assert count(client, "writes", even) == 10
    # count() itself reads any replica (Qdrant's consistency 1), which may lag a committed write
    assert eventually(lambda: client.count("writes", count_filter=even).count, 10)

    found = client.retrieve("writes", [3, uuids[0], 999], with_vectors=True, consistency=MAJORITY)
    assert [p.id for p in found] == [3, uuids[0]]
    assert found[0].payload == {"n": 3, "group": "odd", "tags": ["a", "t3"]}
    # a Cosine collection answers its vectors normalised, as Qdrant does (test_qdrant_fixes.py)
    assert np.allclose(found[0].vector, data[3] / np.linalg.norm(data[3]))  # type: ignore[arg-type]
    only_n = client.retrieve("writes", [4], with_payload=["n"], consistency=MAJORITY)
    assert only_n[0].payload == {"n": 4}
    assert only_n[0].vector is None
    single = client.http.points_api.get_point("writes", 5, consistency=MAJORITY).result
    assert single is not None and single.payload is not None and single.payload["n"] == 5
    with pytest.raises(UnexpectedResponse) as raised:
        client.http.points_api.get_point("writes", 12345, consistency=MAJORITY)
    assert error_of(raised)[0] == 404

    client.set_payload("writes", {"flag": True}, points=[0, 1])
    client.overwrite_payload("writes", {"only": 1}, points=[2])
    client.delete_payload(
        "writes", ["tags"], points=models.Filter(must=[models.HasIdCondition(has_id=[0, 3])])
    )
    client.clear_payload("writes", points_selector=[4])
    by_id = {p.id: p.payload for p in client.retrieve("writes", [0, 1, 2, 3, 4], consistency=MAJORITY)}
    assert by_id[0] == {"n": 0, "group": "even", "flag": True}
    assert by_id[1] == {"n": 1, "group": "odd", "tags": ["a", "t1"], "flag": True}
    assert by_id[2] == {"only": 1}
    assert by_id[3] == {"n": 3, "group": "odd"}
    assert by_id[4] == {}
    client.set_payload(
        "writes",
        {"marked": "yes"},
        points=models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=10, lt=12))]),
    )
    marked = models.Filter(must=[models.FieldCondition(key="marked", match=models.MatchValue(value="yes"))])
    assert count(client, "writes", marked) == 2

    client.delete("writes", points_selector=models.PointIdsList(points=[0, 1, uuids[0]]))
    assert count(client, "writes") == 27
    client.delete(
        "writes",
        points_selector=models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="group", match=models.MatchValue(value="uuid"))]
            )
        ),
    )
    assert count(client, "writes") == 18
    assert count(client, "writes", exact=False) == 18
    # the same id twice in one batch: the later one wins, as in Qdrant
    client.upsert(
        "writes", models.Batch(ids=[7, 7], vectors=data[:2].tolist(), payloads=[{"v": 1}, {"v": 2}])
    )
    assert client.retrieve("writes", [7], consistency=MAJORITY)[0].payload == {"v": 2}
    # an empty upsert is a no-op
    client.upsert("writes", [])
    with pytest.raises(UnexpectedResponse) as raised:
        client.upsert("writes", [models.PointStruct(id=1, vector=[1.0, 2.0])])
    assert error_of(raised)[0] == 400
    with pytest.raises(UnexpectedResponse) as raised:
        client.upsert("no-such-collection", [models.PointStruct(id=1, vector=[1.0])])
    assert error_of(raised) == (404, "Not found: Collection `no-such-collection` doesn't exist!")


def test_scroll_covers_every_point_once(client: QdrantClient) -> None:
    make_collection(client, "scroll")
    ids: list[models.ExtendedPointId] = [*range(0, 120, 2), *(str(uuid.UUID(int=i)) for i in range(1, 21))]
    client.upsert(
        "scroll",
        models.Batch(
            ids=ids, vectors=vectors(len(ids), seed=2).tolist(), payloads=[{"i": i} for i in range(len(ids))]
        ),
    )
    seen: list[models.ExtendedPointId] = []
    offset: Any = None
    pages = 0
    while True:
        points, offset = client.scroll(
            "scroll", limit=7, offset=offset, with_payload=False, consistency=MAJORITY
        )
        assert all(p.payload is None and p.vector is None for p in points)
        seen += [p.id for p in points]
        pages += 1
        if offset is None:
            break
    assert sorted(map(str, seen)) == sorted(map(str, ids))
    assert len(seen) == len(ids)
    assert pages == -(-len(ids) // 7)
    assert seen[:60] == list(range(0, 120, 2))  # integers first, in order, then UUIDs

    filtered, offset = client.scroll(
        "scroll",
        scroll_filter=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lt=10))]),
        limit=100,
        with_vectors=True,
        consistency=MAJORITY,
    )
    assert offset is None
    assert [p.id for p in filtered] == list(range(0, 20, 2))
    assert all(p.vector is not None and len(p.vector) == DIM for p in filtered)


def test_search_and_query(client: QdrantClient, cluster: LocalCluster) -> None:
    data = vectors(60, seed=3)
    payloads = [
        {"n": i, "kind": ["red", "green", "blue"][i % 3], "meta": {"a": i, "b": -i}} for i in range(60)
    ]
    query = vectors(1, seed=4)[0]
    for name, distance in [("s-cos", "Cosine"), ("s-l2", "Euclid"), ("s-dot", "Dot")]:
        make_collection(client, name, models.Distance(distance))
        client.upsert(name, models.Batch(ids=list(range(60)), vectors=data.tolist(), payloads=payloads))
        exact = _exact_scores(data, query, distance)
        order = np.argsort(-exact if distance != "Euclid" else exact, kind="stable")
        answer = client.query_points(
            name,
            query=query.tolist(),
            limit=5,
            search_params=models.SearchParams(exact=True),
            consistency=MAJORITY,
        )
        assert [p.id for p in answer.points] == order[:5].tolist()
        assert np.allclose([p.score for p in answer.points], exact[order[:5]], atol=1e-4)
        assert answer.points[0].payload == payloads[answer.points[0].id]  # type: ignore[index]
        assert answer.points[0].vector is None

    # filter, with_payload keys, with_vectors, score threshold, offset (cosine)
    red = models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value="red"))])
    hits = client.query_points(
        "s-cos",
        query=query.tolist(),
        query_filter=red,
        limit=4,
        with_payload=["n", "meta.a"],
        with_vectors=True,
        search_params=models.SearchParams(hnsw_ef=128),
        consistency=MAJORITY,
    )
    assert all(p.payload is not None and set(p.payload) == {"n", "meta"} for p in hits.points)
    assert all(p.payload is not None and p.payload["meta"] == {"a": p.payload["n"]} for p in hits.points)
    assert all(isinstance(p.id, int) and p.id % 3 == 0 for p in hits.points)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)  # Cosine vectors are answered normalised
    assert all(p.vector is not None and np.allclose(p.vector, unit[p.id]) for p in hits.points)  # type: ignore[arg-type]
    exact = _exact_scores(data, query, "Cosine")
    threshold = float(np.sort(exact)[-7:-5].mean())  # between the 6th and 7th best
    above = client.query_points(
        "s-cos", query=query.tolist(), limit=50, score_threshold=threshold, consistency=MAJORITY
    )
    assert len(above.points) == 6 and all(p.score >= threshold - 1e-6 for p in above.points)
    page = client.query_points(
        "s-cos",
        query=query.tolist(),
        limit=3,
        offset=2,
        search_params=models.SearchParams(exact=True),
        consistency=MAJORITY,
    )
    assert [p.id for p in page.points] == np.argsort(-exact, kind="stable")[2:5].tolist()
    excluded = client.query_points(
        "s-cos",
        query=query.tolist(),
        limit=3,
        with_payload=models.PayloadSelectorExclude(exclude=["meta", "kind"]),
        consistency=MAJORITY,
    )
    assert all(p.payload is not None and set(p.payload) == {"n"} for p in excluded.points)
    l2 = client.query_points("s-l2", query=query.tolist(), limit=10, consistency=MAJORITY)
    assert [p.score for p in l2.points] == sorted(p.score for p in l2.points)  # distances ascend
    l2_close = client.query_points(
        "s-l2",
        query=query.tolist(),
        limit=50,
        score_threshold=float(np.sort(_exact_scores(data, query, "Euclid"))[3:5].mean()),
        consistency=MAJORITY,
    )
    assert len(l2_close.points) == 4

    # query by a stored point's id: that point is left out
    by_id = client.query_points("s-cos", query=7, limit=3, consistency=MAJORITY)
    assert 7 not in [p.id for p in by_id.points]
    assert [p.id for p in by_id.points] == [
        i for i in np.argsort(-_exact_scores(data, data[7], "Cosine"), kind="stable").tolist() if i != 7
    ][:3]
    nearest = client.query_points(
        "s-cos", query=models.NearestQuery(nearest=query.tolist()), limit=2, consistency=MAJORITY
    )
    assert [p.id for p in nearest.points] == np.argsort(-exact, kind="stable")[:2].tolist()

    batch = client.query_batch_points(
        "s-cos",
        [
            models.QueryRequest(query=query.tolist(), limit=2),
            models.QueryRequest(query=data[10].tolist(), limit=1, filter=red, with_payload=True),
            models.QueryRequest(query=data[11].tolist(), limit=1),
        ],
        consistency=MAJORITY,
    )
    assert [len(r.points) for r in batch] == [2, 1, 1]
    assert batch[2].points[0].id == 11
    assert batch[1].points[0].payload is not None and batch[1].points[0].payload["kind"] == "red"

    # /points/search and /points/search/batch: qdrant-client 1.20 dropped these methods, so
    # they are called as any older client would call them
    url = f"{cluster.router_url}/collections/s-cos/points/search"
    headers = {"api-key": READ_KEY}
    body = {
        "vector": query.tolist(),
        "limit": 3,
        "with_payload": True,
        "filter": red.model_dump(exclude_none=True),
    }
    answer = httpx.post(url, json=body, headers=headers, params={"consistency": "majority"}).json()
    assert answer["status"] == "ok" and isinstance(answer["time"], float)
    hits_raw = [models.ScoredPoint.model_validate(hit) for hit in answer["result"]]
    assert all(isinstance(h.id, int) and h.id % 3 == 0 for h in hits_raw)
    assert all(h.payload is not None and h.payload["kind"] == "red" for h in hits_raw)
    searches = {
        "searches": [
            {"vector": data[20].tolist(), "limit": 1},
            {"vector": data[21].tolist(), "limit": 2, "offset": 1},
        ]
    }
    batch_raw = httpx.post(
        f"{url}/batch", json=searches, headers=headers, params={"consistency": "all"}
    ).json()["result"]
    assert batch_raw[0][0]["id"] == 20
    assert len(batch_raw[1]) == 2 and batch_raw[1][0]["id"] != 21


def _exact_scores(data: np.ndarray, query: np.ndarray, distance: str) -> np.ndarray:
    scores: np.ndarray
    if distance == "Cosine":
        scores = (data @ query) / (np.linalg.norm(data, axis=1) * np.linalg.norm(query))
    elif distance == "Dot":
        scores = data @ query
    else:
        scores = np.linalg.norm(data - query, axis=1)
    return scores


def test_unsupported_query_and_filter_features(client: QdrantClient) -> None:
    make_collection(client, "refusals")
    client.upsert("refusals", models.Batch(ids=[1, 2], vectors=vectors(2, seed=5).tolist()))
    query = [0.5] * DIM
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {
                "search_params": models.SearchParams(
                    quantization=models.QuantizationSearchParams(rescore=True)
                )
            },
            "quantization",
        ),
    ]
    for arguments, message in cases:
        with pytest.raises(UnexpectedResponse) as raised:
            client.query_points("refusals", **{"query": query, **arguments})
        status, error = error_of(raised)
        assert status == 501 and message in error, (arguments, status, error)
    with pytest.raises(UnexpectedResponse) as raised:
        client.query_points("refusals", query=None)
    assert error_of(raised)[0] == 501 and "scroll" in error_of(raised)[1]
    with pytest.raises(UnexpectedResponse) as raised:
        client.delete_payload("refusals", ["meta.a"], points=[1])
    assert error_of(raised)[0] == 501 and "nested payload keys" in error_of(raised)[1]
    with pytest.raises(UnexpectedResponse) as raised:
        client.set_payload("refusals", {"a": 1}, points=[1], key="meta")
    assert error_of(raised)[0] == 501 and "'key'" in error_of(raised)[1]
    with pytest.raises(UnexpectedResponse) as raised:
        client.scroll("refusals", order_by="n")  # order_by needs a range index on the key
    assert error_of(raised)[0] == 400 and "No range index for `order_by` key: `n`" in error_of(raised)[1]
    with pytest.raises(UnexpectedResponse) as raised:
        client.query_points("refusals", query=[1.0, 2.0])
    assert error_of(raised) == (400, "Wrong input: Vector dimension error: expected dim: 8, got 2")
    with pytest.raises(UnexpectedResponse) as raised:
        client.query_points("refusals", query=99, consistency=MAJORITY)
    assert error_of(raised) == (404, "Not found: No point with id 99 found")
    for arguments in ({"using": "text"}, {"with_vectors": ["text"]}):  # one unnamed vector here
        with pytest.raises(UnexpectedResponse) as raised:
            client.query_points("refusals", query=query, **arguments)
        assert error_of(raised) == (
            400,
            "Not existing vector name error: text (collection 'refusals' has one unnamed vector; "
            "it has no vector named 'text')",
        )


def test_scopes_and_keys(cluster: LocalCluster) -> None:
    url = cluster.router_url
    with closing(QdrantClient(url=url, headers={"api-key": ADMIN_KEY})) as admin:
        make_collection(admin, "scoped")
    with closing(QdrantClient(url=url, headers={"api-key": READ_KEY})) as reader:
        assert count(reader, "scoped") == 0
        with pytest.raises(UnexpectedResponse) as raised:
            reader.upsert("scoped", [models.PointStruct(id=1, vector=[0.1] * DIM)])
        assert error_of(raised)[0] == 403 and "needs 'write'" in error_of(raised)[1]
    with closing(QdrantClient(url=url, headers={"api-key": WRITE_KEY})) as writer:
        writer.upsert("scoped", [models.PointStruct(id=1, vector=[0.1] * DIM)])
        with pytest.raises(UnexpectedResponse) as raised:
            writer.delete_collection("scoped")
        assert error_of(raised)[0] == 403
    with closing(QdrantClient(url=url, check_compatibility=False)) as anonymous:
        with pytest.raises(UnexpectedResponse) as raised:
            anonymous.get_collections()
        assert error_of(raised)[0] == 401
    with pytest.warns(UserWarning, match="insecure connection"):
        keyed = QdrantClient(url=url, api_key=READ_KEY)
    with closing(keyed):
        assert count(keyed, "scoped") == 1
