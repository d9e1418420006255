"""Qdrant filter JSON translated into our filter AST, refusing what we cannot evaluate exactly.

Qdrant's condition vocabulary is larger than ours. Every condition is either translated
to one with the same meaning or refused with an error naming it: never dropped, never
approximated. Pure functions only: no I/O.
"""

from __future__ import annotations

from typing import Any

from vecstore.cluster.errors import InvalidFilter, NotImplementedParameter
from vecstore.cluster.filters import GEO_KINDS, MAX_FILTER_DEPTH, Filter, parse_filter
from vecstore.cluster.payload_path import InvalidPath, parse_path

CLAUSES = ("must", "should", "must_not")
FIELD_KINDS = ("match", "range", "is_empty", "is_null", *GEO_KINDS)
FIELD_KINDS_ALL = (*FIELD_KINDS, "values_count")
MATCH_KINDS = ("value", "any", "except", "text", "text_any", "phrase", "prefix", "substring")
SUPPORTED = (
    "supported conditions: match value/any/except/text/text_any/phrase/prefix/substring, numeric "
    "and datetime range, geo_radius, geo_bounding_box, geo_polygon, is_empty, is_null, values_count, "
    "has_id, has_vector, nested, and must/should/must_not/min_should filters"
)
UNSUPPORTED_CONDITIONS = {
    "slice": "slice",
}


def filter_from_qdrant(raw: object, where: str = "filter") -> Filter | None:
    """The AST of a Qdrant filter (None for a missing or null filter)."""
    if raw is None:
        return None
    return parse_filter(_clauses(raw, where, 0))


def _unsupported(what: str, where: str) -> NotImplementedParameter:
    return NotImplementedParameter(f"{where}: {what} is not supported by VecStore; {SUPPORTED}")


