"""How deeply a document may nest: the walk, and the bound on whole request bodies.

Deep nesting breaks Python's recursive code (json, deepcopy, repr, our own translators)
with a RecursionError, i.e. a 500, and a stored payload that deep would break every later
read of its point. So bodies are refused when decoded (MAX_BODY_DEPTH, here) and payloads
when written (commands.MAX_PAYLOAD_DEPTH), with a 400. The walk is iterative: the check
itself must never overflow the stack.
"""

from __future__ import annotations

from collections.abc import Iterable

from vecstore.cluster.errors import InvalidRequest

MAX_BODY_DEPTH = 128
"""Levels of objects/arrays in a request body or RPC frame: a payload at its bound inside
a batch (3 + 32) or a filter at its bound (two levels per filter level) fits easily."""


CONTAINERS: frozenset[type] = frozenset({dict, list, tuple})
"""The container types decoded JSON and msgpack hold (exact types: decoders make no subclasses)."""


def depth_exceeds(value: object, limit: int) -> bool:
    """Whether objects/arrays nest more than `limit` levels in `value` (a scalar is level 0).

    A container holding no container (a vector: most of a batch's bytes) is passed over
    with one C-level pass over its element types, not a Python step per element."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        if CONTAINERS.isdisjoint(map(type, children)):
            continue
        stack.extend((child, depth + 1) for child in children if type(child) in CONTAINERS)
    return False


def check_depth(value: object, limit: int, what: str) -> None:
    """InvalidRequest when `value` nests deeper than `limit` levels."""
    if depth_exceeds(value, limit):
        raise InvalidRequest(f"{what} is nested deeper than {limit} levels of objects and arrays")
