"""Sends one shard its ingest commands strictly in batch order, each until acknowledged.

Order is what makes the shard's offset fence safe: a later batch reaches a shard only
after every earlier one was applied there, so the fence never jumps over a record that
was not applied. A command is retried (following the leader) until it is acknowledged
or the writer is abandoned; it is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from vecstore.cluster.codec import encode_command
from vecstore.cluster.commands import IngestBatch
from vecstore.cluster.errors import VecStoreError
from vecstore.transport.node_client import NodeClient

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0

OnAck = Callable[[int, int, dict[str, Any]], None]
"""(batch id, shard id, the shard's result) once a command is applied on the leader."""
OnFatal = Callable[[int, VecStoreError], None]
"""(shard id, error) when a shard refuses a command for good: retrying cannot help."""


class ShardWriter:
    """The ordered sender of one shard: one command in flight at a time."""

    def __init__(self, shard_id: int, client: NodeClient, on_ack: OnAck, on_fatal: OnFatal) -> None:
        self.shard_id = shard_id
        self.client = client
        self._on_ack = on_ack
        self._on_fatal = on_fatal
        self._queue: asyncio.Queue[tuple[int, IngestBatch]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sending queued commands."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ingest-shard-{self.shard_id}")

    def submit(self, batch_id: int, command: IngestBatch) -> None:
        """Queue a batch's command for this shard (after every earlier one)."""
        self._queue.put_nowait((batch_id, command))

    async def abandon(self) -> None:
        """Drop every queued command and stop waiting for the one in flight.

        The command in flight may still be applied; that is safe because every earlier
        command of this writer was acknowledged first. Nothing queued after it is sent.
        """
        running = self._task is not None
        await self.close()
        while not self._queue.empty():
            self._queue.get_nowait()
        if running:
            self.start()

    async def close(self) -> None:
        """Stop the sender task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            batch_id, command = await self._queue.get()
            try:
                result = await self._send(command)
            except VecStoreError as err:
                log.error(
                    "shard refused an ingest command; stopping",
                    extra={"shard": self.shard_id, "error": err.message},
                )
                self._on_fatal(self.shard_id, err)
                return
            self._on_ack(batch_id, self.shard_id, result)

    async def _send(self, command: IngestBatch) -> dict[str, Any]:
        """Apply through the leader; retriable failures are retried without end."""
        encoded = encode_command(command)
        delay = RETRY_BASE_SECONDS
        while True:
            try:
                return await self.client.request("leader", "POST", "/v1/apply", raw=encoded)
            except VecStoreError as err:
                if not err.retriable:
                    raise
                log.warning(
                    "shard did not acknowledge an ingest batch; retrying",
                    extra={"shard": self.shard_id, "error": err.message, "retry_in": delay},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
