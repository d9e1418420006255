"""Filter parsing: every condition kind, nesting, limits, and clear errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest

from vecstore.cluster.errors import InvalidFilter
from vecstore.cluster.filters import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_NODES,
    And,
    Compare,
    CompareOp,
    Contains,
    Filter,
    HasId,
    In,
    IsEmpty,
    Not,
    Or,
    Text,
    TextMode,
    filter_to_json,
    parse_filter,
)

UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"


def must(condition: dict[str, Any]) -> dict[str, Any]:
    return {"must": [condition]}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"key": "a.b", "match": {"value": 3}}, Compare("a.b", CompareOp.EQ, 3)),
        ({"key": "tag", "match": {"value": "x"}}, Compare("tag", CompareOp.EQ, "x")),
        ({"key": "flag", "match": {"value": False}}, Compare("flag", CompareOp.EQ, False)),
        ({"key": "c", "match": {"any": ["r", "g", 1]}}, In("c", ("r", "g", 1))),
        ({"key": "c", "match": {"any": []}}, In("c", ())),
        ({"key": "c", "match": {"except": ["r"]}}, In("c", ("r",), negate=True)),
        ({"key": "title", "match": {"text": "cat"}}, Text("title", "cat", TextMode.ALL)),
        ({"key": "title", "match": {"substring": "cat"}}, Contains("title", "cat")),
        ({"key": "n", "range": {"gt": 1}}, Compare("n", CompareOp.GT, 1)),
        ({"key": "n", "range": {"gte": 1.5}}, Compare("n", CompareOp.GE, 1.5)),
        ({"key": "n", "range": {"lt": -2}}, Compare("n", CompareOp.LT, -2)),
        ({"key": "n", "range": {"lte": 9, "gt": None}}, Compare("n", CompareOp.LE, 9)),
        (
            {"key": "n", "range": {"gt": 1, "lte": 5}},
            And((Compare("n", CompareOp.GT, 1), Compare("n", CompareOp.LE, 5))),
        ),
        ({"key": "tags", "contains": "red"}, Contains("tags", "red")),
        ({"key": "tags", "contains": 7}, Contains("tags", 7)),
        ({"key": "n", "op": "==", "value": "x"}, Compare("n", CompareOp.EQ, "x")),
        ({"key": "n", "op": "!=", "value": True}, Compare("n", CompareOp.NE, True)),
        ({"key": "n", "op": "<", "value": 1}, Compare("n", CompareOp.LT, 1)),
        ({"key": "n", "op": "<=", "value": 1}, Compare("n", CompareOp.LE, 1)),
        ({"key": "n", "op": ">", "value": 1.25}, Compare("n", CompareOp.GT, 1.25)),
        ({"key": "n", "op": ">=", "value": 0}, Compare("n", CompareOp.GE, 0)),
        ({"is_empty": {"key": "a.b"}}, IsEmpty("a.b")),
        ({"has_id": [1, UUID_TEXT.upper()]}, HasId(frozenset({1, UUID_TEXT}))),
        ({"has_id": []}, HasId(frozenset())),
    ],
)
def test_each_condition_kind(condition: dict[str, Any], expected: Filter) -> None:
    assert parse_filter(must(condition)) == expected


def test_clauses_combine_with_and() -> None:
    a = {"key": "a", "match": {"value": 1}}
    b = {"key": "b", "match": {"value": 2}}
    c = {"key": "c", "match": {"value": 3}}
    parsed = parse_filter({"must": [a], "should": [b, c], "must_not": [a, b]})
    ca, cb, cc = Compare("a", CompareOp.EQ, 1), Compare("b", CompareOp.EQ, 2), Compare("c", CompareOp.EQ, 3)
    assert parsed == And((ca, Or((cb, cc)), Not(ca), Not(cb)))


def test_clause_values_may_be_a_single_condition() -> None:
    assert parse_filter({"must_not": {"key": "a", "match": {"value": 1}}}) == Not(
        Compare("a", CompareOp.EQ, 1)
    )


def test_empty_filter_and_empty_clauses_match_everything() -> None:
    assert parse_filter({}) == And(())
    assert parse_filter({"must": [], "should": [], "must_not": None}) == And(())


def test_nested_filters() -> None:
    parsed = parse_filter(
        {
            "should": [
                {"must": [{"key": "a", "match": {"value": 1}}, {"key": "b", "range": {"lt": 3}}]},
                {"must_not": [{"is_empty": {"key": "c"}}]},
            ]
        }
    )
    assert parsed == Or(
        (
            And((Compare("a", CompareOp.EQ, 1), Compare("b", CompareOp.LT, 3))),
            Not(IsEmpty("c")),
        )
    )


def nested(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"key": "a", "match": {"value": 1}}
    for _ in range(depth):
        condition = {"must": [condition]}
    return condition


def test_depth_limit() -> None:
    assert parse_filter(nested(MAX_FILTER_DEPTH - 1)) == Compare("a", CompareOp.EQ, 1)
    with pytest.raises(InvalidFilter, match=f"deeper than {MAX_FILTER_DEPTH}"):
        parse_filter(nested(MAX_FILTER_DEPTH + 1))


def test_condition_count_limit() -> None:
    condition = {"key": "a", "match": {"value": 1}}
    assert isinstance(parse_filter({"must": [condition] * MAX_FILTER_NODES}), And)
    with pytest.raises(InvalidFilter, match=f"more than {MAX_FILTER_NODES} conditions"):
        parse_filter({"must": [condition] * (MAX_FILTER_NODES + 1)})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "filter must be an object, got list"),
        ("a == 1", "filter must be an object, got str"),
        ({"filter": []}, "unknown filter clause(s) ['filter']"),
        ({"must": [{"key": "a", "match": {"value": 1}}], "min_should": 1}, "min_should expects"),
        ({"min_should": {"conditions": [], "min_count": -1}}, "non-negative integer"),
        ({"must": [{"key": "a", "values_count": {"gt": "1"}}]}, "values_count.gt on 'a' must be"),
        ({"must": [{"key": "a", "values_count": {}}]}, "values_count on 'a' must be an object"),
        ({"must": [{"is_null": {"key": "a"}, "key": "b"}]}, "is_null expects"),
        ({"must": [{"nested": {"key": "a"}}]}, "nested expects"),
        ({"must": [5]}, "condition must be an object, got int"),
        ({"must": [{"match": {"value": 1}}]}, "has no 'key'"),
        ({"must": [{"key": "", "match": {"value": 1}}]}, "non-empty dotted path"),
        ({"must": [{"key": "a..b", "match": {"value": 1}}]}, "non-empty dotted path"),
        ({"must": [{"key": 3, "match": {"value": 1}}]}, "non-empty dotted path"),
        ({"must": [{"key": "a"}]}, "exactly one of match, range, contains, values_count or op/value"),
        (
            {"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]},
            "exactly one of match, range, contains, values_count or op/value",
        ),
        ({"must": [{"key": "a", "match": {"value": 1}, "extra": 1}]}, "exactly one of"),
        ({"must": [{"key": "a", "value": 1}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": 1}]}, "match on 'a' must have exactly one of"),
        ({"must": [{"key": "a", "match": {}}]}, "match on 'a' must have exactly one of"),
        ({"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]}, "must have exactly one of"),
        ({"must": [{"key": "a", "match": {"like": "x"}}]}, "match kind 'like'"),
        ({"must": [{"key": "a", "match": {"any": "x"}}]}, "match.any on 'a' must be a list"),
        ({"must": [{"key": "a", "match": {"except": 1}}]}, "match.except on 'a' must be a list"),
        ({"must": [{"key": "a", "match": {"text": 1}}]}, "match.text on 'a' must be a string"),
        ({"must": [{"key": "a", "match": {"value": None}}]}, "must be a string, number or boolean"),
        ({"must": [{"key": "a", "match": {"value": [1]}}]}, "must be a string, number or boolean"),
        ({"must": [{"key": "a", "match": {"value": {"x": 1}}}]}, "must be a string, number or boolean"),
        ({"must": [{"key": "a", "match": {"value": float("nan")}}]}, "is NaN"),
        ({"must": [{"key": "a", "match": {"any": [1, None]}}]}, "must be a string, number or boolean"),
        ({"must": [{"key": "a", "range": {}}]}, "range on 'a' must be an object"),
        ({"must": [{"key": "a", "range": [1, 2]}]}, "range on 'a' must be an object"),
        ({"must": [{"key": "a", "range": {"between": 1}}]}, "unknown bounds ['between']"),
        ({"must": [{"key": "a", "range": {"gt": None}}]}, "has no bounds"),
        ({"must": [{"key": "a", "range": {"gt": "1"}}]}, "needs a number"),
        ({"must": [{"key": "a", "range": {"gt": True}}]}, "needs a number"),
        ({"must": [{"key": "a", "range": {"lt": float("nan")}}]}, "is NaN"),
        ({"must": [{"key": "a", "contains": [1]}]}, "must be a string, number or boolean"),
        ({"must": [{"key": "a", "op": "~", "value": 1}]}, "operator '~' on 'a' is not one of"),
        ({"must": [{"key": "a", "op": "=="}]}, "needs a 'value'"),
        ({"must": [{"key": "a", "op": "<", "value": "z"}]}, "needs a number"),
        ({"must": [{"key": "a", "op": ">=", "value": False}]}, "needs a number"),
        ({"must": [{"is_empty": "a"}]}, 'is_empty expects {"key": "<field>"}'),
        ({"must": [{"is_empty": {"key": "a", "x": 1}}]}, "is_empty expects"),
        ({"must": [{"is_empty": {"key": ""}}]}, "non-empty dotted path"),
        ({"must": [{"has_id": 5}]}, "has_id must be a list"),
        ({"must": [{"has_id": [-1]}]}, "has_id: point id -1"),
        ({"must": [{"has_id": ["nope"]}]}, "has_id: point id 'nope' is not a UUID"),
        ({"should": [{"must": [{"key": "a"}]}]}, "exactly one of"),
    ],
)
def test_malformed_filters_raise_invalid_filter(data: object, fragment: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(data)
    assert fragment in caught.value.message
    assert caught.value.http_status == 400


CANONICAL: list[Filter] = [
    Compare("a.b", CompareOp.EQ, "x"),
    Compare("n", CompareOp.NE, 2),
    Compare("n", CompareOp.GE, 2.5),
    In("c", ("r", 1, True)),
    In("c", ("r",), negate=True),
    Contains("tags", "red"),
    IsEmpty("meta.author"),
    HasId(frozenset({3, UUID_TEXT})),
    Not(Compare("a", CompareOp.LT, 0)),
    Or((Compare("a", CompareOp.EQ, 1),)),
    Or((Compare("a", CompareOp.EQ, 1), IsEmpty("b"))),
    And((Compare("a", CompareOp.GT, 1), Compare("a", CompareOp.LT, 5))),
    And((Or((IsEmpty("x"), Not(HasId(frozenset({1}))))), Contains("t", 4), And(()))),
]


@pytest.mark.parametrize("node", CANONICAL)
def test_filter_to_json_round_trip(node: Filter) -> None:
    assert parse_filter(filter_to_json(node)) == node


@pytest.mark.parametrize(
    "condition",
    [
        {"key": "a", "match": {"value": 2**64}},
        {"key": "a", "match": {"any": [1, -(2**63) - 1]}},
        {"key": "a", "range": {"gt": 2**70}},
        {"key": "a", "op": "<", "value": 2**70},
        {"key": "a", "contains": 2**70},
    ],
)
def test_integers_the_wire_cannot_carry_are_rejected(condition: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilter, match="outside the integer range"):
        parse_filter(must(condition))
    assert parse_filter(must({"key": "a", "match": {"value": 2**64 - 1}})) == Compare(
        "a", CompareOp.EQ, 2**64 - 1
    )
