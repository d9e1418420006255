"""Payload filters: a small typed AST and its JSON form, close to Qdrant's conditions.

JSON form (every key optional, all combined with AND):
    {"must": [cond, ...], "should": [cond, ...], "must_not": [cond, ...]}
A condition is a nested filter, or one of:
    {"key": "a.b", "match": {"value": v}}          a.b == v
    {"key": "a.b", "match": {"any": [v, ...]}}     a.b in [...]
    {"key": "a.b", "match": {"except": [v, ...]}}  a.b not in [...]
    {"key": "a.b", "match": {"text": "s"}}         every word of "s" is a word of string a.b
    {"key": "a.b", "match": {"text_any": "s"}}     some word of "s" is a word of a.b
    {"key": "a.b", "match": {"phrase": "s"}}       the words of "s" appear in a.b in a row
    {"key": "a.b", "match": {"prefix": "s"}}       string a.b starts with "s"
    {"key": "a.b", "match": {"substring": "s"}}    string a.b contains "s"
    {"key": "a.b", "match": {"regex": "p"}}        string a.b has a match of the regular expression
    {"key": "a.b", "range": {"gt"|"gte"|"lt"|"lte": number}}
    {"key": "a.b", "range": {"gt"|"gte"|"lt"|"lte": "RFC 3339 datetime"}}
    {"key": "a.b", "geo_radius": {"center": {"lon": x, "lat": y}, "radius": metres}}
    {"key": "a.b", "geo_bounding_box": {"top_left": point, "bottom_right": point}}
    {"key": "a.b", "geo_polygon": {"exterior": {"points": [...]}, "interiors": [{"points": [...]}]}}
    {"key": "a.b", "contains": v}                  array a.b has element v, or string has substring
    {"key": "a.b", "op": "=="|"!="|"<"|"<="|">"|">=", "value": v}
    {"is_empty": {"key": "a.b"}}                   a.b missing, null or []
    {"is_null": {"key": "a.b"}}                    a.b present and null (or an array holding null)
    {"key": "a.b", "values_count": {"gt"|"gte"|"lt"|"lte": n}}   number of values at a.b
    {"nested": {"key": "a", "filter": {...}}}      one object of array a satisfies the whole filter
    {"has_id": [id, ...]}
    {"has_vector": "name"}                         the point has the named vector ("" : unnamed)
A filter may also have `"min_should": {"conditions": [cond, ...], "min_count": n}`: at least
n of the conditions hold.
Keys are paths (`cluster/payload_path.py`): `a.b`, `a[].b`, `a[0].b`, `"dotted.name"`.
Parsing never evaluates; evaluation lives in the shard. This module defines the AST once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vecstore.cluster.datetimes import format_datetime, parse_datetime
from vecstore.cluster.errors import InvalidFilter, InvalidPointId
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.payload_path import InvalidPath, parse_path

MAX_FILTER_DEPTH = 16
MAX_FILTER_NODES = 1_000
INTEGER_RANGE = (-(2**63), 2**64 - 1)
"""What msgpack (routers to nodes) carries; payload integers have the same bound."""

MAX_REGEX_LENGTH = 256
"""Longer patterns are refused: `re` has no timeout, so a pattern's size is what we can bound."""
MAX_POLYGON_POINTS = 4_096
"""Points of one polygon, exterior and interiors together."""
MAX_TEXT_LENGTH = 4_096
Scalar = str | int | float | bool
GeoPoint = tuple[float, float]
"""(lon, lat) in degrees."""


