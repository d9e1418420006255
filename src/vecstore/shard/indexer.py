"""The background indexer: moves buffered vectors into HNSW, seals and compacts.

It runs in its own thread so that apply stays cheap (usearch releases the GIL while it
builds). It only changes the physical layout, never what a search can find.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vecstore.shard.state import Shard

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 0.05
ERROR_BACKOFF_SECONDS = 1.0


class Indexer(threading.Thread):
    """One per shard; stopped by `stop()`."""

    def __init__(self, shard: Shard) -> None:
        super().__init__(name="vecstore-indexer", daemon=True)
        self._shard = shard
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

    def _step(self) -> bool:
        busy = False
        threshold = self._shard.settings.seal_threshold
        for collection in list(self._shard.collections.values()):
            if self._stopping.is_set() or collection.dropped:
                continue
            if collection.index_pending():
                busy = True
            elif collection.active.count >= threshold:
                busy = collection.seal() or busy
            else:
                busy = collection.compact() or busy
        return busy


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
