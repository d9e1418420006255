"""Grouped queries (query/groups, search/groups) and recommend, discover and context queries
(Query API and the legacy endpoints) through qdrant-client against a real 2 x 3 cluster, with
qdrant-client's local mode as the oracle. The cluster's dense searches are exact
(`params.exact`) and the collection is smaller than the candidates each example contributes,
so ids and scores must agree to float tolerance.
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
POINTS = 150
NAME = "reco"
DENSE = {
    "text": models.VectorParams(size=8, distance=models.Distance.COSINE),
    "image": models.VectorParams(size=6, distance=models.Distance.EUCLID),
    "dot": models.VectorParams(size=5, distance=models.Distance.DOT),
}
SIZES = {"text": 8, "image": 6, "dot": 5}
Pair = tuple[QdrantClient, QdrantClient]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("qdrant-groups") / "cluster")


def _payload(i: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"group": i % 7, "colour": ["red", "green", "blue"][i % 3], "even": i % 2 == 0}
    if i % 4:
        payload["tags"] = [f"t{i % 5}", f"t{(i * 3) % 5}"]
    if i % 11 == 0:
        payload["group"] = 1.5  # not a group id: the point joins no group
    return payload


@pytest.fixture(scope="module")
def pair(cluster: LocalCluster) -> Iterator[Pair]:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        rng = np.random.default_rng(23)
        points = [
            models.PointStruct(
                id=i,
                vector={name: rng.normal(size=size).round(4).tolist() for name, size in SIZES.items()},
                payload=_payload(i),
            )
            for i in range(POINTS)
        ]
        for client in (remote, local):
            client.create_collection(NAME, vectors_config=DENSE)
            client.upsert(NAME, points)
        yield remote, local


def _same_hits(mine: list[models.ScoredPoint], theirs: list[models.ScoredPoint]) -> None:
    assert [h.id for h in mine] == [h.id for h in theirs]
    np.testing.assert_allclose([h.score for h in mine], [h.score for h in theirs], rtol=1e-4, atol=1e-5)
    assert [h.payload for h in mine] == [h.payload for h in theirs]


def _both(pair: Pair, **asked: Any) -> list[models.ScoredPoint]:
    remote, local = pair
    mine = remote.query_points(NAME, consistency=MAJORITY, search_params=EXACT, **asked).points
    theirs = local.query_points(NAME, **asked).points
    _same_hits(mine, theirs)
    return mine


def _same_groups(mine: models.GroupsResult, theirs: models.GroupsResult) -> None:
    assert [g.id for g in mine.groups] == [g.id for g in theirs.groups]
    for my_group, their_group in zip(mine.groups, theirs.groups, strict=True):
        _same_hits(my_group.hits, their_group.hits)


def _groups(pair: Pair, **asked: Any) -> models.GroupsResult:
    remote, local = pair
    prefetch = asked.get("prefetch")
    remote_asked = dict(asked)
    if prefetch is not None:
        remote_asked["prefetch"] = [p.model_copy(update={"params": EXACT}) for p in prefetch]
    mine = remote.query_points_groups(NAME, consistency=MAJORITY, search_params=EXACT, **remote_asked)
    _same_groups(mine, local.query_points_groups(NAME, **asked))
    return mine


def _vector(seed: int, using: str) -> list[float]:
    values: list[float] = np.random.default_rng(seed).normal(size=SIZES[using]).round(4).tolist()
    return values


# ---- groups ----------------------------------------------------------------------------


def test_query_groups_agree(pair: Pair) -> None:
    only_even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    for seed, using in enumerate(("text", "image", "dot")):
        query = _vector(seed, using)
        found = _groups(pair, query=query, using=using, group_by="group", limit=4, group_size=3)
        assert len(found.groups) == 4 and all(len(g.hits) == 3 for g in found.groups)
        _groups(pair, query=query, using=using, group_by="colour", group_size=5, query_filter=only_even)
        _groups(pair, query=query, using=using, group_by="tags", limit=3, group_size=2, with_payload=["tags"])
    # large groups: more candidates than the first round reads
    _groups(pair, query=_vector(9, "text"), using="text", group_by="even", limit=2, group_size=60)


def test_query_groups_with_prefetch_and_by_id(pair: Pair) -> None:
    prefetch = [
        models.Prefetch(query=_vector(3, "text"), using="text", limit=5),
        models.Prefetch(query=_vector(4, "image"), using="image", limit=5),
    ]
    _groups(pair, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF), group_by="group")
    _groups(pair, query=5, using="dot", group_by="colour", group_size=2)


def test_search_groups_endpoint(pair: Pair, cluster: LocalCluster) -> None:
    _, local = pair
    vector = _vector(7, "image")
    body = {
        "vector": {"name": "image", "vector": vector},
        "group_by": "group",
        "group_size": 2,
        "limit": 3,
        "with_payload": True,
        "params": {"exact": True},
    }
    answer = httpx.post(f"{cluster.router_url}/collections/{NAME}/points/search/groups", json=body)
    assert answer.status_code == 200, answer.text
    mine = models.GroupsResult(**answer.json()["result"])
    theirs = local.query_points_groups(
        NAME, query=vector, using="image", group_by="group", group_size=2, limit=3
    )
    _same_groups(mine, theirs)


def test_groups_bad_input(pair: Pair, cluster: LocalCluster) -> None:
    url = f"{cluster.router_url}/collections/{NAME}/points"
    query = {"query": _vector(1, "text"), "using": "text"}
    cases = [
        (f"{url}/query/groups", {**query, "group_by": ""}, 400, "group_by"),
        (f"{url}/query/groups", {**query, "group_by": "a", "group_size": 0}, 400, "group_size"),
        (f"{url}/query/groups", {**query, "group_by": "a", "with_lookup": "other"}, 501, "with_lookup"),
        (f"{url}/search/groups", {"vector": [0.1] * 8, "group_by": "a", "limit": 3}, 400, "group_size"),
    ]
    for address, body, status, message in cases:
        answer = httpx.post(address, json=body)
        assert answer.status_code == status and message in answer.text, (body, answer.text)


# ---- recommend, discover, context ------------------------------------------------------


@pytest.mark.parametrize("strategy", list(models.RecommendStrategy))
@pytest.mark.parametrize("using", ["text", "image", "dot"])
def test_recommend_agrees(pair: Pair, strategy: models.RecommendStrategy, using: str) -> None:
    examples = [
        models.RecommendInput(positive=[3, 17], negative=[40], strategy=strategy),
        models.RecommendInput(positive=[_vector(11, using), 8], strategy=strategy),
    ]
    if strategy is not models.RecommendStrategy.AVERAGE_VECTOR:
        examples.append(models.RecommendInput(negative=[5, _vector(12, using)], strategy=strategy))
    only_even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    for example in examples:
        found = _both(pair, query=models.RecommendQuery(recommend=example), using=using, limit=7)
        mentioned = {e for e in [*(example.positive or []), *(example.negative or [])] if isinstance(e, int)}
        assert len(found) == 7 and not mentioned & {hit.id for hit in found}
        query = models.RecommendQuery(recommend=example)
        _both(pair, query=query, using=using, limit=4, offset=3, query_filter=only_even, with_payload=True)


def test_recommend_inside_prefetch(pair: Pair) -> None:
    remote, local = pair
    recommend = models.RecommendQuery(
        recommend=models.RecommendInput(positive=[2], strategy=models.RecommendStrategy.BEST_SCORE)
    )
    asked: dict[str, Any] = {"query": _vector(2, "image"), "using": "image", "limit": 5}
    prefetch = models.Prefetch(query=recommend, using="text", limit=30)
    mine = remote.query_points(
        NAME, prefetch=prefetch.model_copy(update={"params": EXACT}), search_params=EXACT, **asked
    )
    _same_hits(mine.points, local.query_points(NAME, prefetch=prefetch, **asked).points)


@pytest.mark.parametrize("using", ["text", "image", "dot"])
def test_discover_agrees(pair: Pair, using: str) -> None:
    pairs = [
        models.ContextPair(positive=1, negative=2),
        models.ContextPair(positive=_vector(21, using), negative=9),
    ]
    discover = models.DiscoverInput(target=4, context=pairs)
    found = _both(pair, query=models.DiscoverQuery(discover=discover), using=using, limit=10)
    assert {1, 2, 4, 9}.isdisjoint(hit.id for hit in found)
    discover = models.DiscoverInput(target=_vector(22, using), context=pairs[:1])
    _both(pair, query=models.DiscoverQuery(discover=discover), using=using, limit=6, offset=2)


@pytest.mark.parametrize("using", ["text", "image", "dot"])
def test_context_agrees(pair: Pair, using: str) -> None:
    """Context scores tie at 0 for every point on the positive side of all pairs: the scores
    agree, and the ids agree up to order among equal scores."""
    remote, local = pair
    query = models.ContextQuery(
        context=[models.ContextPair(positive=10, negative=11), models.ContextPair(positive=12, negative=13)]
    )
    mine = remote.query_points(NAME, query=query, using=using, limit=POINTS, search_params=EXACT).points
    theirs = local.query_points(NAME, query=query, using=using, limit=POINTS).points
    np.testing.assert_allclose([h.score for h in mine], [h.score for h in theirs], rtol=1e-4, atol=1e-5)
    assert sorted(h.id for h in mine) == sorted(h.id for h in theirs)
    assert len(mine) == POINTS - 4 and any(h.score < 0 for h in mine)
    untied = [(h.id, round(h.score, 4)) for h in mine if h.score < 0]
    assert untied == [(h.id, round(h.score, 4)) for h in theirs if h.score < 0]


def test_legacy_recommend_and_discover(pair: Pair, cluster: LocalCluster) -> None:
    _, local = pair
    url = f"{cluster.router_url}/collections/{NAME}/points"
    recommend = {"positive": [3, 4], "negative": [5], "strategy": "sum_scores", "using": "dot", "limit": 5}
    answer = httpx.post(f"{url}/recommend", json={**recommend, "params": {"exact": True}})
    assert answer.status_code == 200, answer.text
    theirs = local.query_points(
        NAME,
        query=models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[3, 4], negative=[5], strategy=models.RecommendStrategy.SUM_SCORES
            )
        ),
        using="dot",
        limit=5,
        with_payload=False,
    ).points
    _same_hits([models.ScoredPoint(**hit) for hit in answer.json()["result"]], theirs)
    batch = httpx.post(f"{url}/recommend/batch", json={"searches": [recommend, recommend]})
    assert batch.status_code == 200 and len(batch.json()["result"]) == 2
    discover = {"target": 6, "context": [{"positive": 7, "negative": 8}], "using": "text", "limit": 4}
    answer = httpx.post(f"{url}/discover", json={**discover, "params": {"exact": True}})
    assert answer.status_code == 200, answer.text
    query = models.DiscoverQuery(
        discover=models.DiscoverInput(target=6, context=[models.ContextPair(positive=7, negative=8)])
    )
    theirs = local.query_points(NAME, query=query, using="text", limit=4, with_payload=False).points
    _same_hits([models.ScoredPoint(**hit) for hit in answer.json()["result"]], theirs)
    batch = httpx.post(f"{url}/discover/batch", json={"searches": [discover]})
    assert batch.status_code == 200 and len(batch.json()["result"]) == 1


def test_lookup_from_in_groups_and_legacy_recommend(pair: Pair, cluster: LocalCluster) -> None:
    """Examples by id read from another collection (an alias of it, for the cluster)."""
    remote, local = pair
    rng = np.random.default_rng(77)
    others = [
        models.PointStruct(id=i, vector={"image": rng.normal(size=6).round(4).tolist()}) for i in range(40)
    ]
    for client in (remote, local):
        client.create_collection("reco-other", vectors_config={"image": DENSE["image"]})
        client.upsert("reco-other", others)
    lookup = models.LookupLocation(collection="reco-other", vector="image")
    recommend = models.RecommendQuery(recommend=models.RecommendInput(positive=[10], negative=[15, 7]))
    found = _groups(pair, query=recommend, using="image", lookup_from=lookup, group_by="group", group_size=3)
    assert found.groups
    url = f"{cluster.router_url}/collections/{NAME}/points/recommend"
    body = {
        "positive": [10],
        "negative": [15, 7],
        "using": "image",
        "lookup_from": {"collection": "reco-other", "vector": "image"},
        "limit": 6,
        "params": {"exact": True},
    }
    answer = httpx.post(url, json=body)
    assert answer.status_code == 200, answer.text
    theirs = local.query_points(
        NAME, query=recommend, using="image", lookup_from=lookup, limit=6, with_payload=False
    ).points
    _same_hits([models.ScoredPoint(**hit) for hit in answer.json()["result"]], theirs)
    absent = httpx.post(url, json={**body, "lookup_from": {"collection": "absent"}})
    assert absent.status_code == 404 and "absent" in absent.text, absent.text


def test_examples_bad_input(pair: Pair) -> None:
    remote, _ = pair
    cases: list[tuple[models.Query, str, int, str]] = [
        (models.RecommendQuery(recommend=models.RecommendInput(negative=[1])), "text", 400, "positive"),
        (
            models.RecommendQuery(recommend=models.RecommendInput(positive=[[0.1] * 3])),
            "text",
            400,
            "dimension",
        ),
        (models.RecommendQuery(recommend=models.RecommendInput(positive=[10_000])), "text", 404, "10000"),
        (models.ContextQuery(context=[]), "text", 400, "context pair"),
    ]
    for query, using, status, message in cases:
        with pytest.raises(UnexpectedResponse) as raised:
            remote.query_points(NAME, query=query, using=using)
        assert raised.value.status_code == status and message in str(raised.value.content), query
