"""Filter semantics on payloads: nested keys, flattened arrays, strict equality, emptiness."""

from __future__ import annotations

from typing import Any

import pytest

from vecstore.cluster.filters import parse_filter
from vecstore.shard.payload_filter import field_values, matches, values_equal

UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"

PAYLOAD: dict[str, Any] = {
    "title": "The black cat",
    "year": 2001,
    "score": 4.5,
    "flag": True,
    "count": 1,
    "one_text": "1",
    "tags": ["red", "green", 7],
    "empty_list": [],
    "nothing": None,
    "meta": {"author": {"name": "Ann", "age": 40}, "langs": ["en", "fr"]},
    "authors": [{"name": "Bo", "age": 31}, {"name": "Cy", "ages": [5, 6]}, {"name": ["Di", "Ed"]}],
    "matrix": [[1, 2], [3, None]],
    "obj": {},
}


def check(condition: dict[str, Any], point_id: int | str = 1, payload: dict[str, Any] = PAYLOAD) -> bool:
    return matches(parse_filter({"must": [condition]}), point_id, payload)


def test_field_values_walks_nested_objects_and_flattens_arrays() -> None:
    assert field_values(PAYLOAD, "meta.author.name") == ["Ann"]
    assert field_values(PAYLOAD, "meta.langs") == ["en", "fr"]
    assert field_values(PAYLOAD, "authors.name") == ["Bo", "Cy", "Di", "Ed"]
    assert field_values(PAYLOAD, "authors.ages") == [5, 6]
    assert field_values(PAYLOAD, "matrix") == [1, 2, 3]
    assert field_values(PAYLOAD, "nothing") == []
    assert field_values(PAYLOAD, "missing.deeper") == []
    assert field_values(PAYLOAD, "title.length") == []


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"key": "meta.author.name", "match": {"value": "Ann"}}, True),
        ({"key": "meta.author.name", "match": {"value": "ann"}}, False),
        ({"key": "meta.author.age", "range": {"gte": 40, "lt": 41}}, True),
        ({"key": "authors.name", "match": {"value": "Cy"}}, True),
        ({"key": "authors.name", "match": {"value": "Ed"}}, True),
        ({"key": "authors.age", "range": {"gt": 35}}, False),
        ({"key": "authors.ages", "match": {"value": 6}}, True),
        ({"key": "matrix", "match": {"value": 3}}, True),
        ({"key": "tags", "match": {"value": "green"}}, True),
        ({"key": "tags", "match": {"any": ["blue", 7]}}, True),
        ({"key": "tags", "match": {"any": ["blue"]}}, False),
        ({"key": "tags", "match": {"except": ["red", "green"]}}, True),
        ({"key": "tags", "match": {"except": ["red", "green", 7]}}, False),
        ({"key": "year", "match": {"except": [1999]}}, True),
        ({"key": "year", "match": {"except": [2001]}}, False),
        ({"key": "tags", "op": "!=", "value": "red"}, True),
        ({"key": "year", "op": "!=", "value": 2001}, False),
        ({"key": "year", "op": "==", "value": 2001.0}, True),
        ({"key": "score", "op": ">", "value": 4}, True),
        ({"key": "score", "op": "<=", "value": 4.5}, True),
        ({"key": "score", "op": "<", "value": 4.5}, False),
        ({"key": "title", "range": {"gt": 0}}, False),
        ({"key": "title", "op": "!=", "value": 5}, True),
    ],
)
def test_conditions_on_nested_and_array_fields(condition: dict[str, Any], expected: bool) -> None:
    assert check(condition) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"key": "flag", "match": {"value": 1}}, False),
        ({"key": "flag", "match": {"value": True}}, True),
        ({"key": "count", "match": {"value": True}}, False),
        ({"key": "count", "match": {"value": 1}}, True),
        ({"key": "count", "match": {"value": "1"}}, False),
        ({"key": "one_text", "match": {"value": 1}}, False),
        ({"key": "one_text", "match": {"value": "1"}}, True),
        ({"key": "flag", "match": {"any": [1, 0]}}, False),
        ({"key": "count", "match": {"any": [True]}}, False),
        ({"key": "flag", "range": {"gte": 0}}, False),
        ({"key": "flag", "op": ">", "value": 0}, False),
        ({"key": "count", "contains": True}, False),
    ],
)
def test_booleans_numbers_and_strings_never_equal(condition: dict[str, Any], expected: bool) -> None:
    assert check(condition) is expected


def test_values_equal_directly() -> None:
    assert values_equal(1, 1.0)
    assert not values_equal(True, 1)
    assert not values_equal(0, False)
    assert not values_equal("a", 1)
    assert values_equal("a", "a")
    assert not values_equal({"a": 1}, 1)


