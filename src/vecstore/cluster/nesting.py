"""How deeply a document may nest: one bound for request bodies, a tighter one for payloads.

Deep nesting breaks Python's recursive code (json, deepcopy, our own translators) with a
RecursionError, i.e. a 500, and a stored payload that deep would break every later read
of its point. So bodies are refused when decoded and payloads when written, with a 400.
The walk is iterative: the check itself cannot overflow the stack.
"""

from __future__ import annotations

from vecstore.cluster.errors import InvalidRequest

MAX_BODY_DEPTH = 128
"""Levels of objects/arrays in a request body: a payload at its bound inside a batch,
or a filter at its bound (each filter level is an object and an array), fits easily."""
MAX_PAYLOAD_DEPTH = 32
"""Levels of objects/arrays inside one point's payload (the payload object is level 1)."""


def depth_exceeds(value: object, limit: int) -> bool:
    """Whether objects/arrays nest more than `limit` levels in `value` (a scalar is level 0)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return False


def check_depth(value: object, limit: int, what: str) -> None:
    """InvalidRequest when `value` nests deeper than `limit` levels."""
    if depth_exceeds(value, limit):
        raise InvalidRequest(f"{what} is nested deeper than {limit} levels of objects and arrays")
