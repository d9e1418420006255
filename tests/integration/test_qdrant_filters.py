"""is_null, values_count, nested and min_should through the Qdrant API of a real 2 x 3
cluster, against qdrant-client's local mode (`QdrantClient(":memory:")`) on the same points:
count, scroll and exact search must select the same points."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from tests.integration.conftest import started_cluster
from vecstore.launcher.local_cluster import LocalCluster

DIM = 4
POINTS = 300
field = models.FieldCondition


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(tmp_path_factory.mktemp("qdrant-filters") / "cluster", shards=2)


def payload(rng: random.Random) -> dict[str, Any]:
    """Nulls, arrays with nulls, arrays of objects, missing fields."""
    # "tags" is always present: for a missing field this qdrant-client's local mode counts 0
    # values where Qdrant matches nothing (docs/filters.md)
    choice: dict[str, Any] = {"tags": rng.choice([None, [], ["a"], ["a", "b"], ["a", None], [None], "a"])}
    if rng.random() < 0.8:
        choice["parts"] = [
            {"kind": rng.choice(["bolt", "nut"]), "size": rng.choice([None, 1, 2, 3])}
            for _ in range(rng.randint(0, 3))
        ]
    if rng.random() < 0.5:
        choice["owner"] = rng.choice([None, "ann", "bob"])
    return choice


@pytest.fixture(scope="module")
def clients(cluster: LocalCluster) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    rng = random.Random(7)
    points = [
        models.PointStruct(id=i, vector=[rng.random() + 0.01 for _ in range(DIM)], payload=payload(rng))
        for i in range(POINTS)
    ]
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as ours,
        closing(QdrantClient(":memory:")) as oracle,
    ):
        for client in (ours, oracle):
            client.create_collection(
                "filters", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID)
            )
            client.upsert("filters", points, wait=True)
        yield ours, oracle


FILTERS = {
    "is_null": models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="tags"))]),
    "is_null field false": models.Filter(must=[field(key="owner", is_null=False)]),
    "values_count": models.Filter(must=[field(key="tags", values_count=models.ValuesCount(gte=2))]),
    "values_count, with nulls and empty arrays": models.Filter(
        must=[field(key="tags", values_count=models.ValuesCount(lt=1))],
    ),
    "nested": models.Filter(
        must=[
            models.NestedCondition(
                nested=models.Nested(
                    key="parts",
                    filter=models.Filter(
                        must=[
                            field(key="kind", match=models.MatchValue(value="bolt")),
                            field(key="size", range=models.Range(gte=2)),
                        ]
                    ),
                )
            )
        ]
    ),
    "nested with must_not null": models.Filter(
        must_not=[
            models.NestedCondition(
                nested=models.Nested(
                    key="parts[]",
                    filter=models.Filter(
                        must=[models.IsNullCondition(is_null=models.PayloadField(key="size"))]
                    ),
                )
            )
        ]
    ),
    "min_should": models.Filter(
        min_should=models.MinShould(
            conditions=[
                field(key="owner", match=models.MatchValue(value="ann")),
                field(key="tags", match=models.MatchAny(any=["b"])),
                field(key="parts", values_count=models.ValuesCount(gte=2)),
            ],
            min_count=2,
        )
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_same_points_as_local_mode(clients: tuple[QdrantClient, QdrantClient], name: str) -> None:
    ours, oracle = clients
    condition = FILTERS[name]
    expected = sorted(int(p.id) for p in oracle.scroll("filters", scroll_filter=condition, limit=POINTS)[0])
    assert 0 < len(expected) < POINTS, "the data must make the filter selective"
    got = sorted(int(p.id) for p in ours.scroll("filters", scroll_filter=condition, limit=POINTS)[0])
    assert got == expected
    assert ours.count("filters", count_filter=condition, exact=True).count == len(expected)
    query = [0.5] * DIM
    exact = models.SearchParams(exact=True)
    want = oracle.query_points("filters", query=query, query_filter=condition, limit=10)  # always exact
    have = ours.query_points("filters", query=query, query_filter=condition, limit=10, search_params=exact)
    assert [p.id for p in have.points] == [p.id for p in want.points]
