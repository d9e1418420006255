"""Payload filters: a small typed AST and its JSON form, close to Qdrant's conditions.

JSON form (every key optional, all combined with AND):
    {"must": [cond, ...], "should": [cond, ...], "must_not": [cond, ...]}
A condition is a nested filter, or one of:
    {"key": "a.b", "match": {"value": v}}          a.b == v
    {"key": "a.b", "match": {"any": [v, ...]}}     a.b in [...]
    {"key": "a.b", "match": {"except": [v, ...]}}  a.b not in [...]
    {"key": "a.b", "match": {"text": "s"}}         string a.b contains "s"
    {"key": "a.b", "range": {"gt"|"gte"|"lt"|"lte": number}}
    {"key": "a.b", "contains": v}                  array a.b has element v, or string has substring
    {"key": "a.b", "op": "=="|"!="|"<"|"<="|">"|">=", "value": v}
    {"is_empty": {"key": "a.b"}}                   a.b missing, null or []
    {"is_null": {"key": "a.b"}}                    a.b present and null (or an array holding null)
    {"key": "a.b", "values_count": {"gt"|"gte"|"lt"|"lte": n}}   number of values at a.b
    {"nested": {"key": "a", "filter": {...}}}      one object of array a satisfies the whole filter
    {"has_id": [id, ...]}
A filter may also have `"min_should": {"conditions": [cond, ...], "min_count": n}`: at least
n of the conditions hold.
Parsing never evaluates; evaluation lives in the shard. This module defines the AST once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vecstore.cluster.errors import InvalidFilter, InvalidPointId
from vecstore.cluster.ids import PointId, normalize_point_id

MAX_FILTER_DEPTH = 16
MAX_FILTER_NODES = 1_000
INTEGER_RANGE = (-(2**63), 2**64 - 1)
"""What msgpack (routers to nodes) carries; payload integers have the same bound."""

Scalar = str | int | float | bool


class CompareOp(StrEnum):
    """Comparison operators on one payload field."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


@dataclass(frozen=True)
class Compare:
    """`key <op> value`; true if any value stored at `key` satisfies it."""

    key: str
    op: CompareOp
    value: Scalar


@dataclass(frozen=True)
class In:
    """`key in values` (or `not in` when negate): any stored value is (not) one of them."""

    key: str
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class Contains:
    """Array at `key` has element `value`, or the string at `key` contains it as a substring."""

    key: str
    value: Scalar


@dataclass(frozen=True)
class IsEmpty:
    """The field is missing, null, or an empty array."""

    key: str


@dataclass(frozen=True)
class IsNull:
    """A value at `key` is null, or an array holding null (a missing field is not null)."""

    key: str


@dataclass(frozen=True)
class ValuesCount:
    """The number of values at `key` (an array's length, 1 for any other value, 0 for null) is
    within every bound given; with several values (arrays met on the way), any one. A missing
    field matches no bound."""

    key: str
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


@dataclass(frozen=True)
class Nested:
    """Some object element of the array at `key` satisfies `filter` as a whole (its keys are
    relative to the element, so several conditions hold for the same element)."""

    key: str
    filter: Filter


@dataclass(frozen=True)
class MinShould:
    """At least `min_count` of the children hold."""

    children: tuple[Filter, ...]
    min_count: int


@dataclass(frozen=True)
class HasId:
    """The point's id is one of `ids`."""

    ids: frozenset[PointId]


@dataclass(frozen=True)
class And:
    """All children hold (true when there are none)."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one child holds."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The child does not hold."""

    child: Filter


Filter = (
    Compare | In | Contains | IsEmpty | IsNull | ValuesCount | Nested | MinShould | HasId | And | Or | Not
)

_RANGE_OPS = {"gt": CompareOp.GT, "gte": CompareOp.GE, "lt": CompareOp.LT, "lte": CompareOp.LE}


def parse_filter(data: object) -> Filter:
    """Parse the JSON form into the AST, or raise InvalidFilter saying what was expected."""
    counter = [0]
    return _parse_clauses(data, depth=0, counter=counter)


def _parse_clauses(data: object, depth: int, counter: list[int]) -> Filter:
    if not isinstance(data, dict):
        raise InvalidFilter(f"filter must be an object, got {type(data).__name__}")
    unknown = set(data) - {"must", "should", "must_not", "min_should"}
    if unknown:
        raise InvalidFilter(f"unknown filter clause(s) {sorted(unknown)}: expected must, should or must_not")
    parts: list[Filter] = []
    for clause in ("must", "should", "must_not"):
        raw = data.get(clause)
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else [raw]
        children = tuple(_parse_condition(item, depth + 1, counter) for item in items)
        if clause == "must":
            parts.extend(children)
        elif clause == "should":
            if children:
                parts.append(Or(children))
        else:
            parts.extend(Not(child) for child in children)
    if data.get("min_should") is not None:
        parts.append(_parse_min_should(data["min_should"], depth, counter))
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts))


