"""Facet counts and order_by pairs of one shard (`shard.ordering`) against brute force over
the payloads, across a sealed segment, payload changes and deletes."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from vecstore.cluster.commands import (
    CreateCollection,
    DeletePoints,
    Selector,
    SetPayload,
    SetPayloadIndex,
    Upsert,
)
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.ids import point_id_sort_key
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard import ordering
from vecstore.shard.state import Shard

IDS: list[int | str] = [*range(30), *(str(uuid.UUID(int=n * 7919)) for n in range(1, 11))]


def payload(position: int) -> dict[str, object]:
    return {
        "color": ["red", "blue", "green"][position % 3],
        "n": position % 4,
        "flag": position % 2 == 0,
        "tags": ["a", "a", "b"] if position % 5 == 0 else ["a"],
        "price": [position * 1.5, 100 - position] if position % 7 == 0 else position * 1.5,
        "day": f"2024-02-{1 + position % 20:02d}T12:00:00Z",
        "mixed": [1, True, "1"],
    }


@pytest.fixture
def loaded(shard: Shard) -> Shard:
    shard.apply(CreateCollection(CollectionSchema("c", 2)))
    half = len(IDS) // 2
    for chunk in (range(half), range(half, len(IDS))):
        ids = [IDS[p] for p in chunk]
        shard.apply(Upsert.build("c", ids, np.ones((len(ids), 2)), [payload(p) for p in chunk]))
        shard.maintain(force=True)
    shard.apply(SetPayload("c", Selector.of_ids([1, 2]), {"color": "red"}))
    shard.apply(DeletePoints("c", Selector.of_ids([3, IDS[-1]])))
    for key, kind in (
        ("color", "keyword"),
        ("n", "integer"),
        ("flag", "bool"),
        ("tags", "keyword"),
        ("price", "float"),
        ("day", "datetime"),
        ("mixed", "integer"),
    ):
        shard.apply(SetPayloadIndex.build("c", key, kind))
    return shard


def live_payloads() -> dict[int | str, dict[str, object]]:
    found = {point: payload(p) for p, point in enumerate(IDS) if point not in (3, IDS[-1])}
    for point in (1, 2):
        found[point] = {**found[point], "color": "red"}
    return found


def test_facet_counts_each_value_once_per_point(loaded: Shard) -> None:
    collection = loaded.collection("c")
    points = live_payloads()
    colors = dict(ordering.facet_counts(collection, "color", None))
    assert colors == {c: sum(1 for p in points.values() if p["color"] == c) for c in ("red", "blue", "green")}
    assert dict(ordering.facet_counts(collection, "tags", None)) == {"a": len(points), "b": 8}
    flags = ordering.facet_counts(collection, "flag", None)
    trues = sum(1 for p in points.values() if p["flag"])
    assert sorted(flags) == [(False, len(points) - trues), (True, trues)]
    assert all(isinstance(v, bool) for v, _ in flags)
    # an integer index counts integers only: True and "1" are not the integer 1
    assert ordering.facet_counts(collection, "mixed", None) == [(1, len(points))]
    condition = parse_filter({"must": [{"key": "n", "match": {"value": 0}}]})
    expected = sum(1 for p in points.values() if p["n"] == 0 and p["color"] == "red")
    assert dict(ordering.facet_counts(collection, "color", condition))["red"] == expected


def test_facet_and_order_by_need_an_index_of_the_right_type(loaded: Shard) -> None:
    collection = loaded.collection("c")
    with pytest.raises(InvalidRequest, match="No appropriate index for faceting: `price`"):
        ordering.facet_counts(collection, "price", None)
    with pytest.raises(InvalidRequest, match="No appropriate index for faceting: `nothing`"):
        ordering.facet_counts(collection, "nothing", None)
    with pytest.raises(InvalidRequest, match="No range index for `order_by` key: `color`"):
        ordering.ordered_points(collection, ordering.OrderBy("color"), None, 5)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("start", [None, 20, 20.5])
def test_ordered_points_match_brute_force(loaded: Shard, descending: bool, start: float | None) -> None:
    pairs = set()
    for point, values in live_payloads().items():
        prices = values["price"] if isinstance(values["price"], list) else [values["price"]]
        for price in prices:
            assert isinstance(price, (int, float))
            if start is None or (price <= start if descending else price >= start):
                pairs.add((price, point))
    expected = sorted(pairs, key=lambda p: (-p[0] if descending else p[0], point_id_sort_key(p[1])))
    order = ordering.OrderBy("price", descending, start)
    got = ordering.ordered_points(loaded.collection("c"), order, None, 1000)
    assert got == expected
    assert ordering.ordered_points(loaded.collection("c"), order, None, 4) == expected[:4]


def test_ordered_points_by_datetime_with_a_filter(loaded: Shard) -> None:
    order = ordering.OrderBy("day", True, "2024-02-10T12:00:00Z")
    condition = parse_filter({"must": [{"key": "color", "match": {"value": "red"}}]})
    got = ordering.ordered_points(loaded.collection("c"), order, condition, 100)
    days = [value for value, _ in got]
    assert days == sorted(days, reverse=True) and got
    assert max(days) == ordering.order_value("datetime", "2024-02-10T12:00:00Z")
    reds = {point for point, p in live_payloads().items() if p["color"] == "red"}
    assert {point for _, point in got} <= reds


def test_order_by_from_dict_refuses_malformed(loaded: Shard) -> None:
    for raw, message in [
        ("price", "order_by must be an object"),
        ({"key": "price", "direction": "sideways"}, "direction must be asc or desc"),
        ({"key": "price", "start_from": "never"}, "start_from must be a number"),
        ({"key": "a..b"}, "not a valid payload key"),
        ({"key": None}, "must be a payload key"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            ordering.OrderBy.from_dict(raw)
