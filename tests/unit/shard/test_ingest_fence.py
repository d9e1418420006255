"""The ingest fence alone (pure data), against a brute-force model of "apply each offset once"."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.commands import IngestRecord, Upsert
from vecstore.shard.ingest_fence import IngestCounters, IngestFence

COMMAND = Upsert.build("c", [1], np.zeros((1, 2)), [{}])


def records(offsets: list[int]) -> list[IngestRecord]:
    return [IngestRecord(offset, COMMAND) for offset in offsets]


@given(st.lists(st.lists(st.integers(0, 40), max_size=8).map(sorted), max_size=10))
def test_each_offset_is_let_through_once_whatever_the_retries(batches: list[list[int]]) -> None:
    fence = IngestFence()
    seen: set[int] = set()
    high = -1
    for offsets in batches:
        fresh = fence.fresh(("t", 0), records(offsets))
        expected = [o for o in offsets if o > high]
        expected = [o for i, o in enumerate(expected) if o not in expected[:i]]
        assert [r.offset for r in fresh] == expected
        assert seen.isdisjoint(expected)
        seen.update(expected)
        high = max([high, *expected])
        fence.advance(("t", 0), high, len(fresh), 0, len(offsets) - len(fresh))
        assert fence.high(("t", 0)) == high
    total = sum(len(offsets) for offsets in batches)
    counters = fence.counters.get(("t", 0), IngestCounters())
    assert counters.applied + counters.skipped == total
    assert counters.applied == len(seen)


def test_partitions_are_fenced_separately() -> None:
    fence = IngestFence()
    fence.advance(("t", 0), 10, 11, 0, 0)
    assert [r.offset for r in fence.fresh(("t", 1), records([0, 1]))] == [0, 1]
    assert [r.offset for r in fence.fresh(("u", 0), records([5]))] == [5]
    assert fence.fresh(("t", 0), records([3, 10])) == []
    assert fence.high(("t", 1)) == -1


def test_the_manifest_round_trips_and_orders_stably() -> None:
    fence = IngestFence()
    fence.advance(("b", 1), 7, 3, 1, 2)
    fence.advance(("a", 0), 4, 5, 0, 0)
    manifest = fence.to_manifest()
    again = IngestFence.from_manifest(manifest)
    assert again.applied == fence.applied
    assert again.counters == fence.counters
    assert again.to_manifest() == manifest
    assert [row["topic"] for row in again.status()] == ["a", "b"]
    assert again.digest_rows() == [["a", 0, 4], ["b", 1, 7]]


def test_a_malformed_manifest_is_an_error_not_a_partial_fence() -> None:
    cases: list[dict[str, Any]] = [
        {"applied": [["t", 0]], "counters": []},
        {"applied": []},
        {"applied": [["t", "x", 1]], "counters": []},
    ]
    for broken in cases:
        try:
            IngestFence.from_manifest(broken)
        except (KeyError, TypeError, ValueError):
            continue
        raise AssertionError(f"accepted {broken}")
