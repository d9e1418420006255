"""The one place where pysyncobj's tick thread hands results to asyncio.

A replicated call gets a callback that completes an asyncio future through
`loop.call_soon_threadsafe`; the caller awaits it with a timeout, because callbacks
of entries dropped on a leader change may never fire. The event loop never blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON

from vecstore.cluster.errors import NotLeader, Timeout, Unavailable, VecStoreError

LeaderHint = Callable[[], str | None]


def failure_error(reason: int, leader: str | None) -> VecStoreError:
    """The error a pysyncobj FAIL_REASON means to a client (all retriable)."""
    if reason in (FAIL_REASON.NOT_LEADER, FAIL_REASON.LEADER_CHANGED, FAIL_REASON.MISSING_LEADER):
        return NotLeader(leader)
    if reason == FAIL_REASON.DISCARDED:
        return Unavailable("the entry was discarded by a leader change before it committed; retry")
    if reason == FAIL_REASON.QUEUE_FULL:
        return Unavailable("the node's command queue is full; retry with backoff")
    if reason == FAIL_REASON.UNKNOWN_OUTCOME:
        return Timeout("the outcome is unknown: the command may or may not have been applied")
    if reason == FAIL_REASON.REQUEST_DENIED:
        return Unavailable(
            "the leader denied the request: a membership change is refused while the leader has "
            "not yet applied the first entry of its term, while an earlier change has not "
            "committed (a member just added that is still installing the snapshot, in a group "
            "with a member down), or when the member is already in (or already out of) the "
            "group; retry"
        )
    return Unavailable(f"the command was refused by Raft (reason {reason})")


async def replicate(
    call: Callable[..., Any], *args: Any, wait_seconds: float, leader_hint: LeaderHint
) -> Any:
    """Submit a replicated call and await its result, or raise a retriable error."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, reason: int) -> None:
        if future.done():
            return
        if reason == FAIL_REASON.SUCCESS:
            future.set_result(result)
        else:
            future.set_exception(failure_error(reason, leader_hint()))

    def on_done(result: Any, reason: int) -> None:  # runs in the tick thread
        loop.call_soon_threadsafe(settle, result, reason)

    call(*args, callback=on_done)
    try:
        return await asyncio.wait_for(future, wait_seconds)
    except TimeoutError:
        raise Timeout(
            f"not committed within {wait_seconds:.1f}s; it may still be applied (retry is safe only "
            "for idempotent writes)"
        ) from None