def _parse_condition(data: object, depth: int, counter: list[int]) -> Filter:
    counter[0] += 1
    if depth > MAX_FILTER_DEPTH:
        raise InvalidFilter(f"filter is nested deeper than {MAX_FILTER_DEPTH} levels")
    if counter[0] > MAX_FILTER_NODES:
        raise InvalidFilter(f"filter has more than {MAX_FILTER_NODES} conditions")
    if not isinstance(data, dict):
        raise InvalidFilter(f"condition must be an object, got {type(data).__name__}")
    if not data or set(data) & {"must", "should", "must_not", "min_should"}:  # {} matches everything
        return _parse_clauses(data, depth, counter)
    if "has_id" in data:
        return _parse_has_id(data["has_id"])
    if "is_empty" in data:
        target = data["is_empty"]
        if not isinstance(target, dict) or set(target) != {"key"}:
            raise InvalidFilter('is_empty expects {"key": "<field>"}')
        return IsEmpty(_parse_key(target["key"]))
    if "is_null" in data:
        target = data["is_null"]
        if set(data) != {"is_null"} or not isinstance(target, dict) or set(target) != {"key"}:
            raise InvalidFilter('is_null expects {"key": "<field>"}')
        return IsNull(_parse_key(target["key"]))
    if "nested" in data:
        return _parse_nested(data, depth, counter)
    if "key" not in data:
        raise InvalidFilter(f"condition {data!r} has no 'key' and is not has_id, is_empty or a filter")
    key = _parse_key(data["key"])
    kinds = set(data) & {"match", "range", "contains", "op", "values_count"}
    if len(kinds) != 1 or set(data) - {"key", "match", "range", "contains", "op", "value", "values_count"}:
        raise InvalidFilter(
            f"condition on {key!r} must have exactly one of match, range, contains, values_count or op/value"
        )
    if "values_count" in data:
        return _parse_values_count(key, data["values_count"])
    if "match" in data:
        return _parse_match(key, data["match"])
    if "range" in data:
        return _parse_range(key, data["range"])
    if "contains" in data:
        return Contains(key, _parse_scalar(data["contains"], key))
    try:
        op = CompareOp(data["op"])
    except ValueError:
        allowed = ", ".join(o.value for o in CompareOp)
        raise InvalidFilter(f"operator {data['op']!r} on {key!r} is not one of {allowed}") from None
    if "value" not in data:
        raise InvalidFilter(f"condition on {key!r} with op {op.value} needs a 'value'")
    value = _parse_scalar(data["value"], key)
    if op in (CompareOp.LT, CompareOp.LE, CompareOp.GT, CompareOp.GE):
        _require_number(value, key)
    return Compare(key, op, value)


def _parse_match(key: str, match: object) -> Filter:
    if not isinstance(match, dict) or len(match) != 1:
        raise InvalidFilter(f"match on {key!r} must have exactly one of value, any, except, text")
    ((kind, operand),) = match.items()
    if kind == "value":
        return Compare(key, CompareOp.EQ, _parse_scalar(operand, key))
    if kind in ("any", "except"):
        if not isinstance(operand, list):
            raise InvalidFilter(f"match.{kind} on {key!r} must be a list")
        values = tuple(_parse_scalar(v, key) for v in operand)
        return In(key, values, negate=kind == "except")
    if kind == "text":
        if not isinstance(operand, str):
            raise InvalidFilter(f"match.text on {key!r} must be a string")
        return Contains(key, operand)
    raise InvalidFilter(f"match kind {kind!r} on {key!r} is not one of value, any, except, text")


def _parse_min_should(raw: object, depth: int, counter: list[int]) -> Filter:
    if not isinstance(raw, dict) or set(raw) != {"conditions", "min_count"}:
        raise InvalidFilter('min_should expects {"conditions": [...], "min_count": n}')
    conditions, min_count = raw["conditions"], raw["min_count"]
    if not isinstance(conditions, list):
        raise InvalidFilter("min_should.conditions must be a list of conditions")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
        raise InvalidFilter(f"min_should.min_count must be a non-negative integer, got {min_count!r}")
    children = tuple(_parse_condition(item, depth + 1, counter) for item in conditions)
    return MinShould(children, min_count)


