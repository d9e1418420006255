"""The coalescer: concurrent requests with one key share a downstream call."""

from __future__ import annotations

import asyncio

import pytest

from vecstore.transport.coalescer import Coalescer


class Downstream:
    """Records each batch it is asked for; answers item * 10, after a pause."""

    def __init__(self, pause: float = 0.01, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.pause = pause
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.pause)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"item {self.fail_on} is bad")
        return [item * 10 for item in items]


async def test_an_idle_request_runs_alone_and_at_once() -> None:
    coalescer: Coalescer[int, int] = Coalescer()
    downstream = Downstream(pause=0)
    assert await coalescer.submit("k", [1, 2], downstream) == [10, 20]
    assert downstream.batches == [[1, 2]]
    assert (coalescer.batches, coalescer.items) == (1, 2)


async def test_requests_arriving_during_a_batch_share_the_next_one() -> None:
    coalescer: Coalescer[int, int] = Coalescer()
    downstream = Downstream()
    first = asyncio.ensure_future(coalescer.submit("k", [1], downstream))
    await asyncio.sleep(0)  # the first batch is running
    rest = [asyncio.ensure_future(coalescer.submit("k", [i, i + 100], downstream)) for i in (2, 3, 4)]
    other_key = asyncio.ensure_future(coalescer.submit("other", [9], downstream))
    assert await first == [10]
    assert [await r for r in rest] == [[20, 1020], [30, 1030], [40, 1040]]
    assert await other_key == [90]
    assert sorted(downstream.batches) == sorted([[1], [2, 102, 3, 103, 4, 104], [9]])
    assert coalescer.batches == 3 and coalescer.items == 8


async def test_a_failed_batch_fails_every_request_in_it_and_nothing_else() -> None:
    coalescer: Coalescer[int, int] = Coalescer()
    downstream = Downstream(fail_on=3)
    first = asyncio.ensure_future(coalescer.submit("k", [1], downstream))
    await asyncio.sleep(0)
    doomed = [asyncio.ensure_future(coalescer.submit("k", [i], downstream)) for i in (2, 3)]
    assert await first == [10]
    for request in doomed:
        with pytest.raises(ValueError, match="item 3 is bad"):
            await request
    assert await coalescer.submit("k", [5], downstream) == [50]  # the key is usable again


async def test_the_caller_running_alone_gets_its_own_error() -> None:
    coalescer: Coalescer[int, int] = Coalescer()
    with pytest.raises(ValueError, match="item 1 is bad"):
        await coalescer.submit("k", [1], Downstream(pause=0, fail_on=1))
    assert await coalescer.submit("k", [2], Downstream(pause=0)) == [20]


async def test_batches_are_split_at_the_item_limit() -> None:
    coalescer: Coalescer[int, int] = Coalescer(max_items=4)
    downstream = Downstream()
    first = asyncio.ensure_future(coalescer.submit("k", [0], downstream))
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(coalescer.submit("k", [i, i], downstream)) for i in range(1, 6)]
    big = asyncio.ensure_future(coalescer.submit("k", list(range(10, 16)), downstream))
    assert await first == [0]
    assert [await q for q in queued] == [[i * 10, i * 10] for i in range(1, 6)]
    assert await big == [i * 10 for i in range(10, 16)]
    assert all(len(batch) <= 4 for batch in downstream.batches[1:-1])
    assert downstream.batches[-1] == list(range(10, 16))  # one request is never split
