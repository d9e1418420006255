"""Point reads: get, scroll pagination in id order, count; across memtable and segments."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from vecstore.cluster.commands import CreateCollection, DeletePoints, Selector, SetPayload, Upsert
from vecstore.cluster.errors import InvalidPointId, InvalidRequest
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.ids import PointId, point_id_sort_key
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.state import Shard

DIM = 3
UUIDS = sorted(str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15) % 2**128)) for n in range(1, 31))
INTS = [0, 1, 5, 17, 200, 2**63, 2**64 - 1, *range(1000, 1040)]


@pytest.fixture
def loaded(shard: Shard) -> Shard:
    """70 ints and UUIDs; half sealed in a segment, some deleted, some payloads changed."""
    shard.apply(CreateCollection(CollectionSchema("c", DIM)))
    ids: list[PointId] = [*INTS, *UUIDS]
    rng = np.random.default_rng(3)
    order = rng.permutation(len(ids))
    shuffled = [ids[i] for i in order]
    half = len(shuffled) // 2
    for chunk in (shuffled[:half], shuffled[half:]):
        shard.apply(
            Upsert.build(
                "c",
                chunk,
                rng.normal(size=(len(chunk), DIM)),
                [{"group": len(str(i)) % 3, "name": str(i)} for i in chunk],
            )
        )
        shard.maintain(force=True)
        shard.apply(SetPayload("c", Selector.of_ids(chunk[:3]), {"group": 9}))
    shard.apply(DeletePoints("c", Selector.of_ids([5, UUIDS[0]])))
    return shard


def expected_ids() -> list[PointId]:
    ids: list[PointId] = [*INTS, *UUIDS]
    return sorted((i for i in ids if i not in (5, UUIDS[0])), key=point_id_sort_key)


def test_get_returns_existing_points_in_the_order_asked(loaded: Shard) -> None:
    records = loaded.get("c", [UUIDS[3].upper(), 17, 5, 999_999, 17, 0])
    assert [r.id for r in records] == [UUIDS[3], 17, 0]
    assert all(r.payload is not None and r.vector is None for r in records)
    [record] = loaded.get("c", [17], with_payload=False, with_vector=True)
    assert record.payload is None
    assert record.vector is not None and len(record.vector) == DIM
    assert loaded.get("c", []) == []
    with pytest.raises(InvalidPointId):
        loaded.get("c", [-5])


def test_scroll_pages_cover_everything_once_ints_before_uuids(loaded: Shard) -> None:
    seen: list[PointId] = []
    offset: PointId | None = None
    pages = 0
    while True:
        page, offset = loaded.scroll("c", offset=offset, limit=7)
        pages += 1
        assert len(page) <= 7
        seen.extend(record.id for record in page)
        if offset is None:
            break
        assert len(page) == 7
    assert seen == expected_ids()
    assert pages == -(-len(seen) // 7)
    whole, end = loaded.scroll("c", limit=10_000, with_vector=True)
    assert end is None
    assert [r.id for r in whole] == seen
    assert all(r.vector is not None for r in whole)


def test_scroll_with_a_filter(loaded: Shard) -> None:
    group_nine = parse_filter({"must": [{"key": "group", "match": {"value": 9}}]})
    seen: list[PointId] = []
    offset: PointId | None = None
    while True:
        page, offset = loaded.scroll("c", offset=offset, limit=2, condition=group_nine)
        seen.extend(record.id for record in page)
        if offset is None:
            break
    assert len(seen) == loaded.count("c", group_nine) == 6
    assert seen == sorted(seen, key=point_id_sort_key)
    assert all(r.payload == {**(r.payload or {}), "group": 9} for r in loaded.get("c", list(seen)))


def test_scroll_offsets_may_be_any_spelling_or_a_missing_id(loaded: Shard) -> None:
    page, _ = loaded.scroll("c", offset=UUIDS[5].upper(), limit=2)
    assert [r.id for r in page] == UUIDS[5:7]
    page, _ = loaded.scroll("c", offset=6, limit=2)
    assert [r.id for r in page] == [17, 200]
    page, _ = loaded.scroll("c", offset=2**64 - 1, limit=2)
    assert [r.id for r in page] == [2**64 - 1, UUIDS[1]]


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, 2.0])
def test_scroll_limit_bounds(loaded: Shard, limit: object) -> None:
    with pytest.raises(InvalidRequest, match="scroll limit"):
        loaded.scroll("c", limit=limit)


def test_count(loaded: Shard) -> None:
    total = len(expected_ids())
    assert loaded.count("c") == total
    groups = [
        loaded.count("c", parse_filter({"must": [{"key": "group", "match": {"value": g}}]}))
        for g in (0, 1, 2, 9)
    ]
    assert sum(groups) == total
    assert loaded.count("c", parse_filter({"must": [{"has_id": [5, 17, UUIDS[0], UUIDS[1]]}]})) == 2
    loaded.apply(
        DeletePoints(
            "c", Selector.of_filter(parse_filter({"must": [{"key": "group", "match": {"value": 9}}]}))
        )
    )
    assert loaded.count("c") == total - groups[3]