def _parse_nested(data: dict[str, Any], depth: int, counter: list[int]) -> Filter:
    target = data["nested"]
    if set(data) != {"nested"} or not isinstance(target, dict) or set(target) != {"key", "filter"}:
        raise InvalidFilter('nested expects {"key": "<array field>", "filter": {...}}')
    return Nested(_parse_key(target["key"]), _parse_clauses(target["filter"], depth + 1, counter))


def _parse_values_count(key: str, bounds: object) -> Filter:
    if not isinstance(bounds, dict) or not bounds or set(bounds) - set(_RANGE_OPS):
        raise InvalidFilter(f"values_count on {key!r} must be an object with gt, gte, lt or lte")
    given = {name: value for name, value in bounds.items() if value is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise InvalidFilter(
                f"values_count.{name} on {key!r} must be a non-negative integer, got {value!r}"
            )
    if not given:
        raise InvalidFilter(f"values_count on {key!r} has no bounds")
    return ValuesCount(key, **given)


def _parse_range(key: str, bounds: object) -> Filter:
    if not isinstance(bounds, dict) or not bounds:
        raise InvalidFilter(f"range on {key!r} must be an object with gt, gte, lt or lte")
    unknown = set(bounds) - set(_RANGE_OPS)
    if unknown:
        raise InvalidFilter(f"range on {key!r} has unknown bounds {sorted(unknown)}")
    parts: list[Filter] = []
    for name, op in _RANGE_OPS.items():
        if bounds.get(name) is None:
            continue
        parts.append(Compare(key, op, _require_number(bounds[name], key)))
    if not parts:
        raise InvalidFilter(f"range on {key!r} has no bounds")
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_has_id(raw: object) -> Filter:
    if not isinstance(raw, list):
        raise InvalidFilter("has_id must be a list of point ids")
    try:
        return HasId(frozenset(normalize_point_id(v) for v in raw))
    except InvalidPointId as err:
        raise InvalidFilter(f"has_id: {err.message}") from None


def _parse_key(key: object) -> str:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise InvalidFilter(f"filter key {key!r} must be a non-empty dotted path like 'a.b'")
    return key


def _parse_scalar(value: object, key: str) -> Scalar:
    if isinstance(value, (str, int, float, bool)):
        if isinstance(value, float) and math.isnan(value):
            raise InvalidFilter(f"filter value for {key!r} is NaN")
        _check_integer_range(value, key)
        return value
    raise InvalidFilter(f"filter value {value!r} for {key!r} must be a string, number or boolean")


def _require_number(value: object, key: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidFilter(f"range/comparison on {key!r} needs a number, got {value!r}")
    if math.isnan(value):
        raise InvalidFilter(f"range bound for {key!r} is NaN")
    _check_integer_range(value, key)
    return value


def _check_integer_range(value: object, key: str) -> None:
    low, high = INTEGER_RANGE
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        raise InvalidFilter(f"filter value {value} for {key!r} is outside the integer range -2**63..2**64-1")


def filter_to_json(node: Filter) -> dict[str, Any]:
    """The canonical JSON form of an AST (parse_filter(filter_to_json(f)) == f up to nesting)."""
    return {"must": [_condition_to_json(node)]}


def _condition_to_json(node: Filter) -> dict[str, Any]:
    if isinstance(node, Compare):
        return {"key": node.key, "op": node.op.value, "value": node.value}
    if isinstance(node, In):
        kind = "except" if node.negate else "any"
        return {"key": node.key, "match": {kind: list(node.values)}}
    if isinstance(node, Contains):
        return {"key": node.key, "contains": node.value}
    if isinstance(node, IsEmpty):
        return {"is_empty": {"key": node.key}}
    if isinstance(node, IsNull):
        return {"is_null": {"key": node.key}}
    if isinstance(node, ValuesCount):
        bounds = {"gt": node.gt, "gte": node.gte, "lt": node.lt, "lte": node.lte}
        return {"key": node.key, "values_count": {k: v for k, v in bounds.items() if v is not None}}
    if isinstance(node, Nested):
        return {"nested": {"key": node.key, "filter": filter_to_json(node.filter)}}
    if isinstance(node, MinShould):
        conditions = [_condition_to_json(c) for c in node.children]
        return {"min_should": {"conditions": conditions, "min_count": node.min_count}}
    if isinstance(node, HasId):
        return {"has_id": sorted(node.ids, key=str)}
    if isinstance(node, And):
        return {"must": [_condition_to_json(c) for c in node.children]}
    if isinstance(node, Or):
        return {"should": [_condition_to_json(c) for c in node.children]}
    return {"must_not": [_condition_to_json(node.child)]}