class CompareOp(StrEnum):
    """Comparison operators on one payload field."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


@dataclass(frozen=True)
class Compare:
    """`key <op> value`; true if any value stored at `key` satisfies it."""

    key: str
    op: CompareOp
    value: Scalar


@dataclass(frozen=True)
class In:
    """`key in values` (or `not in` when negate): any stored value is (not) one of them."""

    key: str
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class Contains:
    """Array at `key` has element `value`, or the string at `key` contains it as a substring."""

    key: str
    value: Scalar


@dataclass(frozen=True)
class IsEmpty:
    """The field is missing, null, or an empty array."""

    key: str


@dataclass(frozen=True)
class IsNull:
    """A value at `key` is null, or an array holding null (a missing field is not null)."""

    key: str


@dataclass(frozen=True)
class ValuesCount:
    """The number of values at `key` (an array's length, 1 for any other value, 0 for null) is
    within every bound given; with several values (arrays met on the way), any one. A missing
    field matches no bound."""

    key: str
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


@dataclass(frozen=True)
class Nested:
    """Some object element of the array at `key` satisfies `filter` as a whole (its keys are
    relative to the element, so several conditions hold for the same element)."""

    key: str
    filter: Filter


@dataclass(frozen=True)
class MinShould:
    """At least `min_count` of the children hold."""

    children: tuple[Filter, ...]
    min_count: int


@dataclass(frozen=True)
class DatetimeRange:
    """A string at `key` parses as a datetime (`cluster/datetimes.py`) within every bound;
    bounds are microseconds since the epoch, UTC."""

    key: str
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


class TextMode(StrEnum):
    """How the words of a text query must appear in a string (Qdrant's unindexed text match)."""

    ALL = "text"
    ANY = "text_any"
    PHRASE = "phrase"


@dataclass(frozen=True)
class Text:
    """Words (runs of letters and digits, lowercased) of `query` in the string at `key`."""

    key: str
    query: str
    mode: TextMode


@dataclass(frozen=True)
class Prefix:
    """The string at `key` starts with `prefix` (case-sensitive)."""

    key: str
    prefix: str


@dataclass(frozen=True)
class Regex:
    """The string at `key` has a match of `pattern` (Python `re.search`)."""

    key: str
    pattern: str


@dataclass(frozen=True)
class GeoRadius:
    """A geo point at `key` lies less than `radius` metres from (lon, lat) (haversine)."""

    key: str
    lon: float
    lat: float
    radius: float


@dataclass(frozen=True)
class GeoBox:
    """A geo point at `key` lies strictly inside the box; `left > right` crosses the antimeridian."""

    key: str
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class GeoPolygon:
    """A geo point at `key` lies strictly inside the exterior ring and strictly outside every
    interior ring (a point on any ring does not match); rings are closed lists of (lon, lat)."""

    key: str
    exterior: tuple[GeoPoint, ...]
    interiors: tuple[tuple[GeoPoint, ...], ...] = ()


GeoCondition = GeoRadius | GeoBox | GeoPolygon
StringCondition = DatetimeRange | Text | Prefix | Regex
"""Conditions that hold for some strings: decided once per distinct string by the index."""


@dataclass(frozen=True)
class HasVector:
    """The point has the named vector `name` ("" : the unnamed vector, which every point of a
    collection of one vector has). Shards resolve it into the ids that have it before
    evaluating (`vecstore.shard.named.resolve`)."""

    name: str


@dataclass(frozen=True)
class HasId:
    """The point's id is one of `ids`."""

    ids: frozenset[PointId]


@dataclass(frozen=True)
class And:
    """All children hold (true when there are none)."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one child holds."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The child does not hold."""

    child: Filter


Filter = (
    Compare
    | In
    | Contains
    | IsEmpty
    | IsNull
    | ValuesCount
    | Nested
    | MinShould
    | HasId
    | HasVector
    | And
    | Or
    | Not
    | DatetimeRange
    | Text
    | Prefix
    | Regex
    | GeoRadius
    | GeoBox
    | GeoPolygon
)

_RANGE_OPS = {"gt": CompareOp.GT, "gte": CompareOp.GE, "lt": CompareOp.LT, "lte": CompareOp.LE}


def parse_filter(data: object) -> Filter:
    """Parse the JSON form into the AST, or raise InvalidFilter saying what was expected."""
    counter = [0]
    return _parse_clauses(data, depth=0, counter=counter)


def _parse_clauses(data: object, depth: int, counter: list[int]) -> Filter:
    if not isinstance(data, dict):
        raise InvalidFilter(f"filter must be an object, got {type(data).__name__}")
    unknown = set(data) - {"must", "should", "must_not", "min_should"}
    if unknown:
        raise InvalidFilter(f"unknown filter clause(s) {sorted(unknown)}: expected must, should or must_not")
    parts: list[Filter] = []
    for clause in ("must", "should", "must_not"):
        raw = data.get(clause)
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else [raw]
        children = tuple(_parse_condition(item, depth + 1, counter) for item in items)
        if clause == "must":
            parts.extend(children)
        elif clause == "should":
            if children:
                parts.append(Or(children))
        else:
            parts.extend(Not(child) for child in children)
    if data.get("min_should") is not None:
        parts.append(_parse_min_should(data["min_should"], depth, counter))
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts))


