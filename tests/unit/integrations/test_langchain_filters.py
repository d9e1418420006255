"""LangChain metadata filters translate to native filters that select what they say.

Each translation is parsed and evaluated by the shard's own filter code
(`parse_filter`, `matches`) over a few payloads laid out as the adapter stores them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from vecstore.cluster.filters import parse_filter
from vecstore.integrations.langchain_filters import native_filter
from vecstore.shard.payload_filter import matches

METADATA: list[dict[str, Any]] = [
    {"lang": "en", "year": 2019, "tags": ["a", "b"], "author": {"name": "ann"}},
    {"lang": "en", "year": 2021, "tags": ["c"]},
    {"lang": "de", "year": 2023, "tags": ["a"], "draft": True},
    {"lang": "fr", "year": 2020.5},
    {"year": 2024},
]
PAYLOADS = [{"page_content": f"text {i}", "metadata": m, "id": f"doc-{i}"} for i, m in enumerate(METADATA)]


def selected(condition: dict[str, Any] | None) -> list[int]:
    native = native_filter(condition, "metadata")
    if native is None:
        return list(range(len(PAYLOADS)))
    parsed = parse_filter(native)
    return [i for i, payload in enumerate(PAYLOADS) if matches(parsed, f"point-{i}", payload)]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, [0, 1, 2, 3, 4]),
        ({"lang": "en"}, [0, 1]),
        ({"lang": "en", "year": 2021}, [1]),
        ({"draft": True}, [2]),
        ({"tags": ["b", "c"]}, [0, 1]),  # a list: any of the values
        ({"author.name": "ann"}, [0]),  # a dotted key reaches into nested metadata
        ({"year": {"$gte": 2020, "$lt": 2023}}, [1, 3]),
        ({"year": {"$gt": 2023}}, [4]),
        ({"year": {"$lte": 2019}}, [0]),
        ({"lang": {"$eq": "de"}}, [2]),
        ({"lang": {"$ne": "en"}}, [2, 3, 4]),  # a missing field is "not equal"
        ({"lang": {"$in": ["de", "fr"]}}, [2, 3]),
        ({"lang": {"$nin": ["de", "fr"]}}, [0, 1, 4]),
        ({"$or": [{"lang": "de"}, {"year": {"$gte": 2024}}]}, [2, 4]),
        ({"$and": [{"lang": "en"}, {"tags": ["a"]}]}, [0]),
        ({"$not": {"lang": "en", "year": 2019}}, [1, 2, 3, 4]),
        ({"$or": [{"lang": "fr"}, {"$and": [{"lang": "en"}, {"year": {"$gt": 2020}}]}]}, [1, 3]),
        # a native filter passes through unchanged (keys are payload paths)
        ({"must": [{"key": "metadata.year", "range": {"gte": 2023}}]}, [2, 4]),
        ({"must_not": [{"key": "id", "match": {"value": "doc-0"}}]}, [1, 2, 3, 4]),
    ],
)
def test_the_translation_selects_what_the_filter_says(
    condition: dict[str, Any] | None, expected: list[int]
) -> None:
    assert selected(condition) == expected


def test_a_native_filter_is_passed_through_as_is() -> None:
    native = {"should": [{"key": "metadata.lang", "match": {"value": "en"}}]}
    assert native_filter(native, "metadata") == native


def test_metadata_fields_are_read_under_the_configured_key() -> None:
    assert native_filter({"lang": "en"}, "meta") == {"must": [{"key": "meta.lang", "match": {"value": "en"}}]}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({}, "empty filter"),
        ({"year": {}}, "is empty"),
        ({"year": {"$gte": "2020"}}, "compares numbers only"),
        ({"year": {"$gt": True}}, "compares numbers only"),
        ({"year": {"$between": [1, 2]}}, "'$between'"),
        ({"$xor": [{"a": 1}]}, "unknown filter operator '$xor'"),
        ({"$or": []}, "non-empty list of filters"),
        ({"$or": {"a": 1}}, "non-empty list of filters"),
        ({"$not": [{"a": 1}]}, "$not takes one filter"),
        ({"lang": None}, "expected a string, number or boolean"),
        ({"lang": {"nested": "object"}}, "expected a value, a list of values, or operators"),
        ({"lang": []}, "non-empty list of values"),
        ({"lang": {"$in": "en"}}, "non-empty list of values"),
    ],
)
def test_a_filter_that_cannot_be_translated_is_a_clear_error(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        native_filter(condition, "metadata")


def test_a_filter_that_is_not_a_dict_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="filter must be a dict, got list"):
        native_filter([{"lang": "en"}], "metadata")  # type: ignore[arg-type]
