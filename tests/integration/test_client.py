"""The Python client (`vecstore.client`) against a real 2 x 3 cluster: what a user does.

Answers are checked against brute force over the same vectors; vectors must come back as
float32 arrays (no Python float per element); bad input must be a clear error that
changes nothing; a second router must see the client's writes (read tokens).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import msgpack
import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.integration.conftest import another_router, started_cluster
from vecstore.client import AsyncClient, Client, Forbidden, InvalidRequest, NotFound, Unauthorized
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.transport.arrays import ARRAY_EXT, pack_array

DIM = 16
N = 3_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(tmp_path_factory.mktemp("client") / "cluster", shards=2)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, list[dict[str, object]]]:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    payloads: list[dict[str, object]] = [
        {"n": i, "parity": "even" if i % 2 == 0 else "odd"} for i in range(N)
    ]
    return vectors, payloads


@pytest.fixture(scope="module")
def loaded(cluster: LocalCluster, data: tuple[np.ndarray, list[dict[str, object]]]) -> str:
    """Collection `docs` (l2) with N points uploaded in parallel batches."""
    vectors, payloads = data
    with Client(cluster.router_url) as client:
        assert client.create_collection("docs", DIM, metric="l2") is True
        assert client.create_collection("docs", DIM, metric="l2") is False  # idempotent
        written = client.upload("docs", np.arange(N), vectors, payloads, batch_size=700, parallel=3)
        assert written.count == N
        assert set(dict(part.split(":") for part in written.read_token.split(","))) == {"0", "1"}
    return "docs"


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int, ids: np.ndarray | None = None) -> list[int]:
    distances = np.linalg.norm(vectors - query, axis=1)
    order = np.argsort(distances, kind="stable")[:k]
    chosen: list[int] = (order if ids is None else ids[order]).tolist()
    return chosen


def test_search_matches_brute_force_and_vectors_are_float32_arrays(
    cluster: LocalCluster, loaded: str, data: tuple[np.ndarray, list[dict[str, object]]]
) -> None:
    vectors, payloads = data
    rng = np.random.default_rng(6)
    queries = rng.normal(size=(20, DIM)).astype(np.float32)
    with Client(cluster.router_url) as client:
        assert client.count(loaded) == N
        info = client.collection(loaded)
        assert (info.schema.dimension, info.schema.metric.value) == (DIM, "l2")
        assert 0 < info.points <= N  # any replica's count: it may lag (count() does not)
        found = client.search_batch(loaded, queries, k=10, exact=True, with_vector=True)
        for query, hits in zip(queries, found, strict=True):
            assert [hit.id for hit in hits] == brute_force(vectors, query, 10)
            best = hits[0]
            assert isinstance(best.vector, np.ndarray)
            assert best.vector.dtype == np.float32
            assert not best.vector.flags.writeable  # a view of the received bytes
            row = int(best.id)
            np.testing.assert_array_equal(best.vector, vectors[row])
            assert best.payload == payloads[row]
            assert best.score == pytest.approx(float(np.linalg.norm(vectors[row] - query)), rel=1e-4)
        single = client.search(loaded, queries[0], k=5, exact=True)
        assert [hit.id for hit in single] == brute_force(vectors, queries[0], 5)
        assert single[0].vector is None
        # a filter, checked against brute force over the matching points
        even = np.arange(0, N, 2)
        filtered = client.search(
            loaded, queries[1], k=7, exact=True, filter={"key": "parity", "match": {"value": "even"}}
        )
        assert [hit.id for hit in filtered] == brute_force(vectors[even], queries[1], 7, even)


def test_get_scroll_iterate_keep_order_and_vectors(
    cluster: LocalCluster, loaded: str, data: tuple[np.ndarray, list[dict[str, object]]]
) -> None:
    vectors, payloads = data
    with Client(cluster.router_url) as client:
        points = client.get(loaded, [17, 3, 99_999, 2], with_vector=True)
        assert [p.id for p in points] == [17, 3, 2]  # the missing id left out
        for point in points:
            np.testing.assert_array_equal(point.vector, vectors[int(point.id)])
            assert point.payload == payloads[int(point.id)]
        page, next_offset = client.scroll(loaded, limit=100)
        assert [p.id for p in page] == list(range(100))
        assert next_offset == 100
        assert [p.id for p in client.iterate(loaded, batch_size=450)] == list(range(N))


async def test_async_client_concurrent_searches_and_writes(
    cluster: LocalCluster, data: tuple[np.ndarray, list[dict[str, object]]]
) -> None:
    vectors, _ = data
    async with AsyncClient(cluster.router_url, connections=2) as client:
        await client.create_collection("async_docs", DIM, metric="l2")
        await client.upload("async_docs", list(range(500)), vectors[:500], batch_size=100, parallel=4)
        queries = vectors[:16] + np.float32(0.01)
        found = await asyncio.gather(*(client.search("async_docs", q, k=3, exact=True) for q in queries))
        assert [hits[0].id for hits in found] == list(range(16))
        # writes by filter and by ids, then reads that must see them
        deleted = await client.delete("async_docs", filter={"key": "n", "range": {"lt": 0}})
        assert deleted.count == 0  # no payloads here: nothing matches
        await client.set_payload("async_docs", {"tag": "a"}, ids=[1, 2, 3])
        assert await client.count("async_docs", {"key": "tag", "match": {"value": "a"}}) == 3
        await client.delete_payload_keys("async_docs", ["tag"], ids=[1])
        assert await client.count("async_docs", {"key": "tag", "match": {"value": "a"}}) == 2
        await client.delete("async_docs", ids=[1, 2])
        assert await client.count("async_docs") == 498
        assert [p.id async for p in client.iterate("async_docs", batch_size=200)][:3] == [0, 3, 4]
        assert await client.drop_collection("async_docs") is True


def test_bad_input_is_a_clear_error_and_changes_nothing(cluster: LocalCluster, loaded: str) -> None:
    with Client(cluster.router_url, retry_seconds=5) as client:
        with pytest.raises(InvalidRequest, match="dimension"):
            client.upsert(loaded, [N + 1], np.ones((1, DIM + 1), dtype=np.float32))
        with pytest.raises(InvalidRequest, match="finite"):
            client.upsert(loaded, [N + 1], np.full((1, DIM), np.nan, dtype=np.float32))
        with pytest.raises(InvalidRequest, match="same length"):
            client.upload(loaded, [1, 2], np.ones((3, DIM)))
        with pytest.raises(NotFound):
            client.search("no_such_collection", np.ones(DIM), k=1)
        with pytest.raises(InvalidRequest, match="exactly one"):
            client.delete(loaded)
        assert client.count(loaded) == N


async def test_raw_binary_vectors_on_the_wire(cluster: LocalCluster, loaded: str) -> None:
    """The wire format itself, as another language's client would send it."""
    url = f"{cluster.router_url}/v1/collections/{loaded}"
    headers = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}
    async with aiohttp.ClientSession() as session:

        async def post(path: str, body: object, raw: bytes | None = None) -> tuple[int, object]:
            data = raw if raw is not None else msgpack.packb(body, default=pack_array)
            async with session.post(f"{url}{path}", data=data, headers=headers) as response:
                decoded = msgpack.unpackb(await response.read(), raw=False, strict_map_key=False)
                return response.status, decoded

        query = np.zeros(DIM, dtype=np.float32)
        status, answer = await post(
            "/search", {"vector": query, "k": 2, "with_vector": True, "binary_vectors": True}
        )
        assert status == 200
        vector = answer["result"][0]["vector"]  # type: ignore[index]
        assert isinstance(vector, msgpack.ExtType) and vector.code == ARRAY_EXT
        # without the flag, a msgpack answer carries lists, as before
        status, answer = await post("/search", {"vector": query, "k": 2, "with_vector": True})
        assert isinstance(answer["result"][0]["vector"], list)  # type: ignore[index]
        # a truncated array and an unknown extension type are 400s
        bad = msgpack.ExtType(ARRAY_EXT, pack_array(query).data[:-4])
        status, answer = await post("/search", None, msgpack.packb({"vector": bad, "k": 1}))
        assert status == 400
        assert "bytes of data" in answer["error"]  # type: ignore[index]
        status, answer = await post(
            "/search", None, msgpack.packb({"vector": msgpack.ExtType(7, b"x"), "k": 1})
        )
        assert status == 400
        assert "extension type 7" in answer["error"]  # type: ignore[index]

        # malformed columnar upserts are 400s and write nothing
        async def put(body: object) -> tuple[int, object]:
            data = msgpack.packb(body, default=pack_array)
            async with session.put(f"{url}/points", data=data, headers=headers) as response:
                return response.status, msgpack.unpackb(await response.read(), raw=False)

        ones = np.ones((2, DIM), dtype=np.float32)
        for malformed, message in (
            ({"ids": [N + 1] * DIM, "vectors": np.ones(DIM, dtype=np.float32)}, "shape"),
            ({"ids": [], "vectors": np.zeros((0, DIM), dtype=np.float32)}, "empty"),
            ({"ids": [N + 1, N + 2], "vectors": ones, "payloads": [{}]}, "same length"),
            ({"ids": [N + 1, N + 2], "vectors": ones, "extra": 1}, "unknown"),
            ({"ids": [N + 1, N + 2], "vectors": np.full((2, DIM), np.nan, dtype=np.float32)}, "finite"),
        ):
            status, answer = await put(malformed)
            assert status == 400, (malformed, answer)
            assert message in answer["error"]  # type: ignore[index]
        status, answer = await post("/points/count", {})
        assert answer["count"] == N  # type: ignore[index]
        # JSON requests are unchanged by the flag: lists
        async with session.post(
            f"{url}/points/get", json={"ids": [1], "with_vector": True, "binary_vectors": True}
        ) as response:
            assert response.status == 200
            assert isinstance((await response.json())["points"][0]["vector"], list)


