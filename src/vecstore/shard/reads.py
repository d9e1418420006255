"""Point reads of one collection: get by ids, paginated scroll and filtered count."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import numpy as np

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId, normalize_point_id, point_id_sort_key
from vecstore.shard.collection import Collection
from vecstore.shard.records import Record

MAX_SCROLL_LIMIT = 10_000


def _records(
    collection: Collection, items: Sequence[tuple[PointId, int]], with_payload: bool, with_vector: bool
) -> list[Record]:
    vectors = None
    if with_vector and items:
        vectors = collection.vectors_of(np.array([key for _, key in items], dtype=np.uint64))
    return [
        Record(
            id=point_id,
            payload=collection.payload_of(key) if with_payload else None,
            vector=vectors[position].tolist() if vectors is not None else None,
        )
        for position, (point_id, key) in enumerate(items)
    ]


def get(
    collection: Collection,
    ids: Sequence[object],
    *,
    with_payload: bool = True,
    with_vector: bool = False,
) -> list[Record]:
    """The points that exist among `ids`, in the order asked (missing ids are left out)."""
    wanted = list(dict.fromkeys(normalize_point_id(i) for i in ids))
    with collection.reading():
        items = [(i, collection.id_map[i]) for i in wanted if i in collection.id_map]
        return _records(collection, items, with_payload, with_vector)


def scroll(
    collection: Collection,
    *,
    offset: object = None,
    limit: int = 100,
    condition: Filter | None = None,
    with_payload: bool = True,
    with_vector: bool = False,
) -> tuple[list[Record], PointId | None]:
    """Points in id order starting at `offset`; returns them and the next page's offset."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SCROLL_LIMIT:
        raise InvalidRequest(f"scroll limit must be an integer in 1..{MAX_SCROLL_LIMIT}, got {limit!r}")
    start = point_id_sort_key(normalize_point_id(offset)) if offset is not None else None
    with collection.reading():
        sort_keys, ordered = collection.sorted_ids()
        first = bisect.bisect_left(sort_keys, start) if start is not None else 0
        page: list[tuple[PointId, int]] = []
        next_offset: PointId | None = None
        passing = _passing(collection, condition)
        for point_id in itertools.islice(ordered, first, None):
            key = collection.id_map[point_id]
            if passing is not None and not passing[key]:
                continue
            if len(page) == limit:
                next_offset = point_id
                break
            page.append((point_id, key))
        return _records(collection, page, with_payload, with_vector), next_offset


def count(collection: Collection, condition: Filter | None = None) -> int:
    """How many live points match the filter (all of them without one)."""
    with collection.reading():
        if condition is None:
            return len(collection.id_map)
        return len(collection.matching_keys(condition))


def _passing(collection: Collection, condition: Filter | None) -> bytearray | None:
    """Per key, 1 if the live point passes the filter (bytes index faster than numpy scalars)."""
    if condition is None:
        return None
    flags = np.zeros(collection.next_key, dtype=np.uint8)
    flags[collection.matching_keys(condition)] = 1
    return bytearray(flags.tobytes())
