"""The node's indexer thread: it runs the shard's maintenance step (`Shard.index_step`:
move buffered vectors into HNSW, seal, compact) until there is nothing to do, then sleeps
until the shard wakes it (`Shard.drive_with`).

It runs in its own thread so that apply stays cheap (usearch releases the GIL while it
builds). The step only changes the physical layout, never what a search can find. The
thread knows nothing of the shard: it is given the step to run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from vecstore.shard.state import Shard

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 0.05
ERROR_BACKOFF_SECONDS = 1.0


class Indexer(threading.Thread):
    """One per shard; stopped by `stop()` (before the shard is closed)."""

    def __init__(self, step: Callable[[], bool]) -> None:
        """`step() -> busy`: one bounded unit of work; False when there was none."""
        super().__init__(name="vecstore-indexer", daemon=True)
        self._step = step
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        """New rows were applied."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the current step and exit."""
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout=30)

    def run(self) -> None:
        _lower_priority()
        while not self._stopping.is_set():
            try:
                busy = self._step()
            except Exception:
                log.exception("indexer step failed; retrying")
                self._stopping.wait(ERROR_BACKOFF_SECONDS)
                continue
            if not busy:
                self._wake.wait(IDLE_WAIT_SECONDS)
                self._wake.clear()


INDEXER_NICENESS = 10


def _lower_priority() -> None:
    """Run this thread at a lower CPU priority than apply and Raft (Linux per-thread nice).

    Indexing may lag behind writes; searches cover the unindexed tail exactly. Heartbeats
    and commits must not wait for HNSW inserts on a busy machine.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INDEXER_NICENESS)
    except (OSError, AttributeError):  # not Linux, or not permitted: keep normal priority
        log.debug("could not lower the indexer thread's priority")


def start_indexer(shard: Shard) -> Indexer:
    """Start the indexer thread driving `shard`'s maintenance; stop it before closing the shard."""
    indexer = Indexer(shard.index_step)
    shard.drive_with(indexer.wake)
    indexer.start()
    return indexer