def test_pandas_and_polars_round_trips(cluster: LocalCluster) -> None:
    rng = np.random.default_rng(8)
    matrix = rng.normal(size=(250, DIM)).astype(np.float32)
    frame = pd.DataFrame(
        {
            "id": np.arange(1_000, 1_250),
            "vector": list(matrix),
            "title": [f"doc {i}" for i in range(250)],
            "score": [float(i) if i % 3 else np.nan for i in range(250)],  # NaN: left out
            "when": pd.Timestamp("2026-12-04T10:00:00") + pd.to_timedelta(np.arange(250), unit="s"),
        }
    )
    with Client(cluster.router_url) as client:
        client.create_collection("frames", DIM, metric="dot")
        assert client.from_pandas("frames", frame, batch_size=100).count == 250
        back = client.to_pandas("frames")
        assert back["id"].tolist() == list(range(1_000, 1_250))
        np.testing.assert_array_equal(np.stack(back["vector"].to_list()), matrix)
        assert back["title"].tolist() == frame["title"].tolist()
        first = client.get("frames", [1_000])[0].payload
        assert first == {"title": "doc 0", "when": "2026-12-04T10:00:00"}  # no "score": it was NaN
        assert client.get("frames", [1_001])[0].payload["score"] == 1.0  # type: ignore[index]

        polars_frame = pl.DataFrame(
            {"key": [7, 8, 9], "embedding": matrix[:3], "lang": ["en", None, "fr"]},
            schema_overrides={"embedding": pl.Array(pl.Float32, DIM)},
        )
        client.from_polars("frames", polars_frame, id_column="key", vector_column="embedding")
        got = client.to_polars("frames", filter={"key": "lang", "match": {"any": ["en", "fr"]}})
        assert got["id"].to_list() == [7, 9]
        assert got["vector"].dtype == pl.Array(pl.Float32, DIM)
        np.testing.assert_array_equal(got["vector"].to_numpy(), matrix[[0, 2]])
        assert client.get("frames", [8])[0].payload == {}  # None left out
        with pytest.raises(InvalidRequest, match="no column 'vec'"):
            client.from_pandas("frames", frame, vector_column="vec")


