"""Evaluation of a filter AST against one point's id and payload.

Semantics (documented in docs/filters.md): a key path walks nested objects and
flattens arrays (`a[0]` picks one element, `a[]` all of them); a condition holds when
any value found satisfies it; a missing or null field satisfies nothing except
`is_empty` (and `Not` of anything). `is_null`, `values_count`, `nested` and the geo
conditions look at the values a key reaches before its last array is flattened
(qdrant-client's local mode is the reference for them).
Booleans never equal numbers, and strings never equal numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecstore.cluster.errors import InvalidFilter
from vecstore.cluster.filters import (
    And,
    Compare,
    CompareOp,
    Contains,
    DatetimeRange,
    Filter,
    GeoBox,
    GeoPolygon,
    GeoRadius,
    HasId,
    HasVector,
    In,
    IsEmpty,
    IsNull,
    MinShould,
    Nested,
    Not,
    Or,
    Prefix,
    Regex,
    Scalar,
    Text,
    ValuesCount,
)
from vecstore.cluster.ids import PointId
from vecstore.cluster.payload_path import WILDCARD, parse_path
from vecstore.shard.geo import geo_point, point_holds
from vecstore.shard.text_match import string_holds

_ORDERING: dict[CompareOp, Callable[[float, float], bool]] = {
    CompareOp.LT: lambda a, b: a < b,
    CompareOp.LE: lambda a, b: a <= b,
    CompareOp.GT: lambda a, b: a > b,
    CompareOp.GE: lambda a, b: a >= b,
}


def field_values(payload: dict[str, Any], key: str) -> list[Any]:
    """All scalar values at a key path, with arrays flattened at every level."""
    flat: list[Any] = []
    for value in _reached(payload, key, keep_last_array=False):
        if isinstance(value, list):
            flat.extend(v for v in value if v is not None)
        elif value is not None:
            flat.append(value)
    return flat


def raw_values(payload: dict[str, Any], key: str) -> list[Any]:
    """The values at a key path as stored: arrays met on the way are flattened, the last
    one is not, and nulls are kept (what `is_null`, `values_count` and `nested` look at)."""
    return _reached(payload, key, keep_last_array=True)


def geo_values(payload: dict[str, Any], key: str) -> list[Any]:
    """The values a geo condition tests: the stored values, an array unwrapped one level."""
    found: list[Any] = []
    for value in raw_values(payload, key):
        if isinstance(value, list):
            found.extend(value)
        else:
            found.append(value)
    return found


def _reached(payload: dict[str, Any], key: str, keep_last_array: bool) -> list[Any]:
    # A name walks into objects (and through arrays of objects, beyond Qdrant, which needs
    # `a[].b`); `[]` takes every element of an array, `[i]` one; anything else reaches nothing.
    items = parse_path(key)
    current: list[Any] = [payload]
    for depth, item in enumerate(items):
        following: list[Any] = []
        for node in current:
            if isinstance(item, str):
                if isinstance(node, dict):
                    if item in node:
                        following.append(node[item])
                elif isinstance(node, list):
                    following.extend(e[item] for e in node if isinstance(e, dict) and item in e)
            elif isinstance(node, list):
                if item is WILDCARD:
                    following.extend(node)
                elif item < len(node):
                    following.append(node[item])
        last = depth == len(items) - 1
        next_is_name = not last and isinstance(items[depth + 1], str)
        if next_is_name or (last and not keep_last_array):  # arrays on the way are walked through
            following = [v for value in following for v in (value if isinstance(value, list) else [value])]
        current = following
    return current


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, list) and any(v is None for v in value))


def _values_count(condition: ValuesCount, values: list[Any]) -> bool:
    if not values:  # a missing field has no count (Qdrant's server and its 1.18 congruence test)
        return False
    counts = [len(v) if isinstance(v, list) else int(v is not None) for v in values]
    return any(
        (condition.gt is None or count > condition.gt)
        and (condition.gte is None or count >= condition.gte)
        and (condition.lt is None or count < condition.lt)
        and (condition.lte is None or count <= condition.lte)
        for count in counts
    )


NO_POINT: PointId = -1
"""The id conditions inside `nested` see: an array element is no point (has_id never holds)."""


def values_equal(stored: Any, wanted: Scalar) -> bool:
    """Equality that keeps booleans, numbers and strings apart."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(wanted, str) or isinstance(stored, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    if isinstance(stored, (int, float)):
        return bool(stored == wanted)
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matches(condition: Filter, point_id: PointId, payload: dict[str, Any]) -> bool:
    """True if the point satisfies the filter."""
    if isinstance(condition, Compare):
        values = field_values(payload, condition.key)
        if condition.op is CompareOp.EQ:
            return any(values_equal(v, condition.value) for v in values)
        if condition.op is CompareOp.NE:
            return any(not values_equal(v, condition.value) for v in values)
        compare = _ORDERING[condition.op]
        bound = condition.value
        return _is_number(bound) and any(
            _is_number(v) and compare(v, bound)  # type: ignore[arg-type]
            for v in values
        )
    if isinstance(condition, In):
        values = field_values(payload, condition.key)
        if condition.negate:
            return any(not any(values_equal(v, w) for w in condition.values) for v in values)
        return any(values_equal(v, w) for v in values for w in condition.values)
    if isinstance(condition, Contains):
        wanted = condition.value
        return any(
            values_equal(v, wanted) or (isinstance(v, str) and isinstance(wanted, str) and wanted in v)
            for v in field_values(payload, condition.key)
        )
    if isinstance(condition, DatetimeRange | Text | Prefix | Regex):
        return any(string_holds(condition, v) for v in field_values(payload, condition.key))
    if isinstance(condition, GeoRadius | GeoBox | GeoPolygon):
        points = (geo_point(v) for v in geo_values(payload, condition.key))
        return any(point is not None and point_holds(condition, *point) for point in points)
    if isinstance(condition, IsEmpty):  # missing, null or []: an array of nulls is a value
        return all(v is None or v == [] for v in raw_values(payload, condition.key))
    if isinstance(condition, IsNull):
        return any(_is_null(v) for v in raw_values(payload, condition.key))
    if isinstance(condition, ValuesCount):
        return _values_count(condition, raw_values(payload, condition.key))
    if isinstance(condition, Nested):
        return any(
            matches(condition.filter, NO_POINT, element)
            for value in raw_values(payload, condition.key)
            if isinstance(value, list)
            for element in value
            if isinstance(element, dict)
        )
    if isinstance(condition, MinShould):
        held = sum(matches(c, point_id, payload) for c in condition.children)
        return held >= condition.min_count
    if isinstance(condition, HasVector):  # resolved into ids by the shard (named.resolve)
        raise InvalidFilter("has_vector is not supported inside nested")
    if isinstance(condition, HasId):
        return point_id in condition.ids
    if isinstance(condition, And):
        return all(matches(c, point_id, payload) for c in condition.children)
    if isinstance(condition, Or):
        return any(matches(c, point_id, payload) for c in condition.children)
    assert isinstance(condition, Not)
    return not matches(condition.child, point_id, payload)
