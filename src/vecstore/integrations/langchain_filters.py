"""LangChain metadata filters as native VecStore filters (docs/filters.md, docs/integrations.md).

A filter is either native (a dict of only `must`, `should`, `must_not`: passed through as
is) or a metadata filter: `{"lang": "en"}` (equality), `{"tags": ["a", "b"]}` (any of),
`{"year": {"$gte": 2020}}` (operators), `{"$and": [...]}`, `{"$or": [...]}`, `{"$not": ...}`.
Pure: no client, no LangChain import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Filter = dict[str, Any]
"""A native filter."""

NATIVE_CLAUSES = frozenset({"must", "should", "must_not"})
RANGE_OPERATORS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
FIELD_OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", *RANGE_OPERATORS})
SCALAR_TYPES = (str, int, float, bool)


def native_filter(condition: Mapping[str, Any] | None, metadata_key: str) -> Filter | None:
    """The native filter for a LangChain `filter=` argument; metadata fields are read under
    `metadata_key` in the payload (`{"lang": "en"}` -> key `metadata.lang`)."""
    if condition is None:
        return None
    if not isinstance(condition, Mapping):
        raise TypeError(f"filter must be a dict, got {type(condition).__name__}")
    if condition and set(condition) <= NATIVE_CLAUSES:
        return dict(condition)
    return {"must": _conditions(condition, metadata_key)}


def _conditions(condition: Mapping[str, Any], metadata_key: str) -> list[Filter]:
    if not condition:
        raise ValueError("an empty filter matches nothing useful; pass None for no filter")
    result: list[Filter] = []
    for name, value in condition.items():
        if name in {"$and", "$or"}:
            children = _filter_list(name, value, metadata_key)
            result.append({"must": children} if name == "$and" else {"should": children})
        elif name == "$not":
            if not isinstance(value, Mapping):
                raise ValueError(f"$not takes one filter (a dict), got {value!r}")
            result.append({"must_not": [{"must": _conditions(value, metadata_key)}]})
        elif name.startswith("$"):
            raise ValueError(f"unknown filter operator {name!r}; expected $and, $or, $not at the top level")
        else:
            result.extend(_field(f"{metadata_key}.{name}", value))
    return result


def _filter_list(name: str, value: Any, metadata_key: str) -> list[Filter]:
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"{name} takes a non-empty list of filters (dicts), got {value!r}")
    return [{"must": _conditions(child, metadata_key)} for child in value]


def _field(key: str, value: Any) -> list[Filter]:
    """The conditions for one metadata field: a value, a list of values, or operators."""
    if isinstance(value, list):
        return [{"key": key, "match": {"any": _scalars(key, value)}}]
    if not isinstance(value, Mapping):
        return [{"key": key, "match": {"value": _scalar(key, value)}}]
    if not value:
        raise ValueError(f"the condition on {key!r} is empty; expected operators such as $eq or $gte")
    unknown = sorted(set(value) - FIELD_OPERATORS)
    if unknown:
        raise ValueError(
            f"the condition on {key!r} has {unknown}; expected a value, a list of values, or "
            f"operators among {sorted(FIELD_OPERATORS)}"
        )
    result: list[Filter] = []
    bounds = {RANGE_OPERATORS[op]: _number(key, op, v) for op, v in value.items() if op in RANGE_OPERATORS}
    if bounds:
        result.append({"key": key, "range": bounds})
    if "$eq" in value:
        result.append({"key": key, "match": {"value": _scalar(key, value["$eq"])}})
    if "$ne" in value:
        result.append({"must_not": [{"key": key, "match": {"value": _scalar(key, value["$ne"])}}]})
    if "$in" in value:
        result.append({"key": key, "match": {"any": _scalars(key, value["$in"])}})
    if "$nin" in value:
        result.append({"must_not": [{"key": key, "match": {"any": _scalars(key, value["$nin"])}}]})
    return result


def _scalar(key: str, value: Any) -> str | int | float | bool:
    if not isinstance(value, SCALAR_TYPES):
        raise ValueError(
            f"the condition on {key!r} compares with {value!r}; expected a string, number or boolean"
        )
    return value


def _scalars(key: str, values: Any) -> list[str | int | float | bool]:
    if not isinstance(values, list) or not values:
        raise ValueError(f"the condition on {key!r} needs a non-empty list of values, got {values!r}")
    return [_scalar(key, v) for v in values]


def _number(key: str, operator: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{operator} on {key!r} compares numbers only, got {value!r}")
    return value
