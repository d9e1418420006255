"""Qdrant's points/batch, facet and scroll with order_by on a real 2 x 3 cluster, congruent
with qdrant-client's local mode (`QdrantClient(":memory:")`), and their refusals."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import qdrant_test_cluster
from vecstore.launcher.local_cluster import LocalCluster

VECTORS = models.VectorParams(size=2, distance=models.Distance.DOT)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("batch-facet-order") / "cluster")


@pytest.fixture
def clients(cluster: LocalCluster) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    with (
        closing(QdrantClient(url=cluster.router_url, prefer_grpc=False, timeout=60)) as remote,
        closing(QdrantClient(":memory:")) as local,
    ):
        yield remote, local


def both(clients: tuple[QdrantClient, QdrantClient], method: str, *args: Any, **kwargs: Any) -> list[Any]:
    return [getattr(client, method)(*args, **kwargs) for client in clients]


def shop_points() -> list[models.PointStruct]:
    colors = ["red", "blue", "green", "red", "red", "blue"]
    return [
        models.PointStruct(
            id=i,
            vector=[1.0, float(i)],
            payload={
                "color": colors[i % len(colors)],
                "size": i % 4,
                "tags": ["a", "b"] if i % 5 == 0 else ["a"],
                "price": 1000 - 7 * i + (0.5 if i % 2 else 0.0),  # distinct values
                "day": f"2024-01-{1 + i % 28:02d}T00:00:{i:02d}Z",  # distinct values
                "scores": [i, 100 + i],
            },
        )
        for i in range(40)
    ]


def make_shop(clients: tuple[QdrantClient, ...], name: str) -> None:
    for client in clients:
        client.create_collection(name, vectors_config=VECTORS)
        client.upsert(name, shop_points())
        for key, kind in (
            ("color", models.PayloadSchemaType.KEYWORD),
            ("size", models.PayloadSchemaType.INTEGER),
            ("tags", models.PayloadSchemaType.KEYWORD),
            ("price", models.PayloadSchemaType.FLOAT),
            ("day", models.PayloadSchemaType.DATETIME),
            ("scores", models.PayloadSchemaType.INTEGER),
        ):
            with warnings.catch_warnings():  # local mode warns that it has no payload indexes
                warnings.simplefilter("ignore", UserWarning)
                client.create_payload_index(name, key, kind)


def everything(client: QdrantClient, name: str) -> list[tuple[Any, Any, Any]]:
    points, _ = client.scroll(name, limit=1000, with_payload=True, with_vectors=True)
    return [(p.id, p.payload, p.vector) for p in points]


def test_batch_operations_apply_in_order_like_local_mode(clients: tuple[QdrantClient, QdrantClient]) -> None:
    for client in clients:
        client.create_collection("batch", vectors_config=VECTORS)
    selected = models.PointIdsList(points=[1, 2])
    red = models.Filter(must=[models.FieldCondition(key="c", match=models.MatchValue(value="red"))])
    operations: list[models.UpdateOperation] = [
        models.UpsertOperation(
            upsert=models.PointsList(
                points=[
                    models.PointStruct(
                        id=i, vector=[float(i), 1.0], payload={"c": "red" if i % 2 else "blue"}
                    )
                    for i in range(1, 7)
                ]
            )
        ),
        models.UpsertOperation(
            upsert=models.PointsBatch(batch=models.Batch(ids=[7, 8], vectors=[[7.0, 0.0], [8.0, 0.0]]))
        ),
        models.DeleteOperation(delete=models.PointIdsList(points=[6])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"x": 1}, filter=red)),
        models.OverwritePayloadOperation(
            overwrite_payload=models.SetPayload(payload={"only": True}, points=[4])
        ),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["c"], points=[3])),
        models.ClearPayloadOperation(clear_payload=selected),
        models.UpsertOperation(
            upsert=models.PointsList(
                points=[models.PointStruct(id=2, vector=[2.0, 2.0], payload={"c": "new"})]
            )
        ),
        models.DeleteOperation(delete=models.FilterSelector(filter=red)),
    ]
    remote, local = clients
    answer = remote.batch_update_points("batch", operations)
    local.batch_update_points("batch", operations)
    assert [result.status for result in answer] == [models.UpdateStatus.COMPLETED] * len(operations)
    expected = everything(local, "batch")
    assert everything(remote, "batch") == expected
    assert [row[0] for row in expected] == [1, 2, 3, 4, 7, 8]  # 5 was still red at the filter delete


def test_batch_with_named_vectors(clients: tuple[QdrantClient, QdrantClient]) -> None:
    for client in clients:
        client.create_collection(
            "named_batch",
            vectors_config={
                "a": models.VectorParams(size=2, distance=models.Distance.DOT),
                "b": models.VectorParams(size=3, distance=models.Distance.DOT),
            },
        )
    operations: list[models.UpdateOperation] = [
        models.UpsertOperation(
            upsert=models.PointsList(
                points=[
                    models.PointStruct(id=i, vector={"a": [1.0, float(i)], "b": [0.0, 1.0, float(i)]})
                    for i in range(4)
                ]
            )
        ),
        models.UpdateVectorsOperation(
            update_vectors=models.UpdateVectors(points=[models.PointVectors(id=1, vector={"a": [9.0, 9.0]})])
        ),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[2], vector=["b"])),
    ]
    both(clients, "batch_update_points", "named_batch", operations)
    remote, local = clients
    assert everything(remote, "named_batch") == everything(local, "named_batch")


def test_batch_refusals(cluster: LocalCluster, clients: tuple[QdrantClient, QdrantClient]) -> None:
    url = f"{cluster.router_url}/collections"
    remote, _ = clients
    remote.create_collection("refused_batch", vectors_config=VECTORS)
    good = {"upsert": {"points": [{"id": 1, "vector": [1.0, 2.0]}]}}
    malformed = [
        ({"operations": [good, {"explode": {}}]}, "operations[1] must be an object with exactly one of"),
        ({"operations": [good, {"upsert": {}, "delete": {"points": [1]}}]}, "exactly one of"),
        ({"operations": [good, {"delete": {"points": "x"}}]}, "operations[1] (delete)"),
        ({"operations": "upsert"}, "operations must be a list"),
        ({"ops": []}, "unknown field(s) ['ops']"),
    ]
    for body, message in malformed:
        answer = httpx.post(f"{url}/refused_batch/points/batch", json=body, timeout=30)
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["status"]["error"]
    assert remote.count("refused_batch").count == 0  # a malformed batch applies nothing
    # a failure while applying stops the rest and says how many ran
    wrong_dimension = {"upsert": {"points": [{"id": 2, "vector": [1.0, 2.0, 3.0]}]}}
    after = {"upsert": {"points": [{"id": 3, "vector": [1.0, 2.0]}]}}
    answer = httpx.post(
        f"{url}/refused_batch/points/batch", json={"operations": [good, wrong_dimension, after]}, timeout=30
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["status"]["error"]
    assert "operations[1] (upsert) failed" in error and "the 1 operation(s) before it were applied" in error
    assert answer.json()["result"]["operations_applied"] == 1
    assert sorted(p.id for p in remote.scroll("refused_batch")[0]) == [1]
    missing = httpx.post(f"{url}/absent/points/batch", json={"operations": [good]}, timeout=30)
    assert missing.status_code == 404


def test_facet_matches_local_mode(clients: tuple[QdrantClient, QdrantClient]) -> None:
    make_shop(clients, "facets")
    remote, local = clients
    blue = models.Filter(must_not=[models.FieldCondition(key="color", match=models.MatchValue(value="blue"))])
    cases: list[dict[str, Any]] = [
        {"key": "color"},
        {"key": "color", "limit": 2},
        {"key": "size"},
        {"key": "size", "facet_filter": blue, "exact": True},
        {"key": "tags"},  # a point counts once per distinct value
        {"key": "color", "facet_filter": models.Filter(must=[models.HasIdCondition(has_id=[1, 2, 3])])},
    ]
    for case in cases:
        got, expected = remote.facet("facets", **case), local.facet("facets", **case)
        assert got.hits == expected.hits, case
    assert remote.facet("facets", "color").hits[0] == models.FacetValueHit(value="red", count=20)


def test_facet_refusals(cluster: LocalCluster, clients: tuple[QdrantClient, QdrantClient]) -> None:
    remote, _ = clients
    make_shop((remote,), "facet_refusals")
    with pytest.raises(UnexpectedResponse) as raised:
        remote.facet("facet_refusals", "price")  # a float index: no facet
    assert raised.value.status_code == 400
    assert "No appropriate index for faceting: `price`" in raised.value.content.decode()
    url = f"{cluster.router_url}/collections/facet_refusals/facet"
    for body, message in [
        ({"key": "unindexed"}, "No appropriate index for faceting"),
        ({"key": "color", "limit": 0}, "limit must be an integer"),
        ({"key": 3}, "key must be a payload key"),
        ({"key": "a..b"}, "is not a valid payload key"),
        ({"key": "color", "exact": "yes"}, "exact must be true or false"),
        ({}, "key must be a payload key"),
    ]:
        answer = httpx.post(url, json=body, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert message in answer.json()["status"]["error"]
    assert httpx.post(f"{cluster.router_url}/collections/absent/facet", json={"key": "c"}).status_code == 404


def test_scroll_order_by_matches_local_mode(clients: tuple[QdrantClient, QdrantClient]) -> None:
    make_shop(clients, "ordered")
    even = models.Filter(must=[models.FieldCondition(key="size", match=models.MatchAny(any=[0, 2]))])
    cases: list[dict[str, Any]] = [
        {"order_by": "price", "limit": 10},
        {"order_by": models.OrderBy(key="price", direction=models.Direction.DESC), "limit": 15},
        {"order_by": models.OrderBy(key="price", start_from=900), "limit": 50},
        {"order_by": models.OrderBy(key="price", direction=models.Direction.DESC, start_from=900.5)},
        {"order_by": models.OrderBy(key="day", direction=models.Direction.DESC), "limit": 12},
        {"order_by": models.OrderBy(key="day", start_from=datetime(2024, 1, 20, tzinfo=UTC)), "limit": 7},
        {"order_by": "price", "scroll_filter": even, "limit": 100, "with_vectors": True},
        {"order_by": "scores", "limit": 60},  # a point once per value
        {"order_by": models.OrderBy(key="scores", direction=models.Direction.DESC), "limit": 5},
    ]
    for case in cases:
        (got, got_next), (expected, expected_next) = both(clients, "scroll", "ordered", **case)
        assert got_next is None and expected_next is None
        assert [(p.id, p.order_value, p.payload, p.vector) for p in got] == [
            (p.id, p.order_value, p.payload, p.vector) for p in expected
        ], case
        assert got, case


def test_order_by_refusals(cluster: LocalCluster, clients: tuple[QdrantClient, QdrantClient]) -> None:
    remote, _ = clients
    make_shop((remote,), "order_refusals")
    with pytest.raises(UnexpectedResponse) as raised:
        remote.scroll("order_refusals", order_by="color")  # a keyword index: no order
    assert raised.value.status_code == 400
    assert "No range index for `order_by` key: `color`" in raised.value.content.decode()
    url = f"{cluster.router_url}/collections/order_refusals/points/scroll"
    for body, message in [
        ({"order_by": "unindexed"}, "No range index for `order_by` key"),
        ({"order_by": {"key": "price", "direction": "up"}}, "order_by.direction must be asc or desc"),
        ({"order_by": {"key": "price", "start_from": "yesterday"}}, "order_by.start_from must be"),
        ({"order_by": {"key": "price", "start_from": "2024-99-99"}}, "order_by.start_from must be"),
        ({"order_by": {"key": "price", "extra": 1}}, "unknown field(s) ['extra'] in order_by"),
        ({"order_by": 5}, "order_by must be a payload key"),
        ({"order_by": "price", "offset": 3}, "offset is not supported with order_by"),
    ]:
        answer = httpx.post(url, json=body, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert message in answer.json()["status"]["error"]
