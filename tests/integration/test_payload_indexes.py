"""Payload index declarations (Qdrant's create_payload_index / delete_payload_index and the
native /v1/.../index) on a real 2 x 3 cluster: recorded on every shard, reported with the
points each covers in `payload_schema`, removed again, and refused clearly when malformed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import qdrant_test_cluster
from vecstore.launcher.local_cluster import LocalCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("payload-indexes") / "cluster")


def test_declared_indexes_are_reported_with_their_points_and_removed(cluster: LocalCluster) -> None:
    with closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as client:
        client.create_collection(
            "shop", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
        )
        points = [
            models.PointStruct(
                id=i,
                vector=[1.0, float(i)],
                payload={
                    "color": ["red", "blue"][i % 2],
                    **({"price": i} if i % 3 else {}),
                    "tags": [None] if i == 4 else [],
                },
            )
            for i in range(30)
        ]
        client.upsert("shop", points)
        client.create_payload_index("shop", "color", models.PayloadSchemaType.KEYWORD, wait=True)
        client.create_payload_index("shop", "price", models.PayloadSchemaType.INTEGER)
        text = models.TextIndexParams(
            type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True
        )
        client.create_payload_index("shop", "title", text)
        schema = client.get_collection("shop").payload_schema
        assert sorted(schema) == ["color", "price", "title"]
        assert schema["color"].data_type == models.PayloadSchemaType.KEYWORD and schema["color"].points == 30
        assert schema["price"].points == sum(1 for i in range(30) if i % 3)  # points with a value
        assert schema["title"].points == 0
        assert isinstance(schema["title"].params, models.TextIndexParams) and schema["title"].params.lowercase
        # filters answer the same with the index declared (VecStore indexes every key anyway)
        red = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
        assert client.count("shop", red).count == 15
        client.delete_payload_index("shop", "price")
        assert sorted(client.get_collection("shop").payload_schema) == ["color", "title"]
        bad = {"field_name": "x", "field_schema": "vector"}  # qdrant-client would refuse to send it
        answer = httpx.put(f"{cluster.router_url}/collections/shop/index", json=bad, timeout=30)
        assert answer.status_code == 400 and "field_schema must be one of" in answer.json()["status"]["error"]
        with pytest.raises(UnexpectedResponse) as raised:
            client.create_payload_index("absent", "x", models.PayloadSchemaType.KEYWORD)
        assert raised.value.status_code == 404


def test_native_index_endpoints(cluster: LocalCluster) -> None:
    url = cluster.router_url
    created = httpx.put(f"{url}/v1/collections/notes", json={"dimension": 2}, timeout=30)
    assert created.status_code == 200, created.text
    answer = httpx.put(
        f"{url}/v1/collections/notes/index", json={"key": "lang", "schema": "keyword"}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()["changed"] is True, answer.text
    info = httpx.get(f"{url}/v1/collections/notes", timeout=30).json()
    assert info["payload_fields"] == {"lang": {"schema": {"type": "keyword"}, "points": 0}}
    bad = httpx.put(f"{url}/v1/collections/notes/index", json={"key": "lang", "schema": "colour"}, timeout=30)
    assert bad.status_code == 400 and "field_schema must be one of" in bad.json()["error"]
    dropped = httpx.delete(f"{url}/v1/collections/notes/index/lang", timeout=30)
    assert dropped.status_code == 200 and dropped.json()["changed"] is True
    assert httpx.get(f"{url}/v1/collections/notes", timeout=30).json()["payload_fields"] == {}
