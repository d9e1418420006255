"""Coalesces concurrent requests with identical parameters into one batch.

While a batch for a key runs, new requests with that key queue; when it finishes,
everything queued runs as the next batch. Idle callers wait for nothing; busy ones share
one downstream call (one HTTP request per shard in the router, one usearch call and one
matrix product in a node).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH_ITEMS = 1_024


class Coalescer(Generic[Item, Result]):
    """Runs `runner(items)` for batches of concurrent requests sharing a key."""

    def __init__(self, max_items: int = MAX_BATCH_ITEMS) -> None:
        self._max_items = max_items
        self._pending: dict[Hashable, list[_Request[Item, Result]]] = {}
        self._running: set[Hashable] = set()
        self.batches = 0
        self.items = 0

    async def submit(
        self,
        key: Hashable,
        items: Sequence[Item],
        runner: Callable[[list[Item]], Awaitable[Sequence[Result]]],
    ) -> list[Result]:
        """The results for `items`, computed with concurrent requests of the same key.

        `runner` must return one result per item, in order; requests sharing a key must
        be interchangeable in everything but their items.
        """
        loop = asyncio.get_running_loop()
        if key not in self._running and len(items) <= self._max_items:
            return await self._run_alone(key, list(items), runner, loop)
        request: _Request[Item, Result] = _Request(list(items), runner, loop.create_future())
        self._pending.setdefault(key, []).append(request)
        if key not in self._running:
            self._running.add(key)
            loop.create_task(self._drain(key))  # noqa: RUF006 - the futures carry the outcome
        return await request.future

    async def _run_alone(
        self,
        key: Hashable,
        items: list[Item],
        runner: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        loop: asyncio.AbstractEventLoop,
    ) -> list[Result]:
        """Nothing of this key runs: run in the caller's task (no future, no task switch);
        whatever queues meanwhile goes to a drain task afterwards."""
        self._running.add(key)
        try:
            results = list(await runner(items))
            self.batches += 1
            self.items += len(items)
            return results
        finally:
            if self._pending.get(key):
                loop.create_task(self._drain(key))
            else:
                self._running.discard(key)

    async def _drain(self, key: Hashable) -> None:
        try:
            while self._pending.get(key):
                queued = self._pending.pop(key)
                batch, rest = self._split(queued)
                if rest:
                    self._pending.setdefault(key, [])[:0] = rest
                combined = [item for request in batch for item in request.items]
                try:
                    results = list(await batch[0].runner(combined))
                except Exception as err:  # every waiter of the batch gets the error
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(err)
                    continue
                self.batches += 1
                self.items += len(combined)
                position = 0
                for request in batch:
                    if not request.future.done():
                        request.future.set_result(results[position : position + len(request.items)])
                    position += len(request.items)
        finally:
            self._running.discard(key)

    def _split(
        self, queued: list[_Request[Item, Result]]
    ) -> tuple[list[_Request[Item, Result]], list[_Request[Item, Result]]]:
        total = 0
        for index, request in enumerate(queued):
            total += len(request.items)
            if total > self._max_items and index > 0:
                return queued[:index], queued[index:]
        return queued, []


class _Request(Generic[Item, Result]):
    __slots__ = ("future", "items", "runner")

    def __init__(
        self,
        items: list[Item],
        runner: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        future: asyncio.Future[list[Result]],
    ) -> None:
        self.items = items
        self.runner = runner
        self.future = future
