"""Value reads of one collection for Qdrant's facet and order_by: per value counts of a key,
and the points ordered by a key's values. Pure reads under the collection's read lock.

Both need a payload index declared on the key, as Qdrant does (facet: keyword, integer, bool
or uuid; order_by: integer, float or datetime), and read only values of the index's type.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vecstore.cluster.datetimes import parse_datetime
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId, point_id_sort_key
from vecstore.cluster.payload_path import InvalidPath, parse_path
from vecstore.shard.collection import Collection
from vecstore.shard.payload_filter import geo_values

FACET_INDEXES = ("keyword", "integer", "bool", "uuid")
ORDER_INDEXES = ("integer", "float", "datetime")
INDEX_DOCS = "https://qdrant.tech/documentation/concepts/indexing/#payload-index"
FacetValue = str | int | bool
OrderValue = int | float


def check_key(key: object, what: str) -> str:
    """A payload key path, or InvalidRequest."""
    if not isinstance(key, str):
        raise InvalidRequest(f"{what} must be a payload key (a string), got {key!r}")
    try:
        parse_path(key)
    except InvalidPath as err:
        raise InvalidRequest(f"{what} {key!r} is not a valid payload key: {err}") from None
    return key


def index_type(collection: Collection, key: str) -> str | None:
    """The type of the payload index declared on `key`, if any."""
    declared = collection.payload_fields.get(key)
    kind = declared.get("type") if isinstance(declared, dict) else None
    return kind if isinstance(kind, str) else None


def _facet_value(kind: str) -> Callable[[Any], FacetValue | None]:
    """How a stored value is read by a facet index of `kind` (None: not counted)."""

    def keyword(value: Any) -> FacetValue | None:
        return value if isinstance(value, str) else None

    def integer(value: Any) -> FacetValue | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def boolean(value: Any) -> FacetValue | None:
        return value if isinstance(value, bool) else None

    def uuid_text(value: Any) -> FacetValue | None:
        try:
            return str(uuid.UUID(value)) if isinstance(value, str) else None
        except ValueError:
            return None

    return {"keyword": keyword, "integer": integer, "bool": boolean, "uuid": uuid_text}[kind]


def facet_counts(collection: Collection, key: str, condition: Filter | None) -> list[tuple[FacetValue, int]]:
    """Per value of `key`, how many live points matching `condition` hold it (a point counts
    once per distinct value), in no particular order. Needs a facet index on `key`."""
    with collection.reading():
        kind = index_type(collection, key)
        if kind not in FACET_INDEXES:
            raise InvalidRequest(
                f"Bad request: No appropriate index for faceting: `{key}`. Please create one to facet on "
                f"this field. Check {INDEX_DOCS} to see which payload schemas support Match conditions"
            )
        read = _facet_value(kind)
        keys = collection.matching_keys(condition) if condition is not None else None
        chosen = (int(k) for k in keys) if keys is not None else (k for _, k in collection.live_items())
        counts: dict[tuple[type, FacetValue], int] = {}
        for point_key in chosen:
            values = {read(v) for v in geo_values(collection.payload_of(point_key), key)}
            for value in values - {None}:
                assert value is not None
                tagged = (type(value), value)  # True and 1 are different values
                counts[tagged] = counts.get(tagged, 0) + 1
        return [(value, count) for (_, value), count in counts.items()]


def order_value(kind: str, value: Any) -> OrderValue | None:
    """A stored value as an order_by index of `kind` reads it (datetimes: microseconds since
    the epoch, as qdrant-client's local mode answers them), or None."""
    if isinstance(value, bool):
        return None
    if kind == "integer":
        return value if isinstance(value, int) else None
    if kind == "float":
        return value if isinstance(value, (int, float)) else None
    return parse_datetime(value) if isinstance(value, str) else None


def start_value(kind: str, start_from: object) -> OrderValue | None:
    """`start_from` as an order value (a number, or an RFC 3339 datetime), or InvalidRequest."""
    if start_from is None:
        return None
    if isinstance(start_from, (int, float)) and not isinstance(start_from, bool):
        return start_from
    parsed = parse_datetime(start_from) if isinstance(start_from, str) else None
    if parsed is None:
        raise InvalidRequest(
            f"order_by.start_from must be a number or an RFC 3339 datetime, got {start_from!r}"
        )
    return parsed


@dataclass(frozen=True)
class OrderBy:
    """Qdrant's order_by, as the router sends it: the key, descending or not, and where to
    start (inclusive; a number or an RFC 3339 datetime)."""

    key: str
    descending: bool = False
    start_from: object = None

    @classmethod
    def from_dict(cls, raw: object) -> OrderBy:
        """The router's `{key, direction, start_from}`; InvalidRequest if malformed."""
        if not isinstance(raw, dict):
            raise InvalidRequest("order_by must be an object {key, direction, start_from}")
        direction = raw.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise InvalidRequest(f"order_by.direction must be asc or desc, got {direction!r}")
        key = check_key(raw.get("key"), "order_by.key")
        start_value("datetime", raw.get("start_from"))
        return cls(key, direction == "desc", raw.get("start_from"))


def sort_key(descending: bool) -> Callable[[tuple[OrderValue, PointId]], tuple[Any, ...]]:
    """The order of (value, id) pairs: by value, ties by id ascending."""
    if descending:
        return lambda pair: (-pair[0], point_id_sort_key(pair[1]))
    return lambda pair: (pair[0], point_id_sort_key(pair[1]))


def ordered_points(
    collection: Collection, order: OrderBy, condition: Filter | None, limit: int
) -> list[tuple[OrderValue, PointId]]:
    """The first `limit` (value, id) pairs of live points matching `condition`, ordered by the
    values of `order.key` (a point appears once per distinct value). Needs a range index."""
    with collection.reading():
        kind = index_type(collection, order.key)
        if kind not in ORDER_INDEXES:
            raise InvalidRequest(
                f"Bad request: No range index for `order_by` key: `{order.key}`. Please create one to use "
                f"`order_by`. Check {INDEX_DOCS} to see which payload schemas support Range conditions"
            )
        start = start_value(kind, order.start_from)
        if condition is not None:
            allowed = {int(k) for k in collection.matching_keys(condition)}
            items = [(i, k) for i, k in collection.live_items() if k in allowed]
        else:
            items = collection.live_items()
        pairs: set[tuple[OrderValue, PointId]] = set()
        for point_id, point_key in items:
            for raw in geo_values(collection.payload_of(point_key), order.key):
                value = order_value(kind, raw)
                if value is None or (
                    start is not None and (value > start if order.descending else value < start)
                ):
                    continue
                pairs.add((value, point_id))
    return sorted(pairs, key=sort_key(order.descending))[:limit]