@pytest.mark.parametrize(
    "condition",
    [
        {"key": "missing", "match": {"value": 1}},
        {"key": "missing", "match": {"any": [1, "x"]}},
        {"key": "missing", "match": {"except": [1]}},
        {"key": "missing", "op": "!=", "value": 1},
        {"key": "missing", "range": {"gt": -1e9}},
        {"key": "missing", "contains": "x"},
        {"key": "nothing", "match": {"except": [1]}},
        {"key": "nothing", "op": "!=", "value": 1},
        {"key": "empty_list", "op": "!=", "value": 1},
    ],
)
def test_missing_or_null_fields_satisfy_no_field_condition(condition: dict[str, Any]) -> None:
    assert not check(condition)
    assert matches(parse_filter({"must_not": [condition]}), 1, PAYLOAD)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("missing", True),
        ("nothing", True),
        ("empty_list", True),
        ("meta.missing", True),
        ("authors.missing", True),
        ("title", False),
        ("tags", False),
        ("obj", False),
        ("meta.author", False),
    ],
)
def test_is_empty(key: str, expected: bool) -> None:
    assert check({"is_empty": {"key": key}}) is expected
    # an array of nulls is a value (Qdrant): not empty, but null
    assert not matches(parse_filter({"must": [{"is_empty": {"key": "x"}}]}), 1, {"x": [None, None]})
    assert matches(parse_filter({"must": [{"is_empty": {"key": "x"}}]}), 1, {"x": []})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"key": "title", "contains": "black"}, True),
        ({"key": "title", "contains": "Black"}, False),
        ({"key": "title", "match": {"text": "cat"}}, True),
        ({"key": "title", "match": {"text": "dog"}}, False),
        ({"key": "tags", "contains": "red"}, True),
        ({"key": "tags", "contains": "re"}, True),
        ({"key": "tags", "contains": 7}, True),
        ({"key": "tags", "contains": "7"}, False),
        ({"key": "meta.langs", "contains": "fr"}, True),
        ({"key": "year", "contains": 2001}, True),
        ({"key": "year", "contains": "2001"}, False),
    ],
)
def test_contains_is_array_element_or_substring(condition: dict[str, Any], expected: bool) -> None:
    assert check(condition) is expected


def test_has_id_matches_ints_and_uuids() -> None:
    condition = {"has_id": [1, UUID_TEXT.upper()]}
    assert check(condition, point_id=1)
    assert check(condition, point_id=UUID_TEXT)
    assert not check(condition, point_id=2)
    assert not check(condition, point_id="00000000-0000-0000-0000-000000000001")


def test_boolean_combinations() -> None:
    red = {"key": "tags", "match": {"value": "red"}}
    blue = {"key": "tags", "match": {"value": "blue"}}
    old = {"key": "year", "range": {"lt": 1990}}
    assert matches(parse_filter({"should": [blue, red]}), 1, PAYLOAD)
    assert not matches(parse_filter({"should": [blue, old]}), 1, PAYLOAD)
    assert matches(parse_filter({"must": [red], "must_not": [blue, old]}), 1, PAYLOAD)
    assert not matches(parse_filter({"must": [red], "must_not": [old, red]}), 1, PAYLOAD)
    assert matches(parse_filter({}), 1, PAYLOAD)
    assert matches(parse_filter({"must_not": [{"must_not": [red]}]}), 1, PAYLOAD)
    assert not matches(parse_filter({"should": [{"must": [red, old]}, {"must": [blue]}]}), 1, PAYLOAD)


VALUES_COUNT_PAYLOADS: dict[int, dict[str, Any]] = {
    1: {"field": {"a": 1, "b": 2}},  # an object: 1
    2: {"field": ["x", "y"]},  # 2
    3: {"field": 42},  # 1
    4: {"field": "hello"},  # 1
    5: {"field": []},  # 0
    6: {"field": None},  # 0
    7: {},  # missing: no count
}


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"gt": 1}, [2]),
        ({"gte": 2}, [2]),
        ({"lt": 2}, [1, 3, 4, 5, 6]),
        ({"lte": 1}, [1, 3, 4, 5, 6]),
        ({"gt": 0}, [1, 2, 3, 4]),
        ({"lt": 1}, [5, 6]),
        ({"gte": 1, "lte": 2}, [1, 2, 3, 4]),
    ],
)
def test_values_count_as_qdrant_counts(bounds: dict[str, int], expected: list[int]) -> None:
    """The table of qdrant-client's congruence test test_values_count (v1.18)."""
    condition = parse_filter({"must": [{"key": "field", "values_count": bounds}]})
    assert [i for i, payload in VALUES_COUNT_PAYLOADS.items() if matches(condition, i, payload)] == expected


def test_is_null_nested_and_min_should() -> None:
    payload = {"a": None, "b": [1, None], "c": [], "parts": [{"k": "bolt", "s": 2}, {"k": "nut", "s": 3}]}
    held = {
        "a": True,
        "b": True,
        "c": False,
        "missing": False,
    }
    for key, expected in held.items():
        assert matches(parse_filter({"must": [{"is_null": {"key": key}}]}), 1, payload) is expected
    same_element = {
        "nested": {
            "key": "parts",
            "filter": {"must": [{"key": "k", "match": {"value": "bolt"}}, {"key": "s", "range": {"gte": 3}}]},
        }
    }
    assert matches(parse_filter({"must": [same_element]}), 1, payload) is False
    flattened = {
        "must": [{"key": "parts.k", "match": {"value": "bolt"}}, {"key": "parts.s", "range": {"gte": 3}}]
    }
    assert matches(parse_filter(flattened), 1, payload) is True  # without nested: any element each
    two_of_three = {
        "min_should": {
            "conditions": [
                {"is_null": {"key": "a"}},
                {"is_null": {"key": "c"}},
                {"key": "parts.k", "match": {"value": "nut"}},
            ],
            "min_count": 2,
        }
    }
    assert matches(parse_filter(two_of_three), 1, payload) is True
    two_of_three["min_should"]["min_count"] = 3
    assert matches(parse_filter(two_of_three), 1, payload) is False
