"""LlamaIndex `MetadataFilters` as native VecStore filters (docs/filters.md, docs/integrations.md).

Keys are top-level payload keys (LlamaIndex flattens a node's metadata into the payload).
The semantics follow LlamaIndex's own in-memory store: NE and NIN also match nodes without
the key; NOT matches when none of its filters does. An operator VecStore cannot express
raises UnsupportedFilter. Pure: no client.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

Filter = dict[str, Any]
"""A native filter."""

Scalar = str | int | float


class UnsupportedFilter(ValueError):
    """A LlamaIndex filter that has no native equivalent."""


def native_filter(filters: MetadataFilters | None) -> Filter | None:
    """The native filter for LlamaIndex metadata filters (None for none)."""
    if filters is None or not filters.filters:
        return None
    return _combined(filters)


def _combined(filters: MetadataFilters) -> Filter:
    if not filters.filters:
        raise UnsupportedFilter("nested MetadataFilters must hold at least one filter")
    children = [
        _combined(child) if isinstance(child, MetadataFilters) else _condition(child)
        for child in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition is FilterCondition.AND:
        return {"must": children}
    if condition is FilterCondition.OR:
        return {"should": children}
    if condition is FilterCondition.NOT:
        return {"must_not": children}
    raise UnsupportedFilter(f"filter condition {condition!r} is not supported; expected and, or, not")


def _condition(metadata_filter: MetadataFilter) -> Filter:
    key, value, operator = metadata_filter.key, metadata_filter.value, metadata_filter.operator
    if operator is FilterOperator.IS_EMPTY:
        return {"is_empty": {"key": key}}
    if operator in (FilterOperator.EQ, FilterOperator.NE):
        equal = {"key": key, "match": {"value": _scalar(key, operator, value)}}
        return equal if operator is FilterOperator.EQ else {"must_not": [equal]}
    if operator in _RANGE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UnsupportedFilter(
                f"{operator.name} on {key!r} compares numbers only in VecStore, got {value!r}"
            )
        return {"key": key, "range": {_RANGE[operator]: value}}
    if operator in (FilterOperator.IN, FilterOperator.ANY, FilterOperator.NIN):
        one_of = {"key": key, "match": {"any": _scalars(key, operator, value)}}
        return {"must_not": [one_of]} if operator is FilterOperator.NIN else one_of
    if operator is FilterOperator.ALL:
        return {"must": [{"key": key, "match": {"value": v}} for v in _scalars(key, operator, value)]}
    if operator is FilterOperator.CONTAINS:
        return {"key": key, "contains": _scalar(key, operator, value)}
    if operator is FilterOperator.TEXT_MATCH:
        if not isinstance(value, str):
            raise UnsupportedFilter(f"TEXT_MATCH on {key!r} needs a string, got {value!r}")
        return {"key": key, "match": {"text": value}}
    raise UnsupportedFilter(
        f"filter operator {operator.name} on {key!r} is not supported by VecStore; supported: "
        f"{', '.join(op.name for op in SUPPORTED_OPERATORS)}"
    )


_RANGE = {
    FilterOperator.GT: "gt",
    FilterOperator.GTE: "gte",
    FilterOperator.LT: "lt",
    FilterOperator.LTE: "lte",
}

SUPPORTED_OPERATORS = (
    FilterOperator.EQ,
    FilterOperator.NE,
    *_RANGE,
    FilterOperator.IN,
    FilterOperator.NIN,
    FilterOperator.ANY,
    FilterOperator.ALL,
    FilterOperator.CONTAINS,
    FilterOperator.TEXT_MATCH,
    FilterOperator.IS_EMPTY,
)


def _scalar(key: str, operator: FilterOperator, value: Any) -> Scalar:
    if not isinstance(value, (str, int, float)):
        raise UnsupportedFilter(f"{operator.name} on {key!r} needs one string or number, got {value!r}")
    return value


def _scalars(key: str, operator: FilterOperator, value: Any) -> list[Scalar]:
    if not isinstance(value, list) or not value:
        raise UnsupportedFilter(f"{operator.name} on {key!r} needs a non-empty list of values, got {value!r}")
    return [_scalar(key, operator, v) for v in value]