def _parse_condition(data: object, depth: int, counter: list[int]) -> Filter:
    counter[0] += 1
    if depth > MAX_FILTER_DEPTH:
        raise InvalidFilter(f"filter is nested deeper than {MAX_FILTER_DEPTH} levels")
    if counter[0] > MAX_FILTER_NODES:
        raise InvalidFilter(f"filter has more than {MAX_FILTER_NODES} conditions")
    if not isinstance(data, dict):
        raise InvalidFilter(f"condition must be an object, got {type(data).__name__}")
    if not data or set(data) & {"must", "should", "must_not", "min_should"}:  # {} matches everything
        return _parse_clauses(data, depth, counter)
    if "has_id" in data:
        return _parse_has_id(data["has_id"])
    if "has_vector" in data:
        name = data["has_vector"]
        if set(data) != {"has_vector"} or not isinstance(name, str) or len(name) > 64:
            raise InvalidFilter('has_vector expects a vector name: {"has_vector": "<name>"}')
        return HasVector(name)
    if "is_empty" in data:
        target = data["is_empty"]
        if not isinstance(target, dict) or set(target) != {"key"}:
            raise InvalidFilter('is_empty expects {"key": "<field>"}')
        return IsEmpty(_parse_key(target["key"]))
    if "is_null" in data:
        target = data["is_null"]
        if set(data) != {"is_null"} or not isinstance(target, dict) or set(target) != {"key"}:
            raise InvalidFilter('is_null expects {"key": "<field>"}')
        return IsNull(_parse_key(target["key"]))
    if "nested" in data:
        return _parse_nested(data, depth, counter)
    if "key" not in data:
        raise InvalidFilter(f"condition {data!r} has no 'key' and is not has_id, is_empty or a filter")
    key = _parse_key(data["key"])
    kinds = set(data) & {"match", "range", "contains", "op", "values_count", *GEO_KINDS}
    if len(kinds) != 1 or set(data) - {"key", "value", *kinds}:
        raise InvalidFilter(
            f"condition on {key!r} must have exactly one of match, range, contains, values_count or "
            "op/value (or geo_radius, geo_bounding_box, geo_polygon)"
        )
    (kind,) = kinds
    if kind in GEO_KINDS:
        return _parse_geo(key, kind, data[kind])
    if "values_count" in data:
        return _parse_values_count(key, data["values_count"])
    if "match" in data:
        return _parse_match(key, data["match"])
    if "range" in data:
        return _parse_range(key, data["range"])
    if "contains" in data:
        return Contains(key, _parse_scalar(data["contains"], key))
    try:
        op = CompareOp(data["op"])
    except ValueError:
        allowed = ", ".join(o.value for o in CompareOp)
        raise InvalidFilter(f"operator {data['op']!r} on {key!r} is not one of {allowed}") from None
    if "value" not in data:
        raise InvalidFilter(f"condition on {key!r} with op {op.value} needs a 'value'")
    value = _parse_scalar(data["value"], key)
    if op in (CompareOp.LT, CompareOp.LE, CompareOp.GT, CompareOp.GE):
        _require_number(value, key)
    return Compare(key, op, value)


MATCH_KINDS = ("value", "any", "except", "text", "text_any", "phrase", "prefix", "substring", "regex")
GEO_KINDS = ("geo_radius", "geo_bounding_box", "geo_polygon")


def _parse_match(key: str, match: object) -> Filter:
    if not isinstance(match, dict) or len(match) != 1:
        raise InvalidFilter(f"match on {key!r} must have exactly one of {', '.join(MATCH_KINDS)}")
    ((kind, operand),) = match.items()
    if kind in ("text", "text_any", "phrase", "prefix", "substring", "regex"):
        return _parse_string_match(key, kind, operand)
    if kind == "value":
        return Compare(key, CompareOp.EQ, _parse_scalar(operand, key))
    if kind in ("any", "except"):
        if not isinstance(operand, list):
            raise InvalidFilter(f"match.{kind} on {key!r} must be a list")
        values = tuple(_parse_scalar(v, key) for v in operand)
        return In(key, values, negate=kind == "except")
    raise InvalidFilter(f"match kind {kind!r} on {key!r} is not one of {', '.join(MATCH_KINDS)}")


