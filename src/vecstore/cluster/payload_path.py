"""Payload key paths: `a.b`, `a[].b`, `a[0].b`, `"dotted.name".c`, parsed once into items.

The grammar is qdrant-client's (`local/json_path_parser.py`), a little more lenient about
which characters a bare name may hold. Pure: parsing never reads a payload.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

WILDCARD: Final = None
"""The `[]` item: every element of an array."""
MAX_INDEX = 2**64 - 1

PathItem = str | int | None
"""A name (object member), an index into an array, or WILDCARD."""


class InvalidPath(ValueError):
    """A key that is not a valid path; the message says where."""


@lru_cache(maxsize=4096)
def parse_path(key: str) -> tuple[PathItem, ...]:
    """The items of a key path, or InvalidPath."""
    if not key:
        raise InvalidPath("a key must not be empty")
    items: list[PathItem] = []
    position = 0
    while True:
        position = _name(key, position, items)
        while position < len(key) and key[position] == "[":
            position = _bracket(key, position, items)
        if position == len(key):
            return tuple(items)
        if key[position] != "." or position + 1 == len(key):
            raise InvalidPath(f"unexpected {key[position]!r} at position {position}")
        position += 1


def _name(key: str, position: int, items: list[PathItem]) -> int:
    if key[position] == '"':
        end = key.find('"', position + 1)
        if end == -1 or end == position + 1:
            raise InvalidPath(f"unterminated or empty quoted name at position {position}")
        items.append(key[position + 1 : end])
        return end + 1
    end = position
    while end < len(key) and key[end] not in '.[]"':
        end += 1
    if end == position:
        raise InvalidPath(f"a name is missing at position {position}")
    items.append(key[position:end])
    return end


def _bracket(key: str, position: int, items: list[PathItem]) -> int:
    end = key.find("]", position)
    if end == -1:
        raise InvalidPath(f"unclosed '[' at position {position}")
    inside = key[position + 1 : end]
    if not inside:
        items.append(WILDCARD)
    elif inside.isascii() and inside.isdigit() and int(inside) <= MAX_INDEX:
        items.append(int(inside))
    else:
        raise InvalidPath(f"array index {inside!r} must be empty or a non-negative integer")
    return end + 1


def is_plain_name(key: str) -> bool:
    """True if the key is one top-level name (no dots, brackets or quotes)."""
    return not any(mark in key for mark in '.[]"')
