"""Per-key timelines of versioned writes, and what each key may look like at a given moment.

Each key is written by exactly one client, one write at a time, with a version that
grows by one per write. So versions order a key's writes, and acknowledged versions are
acknowledged in version order. A write without a success answer may or may not have
been applied; it may even be applied after the client moved on, but never after a
later write of the same key that was proposed after it (Raft keeps log order).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from vecstore.chaos.traffic.history import Outcome, Write, WriteKind

DIMENSION = 4


def vector_for(key: int, version: int) -> list[float]:
    """The vector a write of `key` at `version` carries (exact in float32)."""
    return [float(version), float(key % 1_009), 1.0, float((key // 1_009) % 1_013)]


def payload_for(key: int, version: int, client: str) -> dict[str, Any]:
    """The payload a write of `key` at `version` carries."""
    return {"key": key, "version": version, "client": client}


class Violation(NamedTuple):
    """One broken promise, with enough detail to start debugging."""

    kind: str
    """lost, stale_read, phantom, future_read, duplicate, misplaced, divergent, corrupt,
    ingest_duplicate, ingest_missing, unconverged."""
    key: int | None
    detail: str


@dataclass
class KeyTimeline:
    """The writes of one key, by version."""

    key: int
    writes: dict[int, Write] = field(default_factory=dict)
    acknowledged: list[Write] = field(default_factory=list)
    """Acknowledged writes in version order (their completion times never decrease)."""

    def last_acknowledged(self, before: float | None = None) -> Write | None:
        """The newest write acknowledged (strictly) before `before`, or ever when None."""
        if not self.acknowledged:
            return None
        if before is None:
            return self.acknowledged[-1]
        times = [w.completed if w.completed is not None else float("inf") for w in self.acknowledged]
        position = bisect.bisect_left(times, before)
        return self.acknowledged[position - 1] if position else None

    def deleted_after(self, version: int, invoked_before: float | None = None) -> bool:
        """True if a delete newer than `version` was invoked (before `invoked_before`)."""
        return any(
            write.kind is WriteKind.DELETE
            and write.version > version
            and (invoked_before is None or write.invoked < invoked_before)
            for write in self.writes.values()
        )


class KeyModel:
    """Timelines of every key written over HTTP."""

    def __init__(self, writes: Iterable[Write]) -> None:
        self.timelines: dict[int, KeyTimeline] = {}
        for write in writes:
            timeline = self.timelines.setdefault(write.key, KeyTimeline(write.key))
            timeline.writes[write.version] = write
        for timeline in self.timelines.values():
            timeline.acknowledged = sorted(
                (w for w in timeline.writes.values() if w.outcome is Outcome.OK), key=lambda w: w.version
            )

    @property
    def keys(self) -> list[int]:
        """Every key ever written."""
        return sorted(self.timelines)

    def check_final(self, key: int, found: int | None) -> Violation | None:
        """Is `found` (a version, or None for absent) a state the key may end in?"""
        timeline = self.timelines.get(key)
        if timeline is None:
            return None if found is None else Violation("phantom", key, f"v{found} of a key never written")
        last = timeline.last_acknowledged()
        floor = last.version if last is not None else 0
        if found is None:
            if last is None or last.kind is WriteKind.DELETE or timeline.deleted_after(floor):
                return None
            return Violation("lost", key, f"acknowledged upsert v{last.version} is missing")
        write = timeline.writes.get(found)
        if write is None or write.kind is not WriteKind.UPSERT:
            return Violation("phantom", key, f"holds v{found}, which no client upserted")
        if last is not None and found < last.version:
            what = "deleted" if last.kind is WriteKind.DELETE else "upserted"
            return Violation("lost", key, f"holds v{found}; v{last.version} was {what} and acknowledged")
        return None

    def check_strong_read(
        self, key: int, found: int | None, invoked: float, completed: float
    ) -> Violation | None:
        """Is a strong read's answer at least as new as every write acknowledged before it began?"""
        timeline = self.timelines.get(key)
        if timeline is None:
            return (
                None if found is None else Violation("phantom", key, f"read v{found} of a key never written")
            )
        before = timeline.last_acknowledged(invoked)
        floor = before.version if before is not None else 0
        if found is None:
            if before is None or before.kind is WriteKind.DELETE or timeline.deleted_after(floor, completed):
                return None
            return Violation(
                "stale_read", key, f"read absent; upsert v{before.version} was acknowledged before the read"
            )
        write = timeline.writes.get(found)
        if write is None or write.kind is not WriteKind.UPSERT:
            return Violation("phantom", key, f"read v{found}, which no client upserted")
        if write.invoked > completed:
            return Violation("future_read", key, f"read v{found} before its write was invoked")
        if found < floor:
            return Violation(
                "stale_read", key, f"read v{found}; v{floor} was acknowledged before the read began"
            )
        return None