def _parse_string_match(key: str, kind: str, operand: object) -> Filter:
    if not isinstance(operand, str):
        raise InvalidFilter(f"match.{kind} on {key!r} must be a string")
    if len(operand) > MAX_TEXT_LENGTH:
        raise InvalidFilter(f"match.{kind} on {key!r} is longer than {MAX_TEXT_LENGTH} characters")
    if kind == "substring":
        return Contains(key, operand)
    if kind == "prefix":
        return Prefix(key, operand)
    if kind == "regex":
        if len(operand) > MAX_REGEX_LENGTH:
            raise InvalidFilter(
                f"match.regex on {key!r} has {len(operand)} characters, more than {MAX_REGEX_LENGTH}"
            )
        try:
            re.compile(operand)
        except re.error as err:
            raise InvalidFilter(f"match.regex on {key!r} is not a valid regular expression: {err}") from None
        return Regex(key, operand)
    return Text(key, operand, TextMode(kind))


def _parse_geo(key: str, kind: str, operand: object) -> Filter:
    where = f"{kind} on {key!r}"
    if not isinstance(operand, dict):
        raise InvalidFilter(f"{where} must be an object")
    if kind == "geo_radius":
        _expect_fields(operand, {"center", "radius"}, set(), where)
        lon, lat = _parse_geo_point(operand["center"], f"{where}: center")
        radius = operand["radius"]
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 <= radius < math.inf:
            raise InvalidFilter(f"{where}: radius must be a non-negative number of metres, got {radius!r}")
        return GeoRadius(key, lon, lat, float(radius))
    if kind == "geo_bounding_box":
        _expect_fields(operand, {"top_left", "bottom_right"}, set(), where)
        left, top = _parse_geo_point(operand["top_left"], f"{where}: top_left")
        right, bottom = _parse_geo_point(operand["bottom_right"], f"{where}: bottom_right")
        return GeoBox(key, left, top, right, bottom)
    _expect_fields(operand, {"exterior"}, {"interiors"}, where)
    exterior = _parse_ring(operand["exterior"], f"{where}: exterior")
    raw_interiors = operand.get("interiors")
    if raw_interiors is None:
        raw_interiors = []
    if not isinstance(raw_interiors, list):
        raise InvalidFilter(f"{where}: interiors must be a list of rings")
    interiors = tuple(_parse_ring(ring, f"{where}: interiors[{i}]") for i, ring in enumerate(raw_interiors))
    if len(exterior) + sum(len(ring) for ring in interiors) > MAX_POLYGON_POINTS:
        raise InvalidFilter(f"{where} has more than {MAX_POLYGON_POINTS} points")
    return GeoPolygon(key, exterior, interiors)


def _expect_fields(raw: dict[str, Any], required: set[str], optional: set[str], where: str) -> None:
    missing, extra = required - set(raw), set(raw) - required - optional
    if missing or extra:
        raise InvalidFilter(f"{where} expects fields {sorted(required | optional)}, got {sorted(raw)}")


