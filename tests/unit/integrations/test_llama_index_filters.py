"""LlamaIndex metadata filters translate to native filters that agree with LlamaIndex.

The reference is LlamaIndex's own in-memory evaluation (`build_metadata_filter_fn`, what
its SimpleVectorStore uses): every supported operator and condition, over metadata with
missing keys, numbers, strings and lists, must select the same nodes once translated and
evaluated by the shard's filter code.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from vecstore.cluster.filters import parse_filter
from vecstore.integrations.llama_index_filters import UnsupportedFilter, native_filter
from vecstore.shard.payload_filter import matches

METADATA: list[dict[str, Any]] = [
    {"lang": "en", "year": 2019, "tags": ["a", "b"], "title": "the red fox"},
    {"lang": "en", "year": 2021, "tags": ["c"], "title": "blue"},
    {"lang": "de", "year": 2023, "tags": ["a"]},
    {"lang": "fr", "year": 2020.5, "title": "red sky"},
    {"year": 2024},
    {},
]

SCALAR_FILTERS = [
    MetadataFilter(key="lang", value="en"),
    MetadataFilter(key="year", value=2021, operator=FilterOperator.EQ),
    MetadataFilter(key="lang", value="en", operator=FilterOperator.NE),
    MetadataFilter(key="year", value=2021, operator=FilterOperator.GT),
    MetadataFilter(key="year", value=2021, operator=FilterOperator.GTE),
    MetadataFilter(key="year", value=2020.5, operator=FilterOperator.LT),
    MetadataFilter(key="year", value=2020.5, operator=FilterOperator.LTE),
    MetadataFilter(key="lang", value=["de", "fr"], operator=FilterOperator.IN),
    MetadataFilter(key="year", value=[2019, 2024], operator=FilterOperator.IN),
    MetadataFilter(key="lang", value=["de", "fr"], operator=FilterOperator.NIN),
    MetadataFilter(key="title", value="red", operator=FilterOperator.TEXT_MATCH),
    MetadataFilter(key="title", value="", operator=FilterOperator.IS_EMPTY),
]
LIST_FILTERS = [
    MetadataFilter(key="tags", value="a", operator=FilterOperator.CONTAINS),
    MetadataFilter(key="tags", value=["b", "c"], operator=FilterOperator.ANY),
    MetadataFilter(key="tags", value=["a", "b"], operator=FilterOperator.ALL),
]


def reference(filters: MetadataFilters, metadata: list[dict[str, Any]]) -> list[int]:
    keep = build_metadata_filter_fn(lambda node_id: metadata[int(node_id)], filters)
    return [i for i in range(len(metadata)) if keep(str(i))]


def translated(filters: MetadataFilters, metadata: list[dict[str, Any]]) -> list[int]:
    native = native_filter(filters)
    assert native is not None
    parsed = parse_filter(native)
    return [i for i, payload in enumerate(metadata) if matches(parsed, i, payload)]


@pytest.mark.parametrize("one", SCALAR_FILTERS, ids=lambda f: f"{f.key}-{f.operator.name}")
def test_each_operator_selects_what_llama_index_selects(one: MetadataFilter) -> None:
    filters = MetadataFilters(filters=[one])
    expected = reference(filters, METADATA)
    assert 0 < len(expected) < len(METADATA)  # the case tells something
    assert translated(filters, METADATA) == expected


@pytest.mark.parametrize("one", LIST_FILTERS, ids=lambda f: f"{f.key}-{f.operator.name}")
def test_list_operators_select_what_llama_index_selects(one: MetadataFilter) -> None:
    with_tags = [m for m in METADATA if "tags" in m]  # LlamaIndex fails on a missing list
    filters = MetadataFilters(filters=[one])
    expected = reference(filters, with_tags)
    assert 0 < len(expected) < len(with_tags)
    assert translated(filters, with_tags) == expected


@pytest.mark.parametrize("condition", [FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT])
def test_conditions_combine_like_llama_index(condition: FilterCondition) -> None:
    for pair in itertools.combinations(SCALAR_FILTERS, 2):
        filters = MetadataFilters(filters=list(pair), condition=condition)
        assert translated(filters, METADATA) == reference(filters, METADATA), pair


def test_nested_filters_combine() -> None:
    inner = MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="en"),
            MetadataFilter(key="year", value=2020, operator=FilterOperator.GT),
        ],
        condition=FilterCondition.AND,
    )
    outer = MetadataFilters(
        filters=[inner, MetadataFilter(key="lang", value="fr")], condition=FilterCondition.OR
    )
    assert translated(outer, METADATA) == [1, 3]


def test_no_filters_is_no_native_filter() -> None:
    assert native_filter(None) is None
    assert native_filter(MetadataFilters(filters=[])) is None


@pytest.mark.parametrize(
    ("one", "message"),
    [
        (
            MetadataFilter(key="title", value="RED", operator=FilterOperator.TEXT_MATCH_INSENSITIVE),
            "not supported",
        ),
        (MetadataFilter(key="year", value="2020", operator=FilterOperator.GT), "compares numbers only"),
        (MetadataFilter(key="lang", value=["en"], operator=FilterOperator.EQ), "needs one string or number"),
        (MetadataFilter(key="lang", value=None, operator=FilterOperator.EQ), "needs one string or number"),
        (MetadataFilter(key="lang", value="en", operator=FilterOperator.IN), "non-empty list of values"),
        (MetadataFilter(key="lang", value=[], operator=FilterOperator.NIN), "non-empty list of values"),
    ],
)
def test_what_vecstore_cannot_express_is_a_clear_error(one: MetadataFilter, message: str) -> None:
    with pytest.raises(UnsupportedFilter, match=re.escape(message)):
        native_filter(MetadataFilters(filters=[one]))
