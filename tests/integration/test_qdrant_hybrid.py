"""Sparse vectors and multi-stage queries (prefetch, RRF and DBSF fusion, re-scoring, MMR,
queries by id) through the official qdrant-client against a real 2 x 3 cluster, with
qdrant-client's local mode (`QdrantClient(":memory:")`) as the oracle.

Sparse search is exact on both sides; dense stages ask the cluster for exact scoring
(`params.exact`), so ids and scores must agree to float tolerance everywhere.
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

MAJORITY = models.ReadConsistencyType.MAJORITY
EXACT = models.SearchParams(exact=True)
POINTS = 200
DENSE = {
    "text": models.VectorParams(size=8, distance=models.Distance.COSINE),
    "image": models.VectorParams(size=6, distance=models.Distance.EUCLID),
}
SPARSE = {
    "words": models.SparseVectorParams(),
    "terms": models.SparseVectorParams(modifier=models.Modifier.IDF),
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("qdrant-hybrid") / "cluster")


def _sparse(rng: np.random.Generator, vocabulary: int, terms: int) -> models.SparseVector:
    indices = rng.choice(vocabulary, size=int(rng.integers(1, terms)), replace=False)
    return models.SparseVector(indices=indices.tolist(), values=rng.random(len(indices)).round(3).tolist())


def _point(i: int, rng: np.random.Generator) -> models.PointStruct:
    vector: dict[str, Any] = {"text": rng.normal(size=8).round(4).tolist()}
    if i % 4:
        vector["image"] = rng.normal(size=6).round(4).tolist()
    if i % 5:
        vector["words"] = _sparse(rng, 60, 8)
    if i % 3:
        vector["terms"] = _sparse(rng, 40, 6)
    return models.PointStruct(id=i, vector=vector, payload={"group": i % 7, "even": i % 2 == 0})


@pytest.fixture(scope="module")
def pair(cluster: LocalCluster) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(17)
        points = [_point(i, rng) for i in range(POINTS)]
        for client in (remote, local):
            client.create_collection("hybrid", vectors_config=DENSE, sparse_vectors_config=SPARSE)
            client.upsert("hybrid", points)
        yield remote, local


def _same_hits(remote: list[models.ScoredPoint], local: list[models.ScoredPoint]) -> None:
    assert [h.id for h in remote] == [h.id for h in local]
    np.testing.assert_allclose([h.score for h in remote], [h.score for h in local], rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(remote, local, strict=True):
        assert mine.payload == theirs.payload
        if isinstance(theirs.vector, dict):
            assert isinstance(mine.vector, dict) and sorted(mine.vector) == sorted(theirs.vector)
            for name, vector in theirs.vector.items():
                if isinstance(vector, models.SparseVector):
                    _same_sparse(mine.vector[name], vector)
                else:
                    np.testing.assert_allclose(
                        np.asarray(mine.vector[name]), np.asarray(vector), rtol=1e-5, atol=1e-6
                    )


def _same_sparse(mine: Any, theirs: models.SparseVector) -> None:
    """Sparse vectors equal (values stored as float32, as Qdrant stores them)."""
    assert isinstance(mine, models.SparseVector) and mine.indices == theirs.indices
    np.testing.assert_allclose(mine.values, theirs.values, rtol=1e-6)


def _both(pair: tuple[QdrantClient, QdrantClient], **asked: Any) -> None:
    """The same query_points on both; the cluster's dense stages exact."""
    remote, local = pair
    remote_asked = dict(asked)
    if "prefetch" in asked:
        remote_asked["prefetch"] = [_exact(p) for p in asked["prefetch"]]
    remote_asked.setdefault("search_params", EXACT)
    mine = remote.query_points("hybrid", consistency=MAJORITY, **remote_asked).points
    _same_hits(mine, local.query_points("hybrid", **asked).points)


def _prefetches(raw: object) -> list[models.Prefetch]:
    listed = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return [p for p in listed if isinstance(p, models.Prefetch)]