def _clauses(data: object, where: str, depth: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidFilter(f"{where} must be an object with must, should or must_not")
    unknown = set(data) - {*CLAUSES, "min_should"}
    if unknown:
        raise InvalidFilter(
            f"{where} has unknown field(s) {sorted(unknown)}: expected must, should, must_not"
        )
    translated: dict[str, Any] = {}
    min_should = data.get("min_should")
    if min_should is not None:
        if not isinstance(min_should, dict) or not isinstance(min_should.get("conditions"), list):
            raise InvalidFilter(f'{where}.min_should expects {{"conditions": [...], "min_count": n}}')
        translated["min_should"] = {
            "conditions": [
                _condition(item, f"{where}.min_should.conditions[{i}]", depth + 1)
                for i, item in enumerate(min_should["conditions"])
            ],
            "min_count": min_should.get("min_count"),
        }
    for clause in CLAUSES:
        raw = data.get(clause)
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else [raw]
        translated[clause] = [
            _condition(item, f"{where}.{clause}[{i}]", depth + 1) for i, item in enumerate(items)
        ]
    # an empty filter matches everything, also where it stands as a condition
    return translated or {"must": []}


def _condition(data: object, where: str, depth: int) -> dict[str, Any]:
    if depth > MAX_FILTER_DEPTH:  # the same bound as parse_filter, checked before recursing deeper
        raise InvalidFilter(f"filter is nested deeper than {MAX_FILTER_DEPTH} levels")
    if not isinstance(data, dict):
        raise InvalidFilter(f"{where} must be an object (a condition or a nested filter)")
    present = {key for key, value in data.items() if value is not None}
    if present & {*CLAUSES, "min_should"} or not present:
        return _clauses(data, where, depth)
    for name, what in UNSUPPORTED_CONDITIONS.items():
        if name in present and "key" not in present:
            raise _unsupported(what, where)
    if "has_id" in present:
        _only(present, {"has_id"}, where)
        return {"has_id": data["has_id"]}
    if "has_vector" in present:
        _only(present, {"has_vector"}, where)
        return {"has_vector": data["has_vector"]}
    for standalone in ("is_empty", "is_null"):
        if standalone in present and "key" not in present:
            _only(present, {standalone}, where)
            target = data[standalone]
            if not isinstance(target, dict) or "key" not in target:
                raise InvalidFilter(f'{where}: {standalone} expects {{"key": "<field>"}}')
            return {standalone: {"key": filter_key(target["key"], where)}}
    if "nested" in present and "key" not in present:
        _only(present, {"nested"}, where)
        target = data["nested"]
        if not isinstance(target, dict) or "key" not in target or "filter" not in target:
            raise InvalidFilter(f'{where}: nested expects {{"key": "<array field>", "filter": {{...}}}}')
        inner = _clauses(target["filter"], f"{where}.nested.filter", depth + 1)
        return {"nested": {"key": filter_key(target["key"], where), "filter": inner}}
    if "key" in present:
        return _field_condition(data, present, where)
    raise InvalidFilter(f"{where}: unknown condition {sorted(present)}; {SUPPORTED}")


def _only(present: set[str], allowed: set[str], where: str) -> None:
    extra = present - allowed
    if extra:
        raise InvalidFilter(f"{where}: unexpected field(s) {sorted(extra)} next to {sorted(allowed)}")


def _field_condition(data: dict[str, Any], present: set[str], where: str) -> dict[str, Any]:
    key = filter_key(data["key"], where)
    _only(present, {"key", *FIELD_KINDS_ALL}, where)
    kinds = sorted(present & set(FIELD_KINDS_ALL))
    if len(kinds) != 1:
        raise InvalidFilter(
            f"{where}: a condition on {key!r} needs exactly one of match, range, is_empty, is_null "
            f"or values_count, got {kinds}"
        )
    kind = kinds[0]
    operand = data[kind]
    if kind == "match":
        return {"key": key, "match": _match(operand, key, where)}
    if kind == "range":
        return {"key": key, "range": _range(operand, key, where)}
    if kind in ("is_empty", "is_null"):
        if not isinstance(operand, bool):
            raise InvalidFilter(f"{where}: {kind} on {key!r} must be true or false")
        holds = {kind: {"key": key}}
        return holds if operand else {"must_not": [holds]}
    if kind == "values_count":
        if not isinstance(operand, dict):
            raise InvalidFilter(f"{where}: values_count on {key!r} must be an object with gt, gte, lt or lte")
        return {"key": key, "values_count": {k: v for k, v in operand.items() if v is not None}}
    return {"key": key, kind: operand}  # a geo condition: parse_filter validates it


def _match(match: object, key: str, where: str) -> dict[str, Any]:
    if not isinstance(match, dict) or len(match) != 1:
        raise InvalidFilter(f"{where}: match on {key!r} needs exactly one of {', '.join(MATCH_KINDS)}")
    ((kind, operand),) = match.items()
    if kind in MATCH_KINDS:  # the same names and meanings as ours (Qdrant's match without a text index)
        return {kind: operand}
    raise InvalidFilter(f"{where}: match kind {kind!r} on {key!r} is not one of {', '.join(MATCH_KINDS)}")


def _range(bounds: object, key: str, where: str) -> dict[str, Any]:
    if not isinstance(bounds, dict):
        raise InvalidFilter(f"{where}: range on {key!r} must be an object with gt, gte, lt or lte")
    unknown = set(bounds) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise InvalidFilter(f"{where}: range on {key!r} has unknown bound(s) {sorted(unknown)}")
    # string bounds make a datetime range (Qdrant's DatetimeRange): parse_filter reads them
    return {name: value for name, value in bounds.items() if value is not None}


def filter_key(key: object, where: str) -> str:
    """A Qdrant filter key, checked: `a.b`, `a[].b`, `a[0].b` and `"quoted.name"` as in Qdrant."""
    if not isinstance(key, str):
        raise InvalidFilter(f"{where}: key must be a string, got {key!r}")
    try:
        parse_path(key)
    except InvalidPath as err:
        raise InvalidFilter(f"{where}: key {key!r} is not a payload path: {err}") from None
    return key


def payload_key(key: object, where: str) -> str:
    """A Qdrant payload key (with_payload) in our dotted form: `a[].b` is `a.b`."""
    if not isinstance(key, str):
        raise InvalidFilter(f"{where}: key must be a string, got {key!r}")
    dotted = key.replace("[]", "")
    if any(mark in dotted for mark in '[]"'):
        raise _unsupported(f"the key syntax {key!r} (array indexes, quoted keys)", where)
    return dotted
