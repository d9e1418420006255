"""Collection aliases on a real 2 x 3 cluster through qdrant-client and the native API: reads
and writes through an alias, an atomic switch (blue-green reindexing), what a second router
sees, listing, and clear errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import another_router, qdrant_test_cluster
from vecstore.launcher.local_cluster import LocalCluster

MAJORITY = models.ReadConsistencyType.MAJORITY
PARAMS = models.VectorParams(size=2, distance=models.Distance.DOT)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from qdrant_test_cluster(tmp_path_factory.mktemp("aliases") / "cluster")


def _status(call: object) -> int:
    with pytest.raises(UnexpectedResponse) as raised:
        call()  # type: ignore[operator]
    return int(raised.value.status_code or 0)


@pytest.fixture(scope="module")
def second_router(cluster: LocalCluster) -> Iterator[str]:
    """Another router of the same cluster (its own copy of the aliases)."""
    yield from another_router(cluster, "alias-router")


def test_alias_switch_redirects_reads_and_writes(cluster: LocalCluster, second_router: str) -> None:
    with closing(QdrantClient(url=cluster.router_url, prefer_grpc=False)) as client:
        for name, count in (("blue", 3), ("green", 5)):
            client.create_collection(name, vectors_config=PARAMS)
            client.upsert(name, [models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(count)])
        client.update_collection_aliases(
            [
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name="blue", alias_name="live")
                )
            ]
        )
        assert client.count("live").count == 3
        client.upsert("live", [models.PointStruct(id=10, vector=[1.0, 1.0])])  # writes go through too
        assert client.count("blue").count == 4
        with closing(QdrantClient(url=second_router, prefer_grpc=False)) as other:
            assert other.count("live").count == 4
            # the switch: both actions in one request, applied together on every shard
            client.update_collection_aliases(
                [
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="live")),
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(collection_name="green", alias_name="live")
                    ),
                ]
            )
            assert client.count("live").count == 5  # the router that switched sees it at once
            deadline = time.monotonic() + 10  # another router re-reads aliases within ~1 s
            while other.count("live").count != 5:
                assert time.monotonic() < deadline, "the other router kept the old alias"
                time.sleep(0.2)
        hits = client.query_points("live", [1.0, 0.0], limit=10, consistency=MAJORITY).points
        assert sorted(h.id for h in hits) == [0, 1, 2, 3, 4]
        assert [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases] == [
            ("live", "green")
        ]
        assert [a.alias_name for a in client.get_collection_aliases("green").aliases] == ["live"]
        assert client.get_collection_aliases("blue").aliases == []
        client.update_collection_aliases(
            [
                models.RenameAliasOperation(
                    rename_alias=models.RenameAlias(old_alias_name="live", new_alias_name="prod")
                )
            ]
        )
        assert client.count("prod").count == 5
        # errors: a missing collection, a name taken by a collection, a missing alias
        create = models.CreateAliasOperation
        assert (
            _status(
                lambda: client.update_collection_aliases(
                    [create(create_alias=models.CreateAlias(collection_name="absent", alias_name="x"))]
                )
            )
            == 404
        )
        assert (
            _status(
                lambda: client.update_collection_aliases(
                    [create(create_alias=models.CreateAlias(collection_name="green", alias_name="blue"))]
                )
            )
            == 409
        )
        assert (
            _status(
                lambda: client.update_collection_aliases(
                    [models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="nope"))]
                )
            )
            == 404
        )
        assert [(a.alias_name, a.collection_name) for a in client.get_aliases().aliases] == [
            ("prod", "green")
        ]
        # dropping the collection drops its aliases
        client.delete_collection("green")
        assert client.get_aliases().aliases == []


def test_native_alias_endpoints(cluster: LocalCluster) -> None:
    url = cluster.router_url
    assert httpx.put(f"{url}/v1/collections/notes-v1", json={"dimension": 2}, timeout=30).status_code == 200
    actions = {"actions": [{"create_alias": {"collection_name": "notes-v1", "alias_name": "notes"}}]}
    answer = httpx.post(f"{url}/v1/aliases", json=actions, timeout=30)
    assert answer.status_code == 200 and answer.json()["aliases"] == {"notes": "notes-v1"}, answer.text
    assert httpx.get(f"{url}/v1/aliases", timeout=30).json()["aliases"] == {"notes": "notes-v1"}
    written = httpx.put(
        f"{url}/v1/collections/notes/points", json={"points": [{"id": 1, "vector": [1, 2]}]}, timeout=30
    )
    assert written.status_code == 200, written.text
    assert httpx.get(f"{url}/v1/collections/notes-v1", timeout=30).json()["points"] == 1
    bad = httpx.post(f"{url}/v1/aliases", json={"actions": [{"swap_alias": {}}]}, timeout=30)
    assert bad.status_code == 400 and "unknown alias action" in bad.json()["error"]