def _parse_geo_point(raw: object, where: str) -> GeoPoint:
    if not isinstance(raw, dict) or set(raw) != {"lon", "lat"}:
        raise InvalidFilter(f'{where} must be a geo point {{"lon": x, "lat": y}}, got {raw!r}')
    lon, lat = raw["lon"], raw["lat"]
    for name, value, limit in (("lon", lon, 180), ("lat", lat, 90)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -limit <= value <= limit:
            raise InvalidFilter(f"{where}: {name} must be a number in [-{limit}, {limit}], got {value!r}")
    return float(lon), float(lat)


def _parse_ring(raw: object, where: str) -> tuple[GeoPoint, ...]:
    if not isinstance(raw, dict) or set(raw) != {"points"} or not isinstance(raw["points"], list):
        raise InvalidFilter(f'{where} must be {{"points": [geo point, ...]}}')
    points = raw["points"]
    if len(points) > MAX_POLYGON_POINTS:
        raise InvalidFilter(f"{where} has more than {MAX_POLYGON_POINTS} points")
    ring = tuple(_parse_geo_point(point, f"{where}.points[{i}]") for i, point in enumerate(points))
    if len(ring) < 4:
        raise InvalidFilter(f"{where} must have at least 4 points (a closed ring), got {len(ring)}")
    if ring[0] != ring[-1]:
        raise InvalidFilter(f"{where} must be closed: its first and last points must be the same")
    return ring


def _parse_min_should(raw: object, depth: int, counter: list[int]) -> Filter:
    if not isinstance(raw, dict) or set(raw) != {"conditions", "min_count"}:
        raise InvalidFilter('min_should expects {"conditions": [...], "min_count": n}')
    conditions, min_count = raw["conditions"], raw["min_count"]
    if not isinstance(conditions, list):
        raise InvalidFilter("min_should.conditions must be a list of conditions")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
        raise InvalidFilter(f"min_should.min_count must be a non-negative integer, got {min_count!r}")
    children = tuple(_parse_condition(item, depth + 1, counter) for item in conditions)
    return MinShould(children, min_count)


def _parse_nested(data: dict[str, Any], depth: int, counter: list[int]) -> Filter:
    target = data["nested"]
    if set(data) != {"nested"} or not isinstance(target, dict) or set(target) != {"key", "filter"}:
        raise InvalidFilter('nested expects {"key": "<array field>", "filter": {...}}')
    key = _parse_key(target["key"])
    if len(key) > 2 and key.endswith("[]"):  # "a[]" names the array as "a" does (as in Qdrant)
        key = key[:-2]
    return Nested(key, _parse_clauses(target["filter"], depth + 1, counter))


def _parse_values_count(key: str, bounds: object) -> Filter:
    if not isinstance(bounds, dict) or not bounds or set(bounds) - set(_RANGE_OPS):
        raise InvalidFilter(f"values_count on {key!r} must be an object with gt, gte, lt or lte")
    given = {name: value for name, value in bounds.items() if value is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise InvalidFilter(
                f"values_count.{name} on {key!r} must be a non-negative integer, got {value!r}"
            )
    if not given:
        raise InvalidFilter(f"values_count on {key!r} has no bounds")
    return ValuesCount(key, **given)


def _parse_range(key: str, bounds: object) -> Filter:
    if not isinstance(bounds, dict) or not bounds:
        raise InvalidFilter(f"range on {key!r} must be an object with gt, gte, lt or lte")
    unknown = set(bounds) - set(_RANGE_OPS)
    if unknown:
        raise InvalidFilter(f"range on {key!r} has unknown bounds {sorted(unknown)}")
    given = {name: value for name, value in bounds.items() if value is not None}
    if any(isinstance(value, str) for value in given.values()):
        return _parse_datetime_range(key, given)
    parts: list[Filter] = []
    for name, op in _RANGE_OPS.items():
        if name not in given:
            continue
        parts.append(Compare(key, op, _require_number(given[name], key)))
    if not parts:
        raise InvalidFilter(f"range on {key!r} has no bounds")
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_datetime_range(key: str, given: dict[str, Any]) -> Filter:
    parsed: dict[str, int] = {}
    for name, value in given.items():
        if not isinstance(value, str):
            raise InvalidFilter(
                f"range on {key!r} mixes datetime strings and numbers: bound {name} is {value!r}"
            )
        micros = parse_datetime(value)
        if micros is None:
            raise InvalidFilter(
                f"range bound {name} on {key!r} is {value!r}: it needs a number or an RFC 3339 "
                "datetime string (like 2024-05-01T12:30:00Z or 2024-05-01)"
            )
        parsed[name] = micros
    return DatetimeRange(key, **parsed)


def _parse_has_id(raw: object) -> Filter:
    if not isinstance(raw, list):
        raise InvalidFilter("has_id must be a list of point ids")
    try:
        return HasId(frozenset(normalize_point_id(v) for v in raw))
    except InvalidPointId as err:
        raise InvalidFilter(f"has_id: {err.message}") from None


def _parse_key(key: object) -> str:
    if not isinstance(key, str):
        raise InvalidFilter(
            f"filter key {key!r} must be a non-empty dotted path like 'a.b', 'a[].b', 'a[0].b'"
        )
    try:
        parse_path(key)
    except InvalidPath as err:
        raise InvalidFilter(
            f"filter key {key!r} must be a non-empty dotted path like 'a.b', 'a[].b', 'a[0].b': {err}"
        ) from None
    return key


def _parse_scalar(value: object, key: str) -> Scalar:
    if isinstance(value, (str, int, float, bool)):
        if isinstance(value, float) and math.isnan(value):
            raise InvalidFilter(f"filter value for {key!r} is NaN")
        _check_integer_range(value, key)
        return value
    raise InvalidFilter(f"filter value {value!r} for {key!r} must be a string, number or boolean")


def _require_number(value: object, key: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidFilter(f"range/comparison on {key!r} needs a number, got {value!r}")
    if math.isnan(value):
        raise InvalidFilter(f"range bound for {key!r} is NaN")
    _check_integer_range(value, key)
    return value


def _check_integer_range(value: object, key: str) -> None:
    low, high = INTEGER_RANGE
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        raise InvalidFilter(f"filter value {value} for {key!r} is outside the integer range -2**63..2**64-1")


def filter_to_json(node: Filter) -> dict[str, Any]:
    """The canonical JSON form of an AST (parse_filter(filter_to_json(f)) == f up to nesting)."""
    return {"must": [_condition_to_json(node)]}


def _condition_to_json(node: Filter) -> dict[str, Any]:
    if isinstance(node, Compare):
        return {"key": node.key, "op": node.op.value, "value": node.value}
    if isinstance(node, In):
        kind = "except" if node.negate else "any"
        return {"key": node.key, "match": {kind: list(node.values)}}
    if isinstance(node, Contains):
        return {"key": node.key, "contains": node.value}
    if isinstance(node, IsEmpty):
        return {"is_empty": {"key": node.key}}
    if isinstance(node, IsNull):
        return {"is_null": {"key": node.key}}
    if isinstance(node, ValuesCount):
        bounds = {"gt": node.gt, "gte": node.gte, "lt": node.lt, "lte": node.lte}
        return {"key": node.key, "values_count": {k: v for k, v in bounds.items() if v is not None}}
    if isinstance(node, Nested):
        return {"nested": {"key": node.key, "filter": filter_to_json(node.filter)}}
    if isinstance(node, MinShould):
        conditions = [_condition_to_json(c) for c in node.children]
        return {"min_should": {"conditions": conditions, "min_count": node.min_count}}
    if isinstance(node, HasId):
        return {"has_id": sorted(node.ids, key=str)}
    if isinstance(node, HasVector):
        return {"has_vector": node.name}
    if isinstance(node, DatetimeRange):
        bounds = {"gt": node.gt, "gte": node.gte, "lt": node.lt, "lte": node.lte}
        return {"key": node.key, "range": {k: format_datetime(v) for k, v in bounds.items() if v is not None}}
    if isinstance(node, Text):
        return {"key": node.key, "match": {node.mode.value: node.query}}
    if isinstance(node, Prefix):
        return {"key": node.key, "match": {"prefix": node.prefix}}
    if isinstance(node, Regex):
        return {"key": node.key, "match": {"regex": node.pattern}}
    if isinstance(node, GeoRadius):
        center = {"lon": node.lon, "lat": node.lat}
        return {"key": node.key, "geo_radius": {"center": center, "radius": node.radius}}
    if isinstance(node, GeoBox):
        corners = {"top_left": {"lon": node.left, "lat": node.top}}
        corners["bottom_right"] = {"lon": node.right, "lat": node.bottom}
        return {"key": node.key, "geo_bounding_box": corners}
    if isinstance(node, GeoPolygon):
        rings = {"exterior": _ring_to_json(node.exterior)}
        return {
            "key": node.key,
            "geo_polygon": {**rings, "interiors": [_ring_to_json(r) for r in node.interiors]},
        }
    if isinstance(node, And):
        return {"must": [_condition_to_json(c) for c in node.children]}
    if isinstance(node, Or):
        return {"should": [_condition_to_json(c) for c in node.children]}
    return {"must_not": [_condition_to_json(node.child)]}


def _ring_to_json(ring: tuple[GeoPoint, ...]) -> dict[str, Any]:
    return {"points": [{"lon": lon, "lat": lat} for lon, lat in ring]}
