"""Concurrent searches with identical parameters run as one batch.

While a batch for a parameter set runs, new requests with the same parameters queue;
when it finishes, everything queued runs as the next batch: one usearch call and one
matrix product for many clients, with no added wait when the node is idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Results = list[Any]
Runner = Callable[[Vectors], Results]

MAX_BATCH_QUERIES = 1_024


class SearchBatcher:
    """Coalesces concurrent searches per parameter key."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._pending: dict[Hashable, list[tuple[Vectors, Runner, asyncio.Future[Results]]]] = {}
        self._running: set[Hashable] = set()
        self.batches = 0
        self.queries = 0

    async def search(self, key: Hashable, vectors: Vectors, run: Runner) -> Results:
        """Results for `vectors`, computed together with concurrent requests of the same key."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Results] = loop.create_future()
        self._pending.setdefault(key, []).append((vectors, run, future))
        if key not in self._running:
            self._running.add(key)
            loop.create_task(self._drain(key))  # noqa: RUF006 - the futures hold the outcome
        return await future

    async def _drain(self, key: Hashable) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending.get(key):
                queued = self._pending.pop(key)
                batch, rest = _take(queued)
                if rest:
                    self._pending.setdefault(key, [])[:0] = rest
                combined = np.concatenate([vectors for vectors, _, _ in batch])
                run = batch[0][1]
                try:
                    results = await loop.run_in_executor(self._executor, run, combined)
                except Exception as err:  # every waiter gets the same error
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    continue
                self.batches += 1
                self.queries += len(combined)
                position = 0
                for vectors, _, future in batch:
                    if not future.done():
                        future.set_result(results[position : position + len(vectors)])
                    position += len(vectors)
        finally:
            self._running.discard(key)


def _take(
    queued: list[tuple[Vectors, Runner, asyncio.Future[Results]]],
) -> tuple[list[tuple[Vectors, Runner, asyncio.Future[Results]]], list[Any]]:
    """Split off at most MAX_BATCH_QUERIES queries (always at least one request)."""
    total = 0
    for index, (vectors, _, _) in enumerate(queued):
        total += len(vectors)
        if total > MAX_BATCH_QUERIES and index > 0:
            return queued[:index], queued[index:]
    return queued, []