@pytest.fixture(scope="module")
def second_router(cluster: LocalCluster) -> Iterator[str]:
    """Another router of the same cluster: it has not seen the first router's writes."""
    yield from another_router(cluster, "router-client")


def test_reads_through_another_router_see_the_clients_writes(
    cluster: LocalCluster, second_router: str, data: tuple[np.ndarray, list[dict[str, object]]]
) -> None:
    vectors, _ = data
    with Client(cluster.router_url) as writer:
        writer.create_collection("tokens", DIM)
        missed = []
        with Client(second_router) as reader:
            for number in range(150):
                written = writer.upsert("tokens", [number], vectors[number : number + 1], [{"round": number}])
                got = reader.get("tokens", [number], after=written.read_token)
                if [p.id for p in got] != [number]:
                    missed.append(number)
        assert missed == []
    assert writer.read_token  # merged over every write


READ_KEY = "client-test-read-key-0123456789abcdef"
WRITE_KEY = "client-test-write-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keyed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """1 x 1 whose router asks API keys."""
    yield from started_cluster(
        tmp_path_factory.mktemp("client-keys") / "cluster",
        shards=1,
        replicas=1,
        router_env={"VECSTORE_API_KEYS": f"{READ_KEY}:read,{WRITE_KEY}:write"},
    )


def test_api_keys_are_sent_and_scopes_hold(keyed_cluster: LocalCluster) -> None:
    url = keyed_cluster.router_url
    with Client(url, retry_seconds=2) as anonymous, pytest.raises(Unauthorized):
        anonymous.count("anything")
    with Client(url, api_key=READ_KEY, retry_seconds=2) as reader:
        with pytest.raises(Forbidden):
            reader.upsert("anything", [1], np.ones((1, 4)))
        with pytest.raises(NotFound):
            reader.count("anything")  # allowed, and the collection does not exist


def test_plain_http_carries_binary_vectors_too(
    cluster: LocalCluster, loaded: str, data: tuple[np.ndarray, list[dict[str, object]]]
) -> None:
    vectors, _ = data
    with Client(cluster.router_url, rpc=False) as client:
        client.upsert(loaded, [5], vectors[5:6], [{"n": 5, "parity": "odd"}])  # the same point again
        hits = client.search(loaded, vectors[5], k=1, exact=True, with_vector=True)
        assert hits[0].id == 5
        assert isinstance(hits[0].vector, np.ndarray)
        np.testing.assert_array_equal(hits[0].vector, vectors[5])


def test_named_vectors_through_the_client(cluster: LocalCluster) -> None:
    rng = np.random.default_rng(21)
    text = rng.normal(size=(60, 6)).astype(np.float32)
    image = rng.normal(size=(60, 3)).astype(np.float32)
    with Client(cluster.router_url) as client:
        assert client.create_collection(
            "client-named", vectors={"text": {"dimension": 6}, "image": {"dimension": 3, "metric": "l2"}}
        )
        points = [
            {
                "id": i,
                "vector": {"text": text[i], **({"image": image[i]} if i % 2 else {})},
                "payload": {"i": i},
            }
            for i in range(60)
        ]
        assert client.upsert_points("client-named", points).count == 60
        hits = client.search("client-named", image[7], k=5, using="image", exact=True, with_vector=["image"])
        odd = np.arange(1, 60, 2)
        assert [h.id for h in hits] == odd[
            np.argsort(((image[odd] - image[7]) ** 2).sum(axis=1))[:5]
        ].tolist()
        assert isinstance(hits[0].vector, dict)
        np.testing.assert_array_equal(hits[0].vector["image"], image[7])
        client.update_vectors("client-named", {2: {"image": [1.0, 2.0, 3.0]}})
        client.delete_vectors("client-named", ["text"], ids=[2, 3])
        (two, three) = client.get("client-named", [2, 3], with_vector=True)
        assert isinstance(two.vector, dict) and sorted(two.vector) == ["image"]
        np.testing.assert_array_equal(two.vector["image"], [1.0, 2.0, 3.0])
        assert isinstance(three.vector, dict) and sorted(three.vector) == ["image"]
        with pytest.raises(InvalidRequest, match="say which to search with 'using'"):
            client.search("client-named", text[0], k=3)
        with pytest.raises(InvalidRequest, match="expects 6"):
            client.upsert_points("client-named", [{"id": 1, "vector": {"text": [1.0, 2.0]}}])
        assert client.count("client-named") == 60


def test_sparse_vectors_and_hybrid_queries_through_the_client(cluster: LocalCluster) -> None:
    texts = ["red running shoes", "blue running jacket", "red wool hat", "green garden hose"]
    rng = np.random.default_rng(4)
    dense = rng.normal(size=(len(texts), 4)).astype(np.float32)
    with Client(cluster.router_url) as client:
        client.create_collection(
            "client-hybrid", vectors={"dense": {"dimension": 4}}, sparse_vectors={"bm25": {"modifier": "idf"}}
        )
        points = [
            {
                "id": i,
                "vector": {"dense": dense[i], "bm25": {"text": text, "model": "qdrant/bm25"}},
                "payload": {"t": text},
            }
            for i, text in enumerate(texts)
        ]
        client.upsert_points("client-hybrid", points)
        hits = client.query(
            "client-hybrid", {"text": "red shoes", "model": "qdrant/bm25"}, using="bm25", limit=2
        )
        assert [h.id for h in hits] == [0, 2]  # both words, then one
        fused = client.query(
            "client-hybrid",
            {"fusion": "rrf"},
            prefetch=[
                {"query": dense[3].tolist(), "using": "dense", "limit": 4},
                {"query": {"text": "garden", "model": "qdrant/bm25"}, "using": "bm25", "limit": 4},
            ],
            limit=1,
            with_vector=["bm25"],
        )
        assert fused[0].id == 3  # first in both lists
        assert isinstance(fused[0].vector, dict) and set(fused[0].vector["bm25"]) == {"indices", "values"}
        with pytest.raises(InvalidRequest, match="fusion query needs prefetches"):
            client.query("client-hybrid", {"fusion": "rrf"})
