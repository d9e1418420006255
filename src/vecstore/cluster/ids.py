"""Point ids: an unsigned 64-bit integer or a UUID string, normalised once at the edge.

UUIDs are kept in canonical lowercase hyphenated form, so equal ids compare equal
everywhere (hash ring, id map, digest). Integers and UUIDs never collide: 5 and
"00000000-0000-0000-0000-000000000005" are two different points, as in Qdrant.
"""

from __future__ import annotations

import uuid

from vecstore.cluster.errors import InvalidPointId

PointId = int | str

MAX_INT_ID = 2**64 - 1


def normalize_point_id(value: object) -> PointId:
    """Return the canonical form of `value`, or raise InvalidPointId saying what was expected."""
    if isinstance(value, bool):
        raise InvalidPointId(f"point id {value!r} is a boolean; expected an unsigned integer or UUID")
    if isinstance(value, int):
        if 0 <= value <= MAX_INT_ID:
            return value
        raise InvalidPointId(f"point id {value} is outside the unsigned 64-bit range 0..{MAX_INT_ID}")
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise InvalidPointId(
                f"point id {value!r} is not a UUID; expected an unsigned integer or UUID string"
            ) from None
    raise InvalidPointId(
        f"point id of type {type(value).__name__} is not allowed; expected an unsigned integer or UUID string"
    )


def point_id_sort_key(point_id: PointId) -> tuple[int, int]:
    """A total order over ids: integers first, then UUIDs by their 128-bit value."""
    if isinstance(point_id, int):
        return (0, point_id)
    return (1, uuid.UUID(point_id).int)


def point_id_to_routing_key(point_id: PointId) -> str:
    """The string the hash ring hashes: stable across processes and languages."""
    return f"i:{point_id}" if isinstance(point_id, int) else f"u:{point_id}"
