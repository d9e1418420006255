"""Geo, datetime, full-text, prefix and array-index filters through the Qdrant API of a real
2 x 3 cluster, against qdrant-client's local mode (`QdrantClient(":memory:")`) on the same
points: scroll, count and exact search must select the same points."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime
from typing import Any

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.integration.conftest import started_cluster
from vecstore.launcher.local_cluster import LocalCluster

DIM = 4
POINTS = 800
field = models.FieldCondition
WORDS = ["red", "Green", "blue", "fox", "jumps", "over", "lazy", "dog"]
DATES = [
    "2024-05-01T12:00:00Z",
    "2024-05-01 14:00:00+02:00",
    "2024-05-02",
    "2024-05-01T11:59:59.999",
    "2024-04-30T23:00:00-01",
    "not a date",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(tmp_path_factory.mktemp("qdrant-geo") / "cluster", shards=2)


def payload(rng: random.Random) -> dict[str, Any]:
    """Points around Berlin (some arrays of points, some not points), datetimes, texts."""
    point = {"lon": round(13.4 + rng.uniform(-1, 1), 4), "lat": round(52.5 + rng.uniform(-1, 1), 4)}
    choice: dict[str, Any] = {
        "at": rng.choice(
            [point, point, point, [point, {"lon": 0.0, "lat": 0.0}], {"lon": "13", "lat": 52}, None]
        ),
        "when": rng.choice(DATES),
        "title": rng.choice([" ", "-", ", "]).join(rng.sample(WORDS, rng.randint(1, 4))),
    }
    if rng.random() < 0.7:
        choice["items"] = [{"n": rng.randint(0, 3)} for _ in range(rng.randint(1, 3))]
    return choice


@pytest.fixture(scope="module")
def clients(cluster: LocalCluster) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    rng = random.Random(11)
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
                "geo", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID)
            )
            client.upsert("geo", points, wait=True)
        yield ours, oracle


def ring(*corners: tuple[float, float]) -> models.GeoLineString:
    return models.GeoLineString(
        points=[models.GeoPoint(lon=lon, lat=lat) for lon, lat in [*corners, corners[0]]]
    )


BERLIN = models.GeoPoint(lon=13.4, lat=52.5)
FILTERS = {
    "geo_radius": models.Filter(
        must=[field(key="at", geo_radius=models.GeoRadius(center=BERLIN, radius=20_000))]
    ),
    "geo_bounding_box": models.Filter(
        must=[
            field(
                key="at",
                geo_bounding_box=models.GeoBoundingBox(
                    top_left=models.GeoPoint(lon=13.0, lat=52.8),
                    bottom_right=models.GeoPoint(lon=13.5, lat=52.4),
                ),
            )
        ]
    ),
    "geo_polygon with a hole": models.Filter(
        must=[
            field(
                key="at",
                geo_polygon=models.GeoPolygon(
                    exterior=ring((12.6, 52.0), (14.0, 52.0), (13.4, 53.2)),
                    interiors=[ring((13.2, 52.3), (13.6, 52.3), (13.6, 52.7), (13.2, 52.7))],
                ),
            )
        ]
    ),
    "geo_radius on array elements": models.Filter(
        must=[field(key="at[]", geo_radius=models.GeoRadius(center=models.GeoPoint(lon=0, lat=0), radius=1))]
    ),
    "datetime range": models.Filter(
        must=[
            field(
                key="when",
                range=models.DatetimeRange(
                    gte=datetime(2024, 5, 1, 12, tzinfo=UTC), lt=datetime(2024, 5, 2, tzinfo=UTC)
                ),
            )
        ]
    ),
    "datetime range, date only": models.Filter(
        must=[field(key="when", range=models.DatetimeRange(gte=date(2024, 5, 2)))]
    ),
    "text": models.Filter(must=[field(key="title", match=models.MatchText(text="fox DOG"))]),
    "text_any": models.Filter(must=[field(key="title", match=models.MatchTextAny(text_any="green lazy"))]),
    "phrase": models.Filter(must=[field(key="title", match=models.MatchPhrase(phrase="jumps over"))]),
    "prefix": models.Filter(must=[field(key="title", match=models.MatchPrefix(prefix="red"))]),
    "array index key": models.Filter(must=[field(key="items[0].n", match=models.MatchValue(value=2))]),
    "array wildcard key": models.Filter(must=[field(key="items[].n", range=models.Range(gte=3))]),
    "geo and text together": models.Filter(
        must=[field(key="at", geo_radius=models.GeoRadius(center=BERLIN, radius=60_000))],
        must_not=[field(key="title", match=models.MatchText(text="red"))],
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_same_points_as_local_mode(clients: tuple[QdrantClient, QdrantClient], name: str) -> None:
    ours, oracle = clients
    condition = FILTERS[name]
    expected = sorted(int(p.id) for p in oracle.scroll("geo", scroll_filter=condition, limit=POINTS)[0])
    assert 0 < len(expected) < POINTS, "the data must make the filter selective"
    got = sorted(int(p.id) for p in ours.scroll("geo", scroll_filter=condition, limit=POINTS)[0])
    assert got == expected
    assert ours.count("geo", count_filter=condition, exact=True).count == len(expected)
    query = [0.5] * DIM
    exact = models.SearchParams(exact=True)
    want = oracle.query_points("geo", query=query, query_filter=condition, limit=10)  # always exact
    have = ours.query_points("geo", query=query, query_filter=condition, limit=10, search_params=exact)
    assert [p.id for p in have.points] == [p.id for p in want.points]


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        (
            field(key="at", geo_radius=models.GeoRadius(center=models.GeoPoint(lon=0, lat=95), radius=1)),
            "lat",
        ),
        (
            field(
                key="at",
                geo_polygon=models.GeoPolygon(exterior=models.GeoLineString(points=[BERLIN, BERLIN])),
            ),
            "at least 4 points",
        ),
    ],
)
def test_bad_filters_are_400s(
    clients: tuple[QdrantClient, QdrantClient], condition: models.FieldCondition, fragment: str
) -> None:
    ours, _ = clients
    with pytest.raises(UnexpectedResponse) as raised:
        ours.count("geo", count_filter=models.Filter(must=[condition]))
    assert raised.value.status_code == 400
    assert fragment in raised.value.content.decode()


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"key": "when", "range": {"gt": "2024-99-01"}}, "RFC 3339"),
        ({"key": "when", "range": {"gt": "2024-01-01", "lt": 5}}, "mixes datetime strings and numbers"),
        ({"key": "at", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 0}}}, "expects fields"),
        ({"key": "items[x].n", "match": {"value": 1}}, "not a payload path"),
    ],
)
def test_bad_raw_filters_are_400s(
    cluster: LocalCluster,
    clients: tuple[QdrantClient, QdrantClient],
    condition: dict[str, Any],
    fragment: str,
) -> None:
    # qdrant-client validates these itself: sent as raw JSON (to the collection `clients` made)
    body = json.dumps({"filter": {"must": [condition]}}).encode()
    request = urllib.request.Request(
        f"{cluster.router_url}/collections/geo/points/count", body, {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 400
    assert fragment in raised.value.read().decode()
