"""Evaluation of a filter AST against one point's id and payload.

Semantics (documented in docs/filters.md): a dotted key walks nested objects and
flattens arrays; a condition holds when any value found satisfies it; a missing or
null field satisfies nothing except `is_empty` (and `Not` of anything).
Booleans never equal numbers, and strings never equal numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecstore.cluster.filters import (
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
    Scalar,
)
from vecstore.cluster.ids import PointId

_ORDERING: dict[CompareOp, Callable[[float, float], bool]] = {
    CompareOp.LT: lambda a, b: a < b,
    CompareOp.LE: lambda a, b: a <= b,
    CompareOp.GT: lambda a, b: a > b,
    CompareOp.GE: lambda a, b: a >= b,
}


def field_values(payload: dict[str, Any], key: str) -> list[Any]:
    """All scalar values at a dotted path, with arrays flattened at every level."""
    current: list[Any] = [payload]
    for part in key.split("."):
        following: list[Any] = []
        for node in current:
            if isinstance(node, dict) and part in node:
                child = node[part]
                if isinstance(child, list):
                    following.extend(child)
                elif child is not None:
                    following.append(child)
            elif isinstance(node, list):
                following.extend(item[part] for item in node if isinstance(item, dict) and part in item)
        current = following
    flat: list[Any] = []
    for value in current:
        if isinstance(value, list):
            flat.extend(v for v in value if v is not None)
        elif value is not None:
            flat.append(value)
    return flat


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
    if isinstance(condition, IsEmpty):
        return not field_values(payload, condition.key)
    if isinstance(condition, HasId):
        return point_id in condition.ids
    if isinstance(condition, And):
        return all(matches(c, point_id, payload) for c in condition.children)
    if isinstance(condition, Or):
        return any(matches(c, point_id, payload) for c in condition.children)
    assert isinstance(condition, Not)
    return not matches(condition.child, point_id, payload)
