"""The router's merge of per-shard facet counts and order_by pages, and order_by parsing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from vecstore.cluster.errors import InvalidRequest
from vecstore.router.ordered import merge_facets, merge_ordered, order_by_of, payload_key


def test_merge_facets_sums_and_breaks_ties_by_value() -> None:
    shards: list[list[list[Any]]] = [
        [["red", 3], ["blue", 2], [1, 5]],
        [["blue", 1], ["green", 3], [True, 4], [1, 1]],
    ]
    merged = merge_facets(shards, 10)
    assert merged == [
        {"value": 1, "count": 6},
        {"value": True, "count": 4},
        {"value": "blue", "count": 3},
        {"value": "green", "count": 3},
        {"value": "red", "count": 3},
    ]
    assert isinstance(merged[1]["value"], bool)  # True is not counted with 1
    assert merge_facets(shards, 2) == merged[:2]
    assert merge_facets([], 3) == []


def test_merge_ordered_by_value_then_id() -> None:
    later = str(uuid.UUID(int=5))
    first: list[list[Any]] = [[1, 4], [2.5, 9], [7, 1]]
    second: list[list[Any]] = [[1, 2], [2.5, later], [3, 3]]
    assert merge_ordered([first, second], False, 10) == [
        (1, 2),
        (1, 4),
        (2.5, 9),
        (2.5, later),
        (3, 3),
        (7, 1),
    ]
    down_first: list[list[Any]] = [[7, 1], [2.5, 9], [1, 4]]
    down_second: list[list[Any]] = [[3, 3], [2.5, later], [1, 2]]
    assert merge_ordered([down_first, down_second], True, 3) == [(7, 1), (3, 3), (2.5, 9)]
    assert merge_ordered([[], first], False, 1) == [(1, 4)]


def test_order_by_of_accepts_qdrants_forms() -> None:
    assert order_by_of("price") == {"key": "price", "direction": "asc", "start_from": None}
    given = {"key": "a.b[0]", "direction": "desc", "start_from": "2024-01-01T00:00:00Z"}
    assert order_by_of(given) == given
    assert order_by_of({"key": "x", "direction": None, "start_from": 3})["direction"] == "asc"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (3, "order_by must be a payload key or an object"),
        ({"key": "x", "direction": "up"}, "direction must be asc or desc"),
        ({"key": "x", "start_from": "2024-13-45"}, "start_from must be a number or an RFC 3339"),
        ({"key": "x", "start_from": True}, "start_from must be"),
        ({"key": "x", "other": 1}, "unknown field"),
        ({"direction": "asc"}, "order_by.key must be a payload key"),
        ("a..b", "is not a valid payload key"),
    ],
)
def test_order_by_of_refuses_malformed(raw: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        order_by_of(raw)


def test_payload_key() -> None:
    assert payload_key('"dotted.name".x', "key") == '"dotted.name".x'
    with pytest.raises(InvalidRequest, match="key must be a payload key"):
        payload_key(["a"], "key")