def _exact(prefetch: models.Prefetch) -> models.Prefetch:
    inner = prefetch.prefetch
    nested = [_exact(p) for p in inner] if isinstance(inner, list) else (_exact(inner) if inner else None)
    return prefetch.model_copy(update={"params": EXACT, "prefetch": nested})


def test_collection_info_lists_sparse_vectors(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    mine, theirs = remote.get_collection("hybrid"), local.get_collection("hybrid")
    assert mine.config.params.vectors == theirs.config.params.vectors
    assert mine.config.params.sparse_vectors == theirs.config.params.sparse_vectors


@pytest.mark.parametrize("using", ["words", "terms"])
def test_sparse_searches_agree(pair: tuple[QdrantClient, QdrantClient], using: str) -> None:
    rng = np.random.default_rng(len(using))
    condition = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    for query_filter in (None, condition):
        query = _sparse(rng, 60 if using == "words" else 40, 6)
        _both(pair, query=query, using=using, limit=15, query_filter=query_filter, with_vectors=[using])
    having = next(i for i in range(1, POINTS) if (i % 5 if using == "words" else i % 3))
    _both(pair, query=having, using=using, limit=5)  # by a stored point's sparse vector


@pytest.mark.parametrize("fusion", [models.Fusion.RRF, models.Fusion.DBSF])
def test_fusion_of_dense_and_sparse_agrees(
    pair: tuple[QdrantClient, QdrantClient], fusion: models.Fusion
) -> None:
    rng = np.random.default_rng(5)
    group = models.Filter(must_not=[models.FieldCondition(key="group", match=models.MatchValue(value=3))])
    prefetch = [
        models.Prefetch(query=rng.normal(size=8).tolist(), using="text", limit=25),
        models.Prefetch(query=_sparse(rng, 60, 6), using="words", limit=25, filter=group),
        models.Prefetch(query=rng.normal(size=6).tolist(), using="image", limit=10),
    ]
    _both(pair, prefetch=prefetch, query=models.FusionQuery(fusion=fusion), limit=12, with_payload=True)
    # the outer filter reaches every prefetch; an offset pages the fused list
    even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    _both(
        pair, prefetch=prefetch, query=models.FusionQuery(fusion=fusion), query_filter=even, limit=5, offset=3
    )


def test_rrf_with_k_and_nested_rescoring_agree(pair: tuple[QdrantClient, QdrantClient]) -> None:
    rng = np.random.default_rng(9)
    sparse_first = models.Prefetch(query=_sparse(rng, 40, 6), using="terms", limit=40)
    rescored = models.Prefetch(
        prefetch=sparse_first, query=rng.normal(size=8).tolist(), using="text", limit=15
    )
    _both(pair, prefetch=[rescored], query=models.RrfQuery(rrf=models.Rrf(k=3)), limit=8)
    # re-scoring the union of two prefetches with another vector
    _both(
        pair,
        prefetch=[sparse_first, models.Prefetch(query=rng.normal(size=6).tolist(), using="image", limit=20)],
        query=rng.normal(size=8).tolist(),
        using="text",
        limit=10,
        with_vectors=["text", "terms"],
    )


def test_mmr_agrees(pair: tuple[QdrantClient, QdrantClient]) -> None:
    rng = np.random.default_rng(13)
    for diversity in (0.0, 0.5, 0.9):
        mmr = models.Mmr(diversity=diversity, candidates_limit=40)
        _both(
            pair,
            query=models.NearestQuery(nearest=rng.normal(size=8).tolist(), mmr=mmr),
            using="text",
            limit=8,
        )
    _both(
        pair,
        query=models.NearestQuery(nearest=_sparse(rng, 60, 6), mmr=models.Mmr(diversity=0.4)),
        using="words",
        limit=6,
    )


def test_query_batch_mixes_plain_and_hybrid_queries(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = pair
    rng = np.random.default_rng(21)
    sparse = _sparse(rng, 60, 6)
    dense = rng.normal(size=8).tolist()
    requests = [
        models.QueryRequest(query=dense, using="text", limit=4),
        models.QueryRequest(query=sparse, using="words", limit=4),
        models.QueryRequest(
            prefetch=[
                models.Prefetch(query=sparse, using="words"),
                models.Prefetch(query=dense, using="text"),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=4,
        ),
    ]
    exact = [
        r.model_copy(
            update={"params": EXACT, "prefetch": [_exact(p) for p in _prefetches(r.prefetch)] or None}
        )
        for r in requests
    ]
    mine = remote.query_batch_points("hybrid", exact, consistency=MAJORITY)
    theirs = local.query_batch_points("hybrid", requests)
    for a, b in zip(mine, theirs, strict=True):
        _same_hits(a.points, b.points)


def test_sparse_updates_and_deletes_agree(cluster: LocalCluster) -> None:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(3)
        points = [_point(i, rng) for i in range(30)]
        for client in (remote, local):
            client.create_collection("sparse-edits", vectors_config={}, sparse_vectors_config=SPARSE)
            client.upsert("sparse-edits", [_only_sparse(p) for p in points])
            client.update_vectors(
                "sparse-edits",
                [
                    models.PointVectors(
                        id=0, vector={"words": models.SparseVector(indices=[9, 2], values=[1.0, 0.5])}
                    )
                ],
            )
            client.delete_vectors("sparse-edits", ["terms"], models.PointIdsList(points=[1, 2]))
            client.delete("sparse-edits", models.PointIdsList(points=[4]))
        mine = remote.retrieve("sparse-edits", list(range(30)), with_vectors=True, consistency=MAJORITY)
        theirs = local.retrieve("sparse-edits", list(range(30)), with_vectors=True)
        assert [(p.id, p.payload) for p in mine] == [(p.id, p.payload) for p in theirs]
        for one, other in zip(mine, theirs, strict=True):
            assert isinstance(one.vector, dict) and isinstance(other.vector, dict)
            assert sorted(one.vector) == sorted(other.vector)
            for name, vector in other.vector.items():
                assert isinstance(vector, models.SparseVector)
                _same_sparse(one.vector[name], vector)
        query = models.SparseVector(indices=[2, 9, 11], values=[1.0, 1.0, 1.0])
        mine_hits = remote.query_points(
            "sparse-edits", query, using="terms", limit=10, consistency=MAJORITY
        ).points
        _same_hits(mine_hits, local.query_points("sparse-edits", query, using="terms", limit=10).points)


def _only_sparse(point: models.PointStruct) -> models.PointStruct:
    assert isinstance(point.vector, dict)
    return point.model_copy(update={"vector": {k: v for k, v in point.vector.items() if k in SPARSE}})


def _error(call: Any) -> tuple[int, str]:
    with pytest.raises(UnexpectedResponse) as raised:
        call()
    body = raised.value.structured()
    return int(raised.value.status_code or 0), str(body["status"]["error"])


def test_bad_sparse_and_hybrid_input_is_a_clear_4xx(pair: tuple[QdrantClient, QdrantClient]) -> None:
    remote, _ = pair
    before = remote.count("hybrid").count
    bad = [models.PointStruct(id=1, vector={"words": models.SparseVector(indices=[1, 1], values=[1.0, 2.0])})]
    status, message = _error(lambda: remote.upsert("hybrid", bad))
    assert status == 400 and "distinct" in message
    status, message = _error(
        lambda: remote.upsert(
            "hybrid",
            [models.PointStruct(id=1, vector={"text": models.SparseVector(indices=[1], values=[1.0])})],
        )
    )
    assert status == 400 and "dense" in message
    status, message = _error(
        lambda: remote.query_points("hybrid", models.SparseVector(indices=[1], values=[1.0]), using="text")
    )
    assert status == 400 and "dense" in message
    status, message = _error(
        lambda: remote.query_points("hybrid", query=models.FusionQuery(fusion=models.Fusion.RRF))
    )
    assert status == 400 and "prefetch" in message
    assert remote.count("hybrid").count == before


TEXTS = [
    "The quick brown fox jumps over the lazy dog",
    "A fast brown fox leaped over sleeping dogs",
    "Vector databases store embeddings for similarity search",
    "Sparse vectors and BM25 rank documents by their terms",
    "Dogs and foxes are canines; cats are felines",
    "Raft replicates the log to a majority of replicas",
    "Searching documents with keywords and dense embeddings together",
    "The lazy cat sleeps all day in the sun",
]


def test_bm25_documents_are_inferred_by_the_router(cluster: LocalCluster) -> None:
    """Points and queries sent as {"text", "model": "qdrant/bm25"} documents score as the
    same BM25 sparse vectors would in qdrant-client's local mode (idf modifier)."""
    from vecstore.cluster import bm25

    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        sparse = {"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)}
        for client in (remote, local):
            client.create_collection("bm25", vectors_config={}, sparse_vectors_config=sparse)
        remote.upsert(
            "bm25",
            [
                models.PointStruct(
                    id=i,
                    vector={"bm25": models.Document(text=text, model="qdrant/bm25")},
                    payload={"text": text},
                )
                for i, text in enumerate(TEXTS)
            ],
        )
        precomputed = []
        for i, text in enumerate(TEXTS):
            indices, values = bm25.document_vector(text)
            vector = models.SparseVector(indices=indices.tolist(), values=values.tolist())
            precomputed.append(models.PointStruct(id=i, vector={"bm25": vector}, payload={"text": text}))
        local.upsert("bm25", precomputed)
        for question in ("lazy dogs", "fox jumping", "documents embeddings search", "nothing matches zzz"):
            mine = remote.query_points(
                "bm25",
                models.Document(text=question, model="Qdrant/BM25"),
                using="bm25",
                limit=4,
                consistency=MAJORITY,
            ).points
            indices, values = bm25.query_vector(question)
            query = models.SparseVector(indices=indices.tolist(), values=values.tolist())
            _same_hits(mine, local.query_points("bm25", query, using="bm25", limit=4).points)
        top = remote.query_points(
            "bm25", models.Document(text="lazy dog", model="qdrant/bm25"), using="bm25", limit=1
        )
        assert top.points[0].id == 0
        # other models need an embedding service (qdrant-client infers them itself, so plain HTTP)
        body = {"query": {"text": "x", "model": "BAAI/bge-small-en"}, "using": "bm25"}
        answer = httpx.post(f"{cluster.router_url}/collections/bm25/points/query", json=body, timeout=30)
        assert answer.status_code == 501 and "BAAI/bge-small-en" in answer.json()["status"]["error"]
        assert remote.count("bm25").count == len(TEXTS)


def test_the_native_query_endpoint_answers_like_the_qdrant_one(
    cluster: LocalCluster, pair: tuple[QdrantClient, QdrantClient]
) -> None:
    """POST /v1/collections/{name}/query takes the same query tree with native filters."""
    remote, _ = pair
    rng = np.random.default_rng(31)
    dense = rng.normal(size=8).round(4).tolist()
    sparse = _sparse(rng, 60, 6)
    body: dict[str, Any] = {
        "prefetch": [
            {"query": dense, "using": "text", "limit": 20, "params": {"exact": True}},
            {"query": sparse.model_dump(), "using": "words", "limit": 20},
        ],
        "query": {"fusion": "dbsf"},
        "filter": {"must": [{"key": "group", "range": {"lt": 5}}]},
        "limit": 6,
        "consistency": "strong",
    }
    answer = httpx.post(f"{cluster.router_url}/v1/collections/hybrid/query", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    native = answer.json()["result"]
    qdrant = remote.query_points(
        "hybrid",
        prefetch=[
            models.Prefetch(query=dense, using="text", limit=20, params=EXACT),
            models.Prefetch(query=sparse, using="words", limit=20),
        ],
        query=models.FusionQuery(fusion=models.Fusion.DBSF),
        query_filter=models.Filter(must=[models.FieldCondition(key="group", range=models.Range(lt=5))]),
        limit=6,
        consistency=MAJORITY,
    ).points
    assert [h["id"] for h in native] == [h.id for h in qdrant]
    np.testing.assert_allclose([h["score"] for h in native], [h.score for h in qdrant], rtol=1e-6)
    assert all(h["payload"]["group"] < 5 for h in native)
    bad = httpx.post(
        f"{cluster.router_url}/v1/collections/hybrid/query", json={**body, "colour": 1}, timeout=30
    )
    assert bad.status_code == 400 and "colour" in bad.json()["error"]


@pytest.mark.parametrize("name", ["text", "image", "words", "terms"])
def test_has_vector_filters_agree(pair: tuple[QdrantClient, QdrantClient], name: str) -> None:
    remote, local = pair
    having = models.Filter(must=[models.HasVectorCondition(has_vector=name)])
    lacking = models.Filter(must_not=[models.HasVectorCondition(has_vector=name)])
    for condition in (having, lacking):
        mine, _ = remote.scroll("hybrid", condition, limit=POINTS, consistency=MAJORITY)
        theirs, _ = local.scroll("hybrid", condition, limit=POINTS)
        assert [p.id for p in mine] == [p.id for p in theirs]
        assert remote.count("hybrid", condition).count == local.count("hybrid", condition).count
    # inside a search of another vector (the filter is resolved on every shard)
    query = [0.1] * 8
    _both(pair, query=query, using="text", query_filter=lacking, limit=7)
    with pytest.raises(UnexpectedResponse) as raised:
        remote.count("hybrid", models.Filter(must=[models.HasVectorCondition(has_vector="nope")]))
    assert raised.value.status_code == 400


def test_the_default_unnamed_vector_beside_sparse_ones(cluster: LocalCluster) -> None:
    """Qdrant's common hybrid layout: one unnamed dense vector plus named sparse vectors."""
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(12)
        dense = models.VectorParams(size=5, distance=models.Distance.COSINE)
        points = [
            models.PointStruct(
                id=i,
                vector={"": rng.normal(size=5).round(3).tolist(), "words": _sparse(rng, 30, 5)}
                if i % 3
                else rng.normal(size=5).round(3).tolist(),
                payload={"i": i},
            )
            for i in range(40)
        ]
        for client in (remote, local):
            client.create_collection(
                "default-hybrid",
                vectors_config=dense,
                sparse_vectors_config={"words": models.SparseVectorParams()},
            )
            client.upsert("default-hybrid", points)
        mine, theirs = remote.get_collection("default-hybrid"), local.get_collection("default-hybrid")
        assert mine.config.params.vectors == theirs.config.params.vectors
        assert mine.config.params.sparse_vectors == theirs.config.params.sparse_vectors
        query = rng.normal(size=5).tolist()
        _same_hits(
            remote.query_points(
                "default-hybrid", query, limit=6, search_params=EXACT, consistency=MAJORITY
            ).points,
            local.query_points("default-hybrid", query, limit=6).points,
        )
        sparse = _sparse(rng, 30, 4)
        fusion = models.FusionQuery(fusion=models.Fusion.RRF)
        remote_prefetch = [
            models.Prefetch(query=query, params=EXACT),
            models.Prefetch(query=sparse, using="words"),
        ]
        local_prefetch = [models.Prefetch(query=query), models.Prefetch(query=sparse, using="words")]
        _same_hits(
            remote.query_points(
                "default-hybrid", prefetch=remote_prefetch, query=fusion, limit=5, consistency=MAJORITY
            ).points,
            local.query_points("default-hybrid", prefetch=local_prefetch, query=fusion, limit=5).points,
        )
        ids = list(range(0, 40, 7))
        mine_points = remote.retrieve("default-hybrid", ids, with_vectors=True, consistency=MAJORITY)
        theirs_points = local.retrieve("default-hybrid", ids, with_vectors=True)
        for one, other in zip(mine_points, theirs_points, strict=True):
            if isinstance(other.vector, list):  # only the default vector: answered as a list
                np.testing.assert_allclose(
                    np.asarray(one.vector), np.asarray(other.vector), rtol=1e-5, atol=1e-6
                )
                continue
            assert isinstance(one.vector, dict) and isinstance(other.vector, dict)
            assert sorted(one.vector) == sorted(other.vector)
            np.testing.assert_allclose(
                np.asarray(one.vector[""]), np.asarray(other.vector[""]), rtol=1e-5, atol=1e-6
            )
            _same_sparse(one.vector["words"], other.vector["words"])  # type: ignore[arg-type]
