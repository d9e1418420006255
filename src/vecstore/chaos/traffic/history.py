"""What clients did and saw: every write and read with its invocation and response times.

The history is the only input of the model and the validators. Times are
`time.monotonic()` seconds in the runner's process; an operation without a response
time never returned (its outcome is unknown).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    """How an operation ended, from the client's side."""

    OK = "ok"
    """Acknowledged: the write is durable, the read result is valid."""
    FAILED = "failed"
    """An error answer: a write may or may not have been applied."""
    UNKNOWN = "unknown"
    """No answer (connection lost, client timeout): a write may still be applied later."""


class WriteKind(StrEnum):
    """What a write does to its key."""

    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(slots=True)
class Write:
    """One write of one key: version `version` is unique and increasing per key."""

    key: int
    version: int
    kind: WriteKind
    client: str
    shard: int
    invoked: float
    completed: float | None = None
    outcome: Outcome = Outcome.UNKNOWN
    error: str = ""

    @property
    def acknowledged(self) -> bool:
        """True if the client got a success answer."""
        return self.outcome is Outcome.OK


@dataclass(slots=True)
class Read:
    """One read of several keys: the version of each key found (None: absent)."""

    keys: tuple[int, ...]
    consistency: str
    client: str
    invoked: float
    completed: float | None = None
    outcome: Outcome = Outcome.UNKNOWN
    found: dict[int, int | None] = field(default_factory=dict)
    error: str = ""


@dataclass(slots=True)
class Produced:
    """One record a Kafka producer sent: the key's version, and where the broker put it."""

    key: int
    version: int
    kind: WriteKind
    partition: int | None
    offset: int | None
    invoked: float
    completed: float | None = None
    outcome: Outcome = Outcome.UNKNOWN


@dataclass
class History:
    """Everything the clients of one scenario did."""

    writes: list[Write] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    produced: list[Produced] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    stopped: float | None = None
    wall_offset: float = field(default_factory=lambda: time.time() - time.monotonic())
    """Add to a monotonic time to get a Unix time (to line operations up with process logs)."""

    def key_story(self, key: int) -> list[dict[str, object]]:
        """Every write and read of `key`, in invocation order, with wall-clock times."""

        def wall(moment: float | None) -> str | None:
            if moment is None:
                return None
            stamp = time.strftime("%H:%M:%S", time.localtime(moment + self.wall_offset))
            return f"{stamp}.{int((moment + self.wall_offset) % 1 * 1000):03d}"

        story: list[tuple[float, dict[str, object]]] = []
        for write in self.writes:
            if write.key == key:
                entry: dict[str, object] = {
                    "op": write.kind.value,
                    "version": write.version,
                    "client": write.client,
                }
                entry |= {"invoked": wall(write.invoked), "completed": wall(write.completed)}
                story.append((write.invoked, {**entry, "outcome": write.outcome.value, "error": write.error}))
        for read in self.reads:
            if key in read.found or (read.outcome is not Outcome.OK and key in read.keys):
                entry = {
                    "op": f"read-{read.consistency}",
                    "found": read.found.get(key),
                    "client": read.client,
                }
                entry |= {"invoked": wall(read.invoked), "completed": wall(read.completed)}
                story.append((read.invoked, {**entry, "outcome": read.outcome.value}))
        return [entry for _, entry in sorted(story, key=lambda item: item[0])]

    def begin_write(self, key: int, version: int, kind: WriteKind, client: str, shard: int) -> Write:
        """Record a write being invoked now."""
        write = Write(key, version, kind, client, shard, time.monotonic())
        self.writes.append(write)
        return write

    def begin_read(self, keys: tuple[int, ...], consistency: str, client: str) -> Read:
        """Record a read being invoked now."""
        read = Read(keys, consistency, client, time.monotonic())
        self.reads.append(read)
        return read

    @staticmethod
    def finish(operation: Write | Read | Produced, outcome: Outcome, error: str = "") -> None:
        """Record an operation's response (or the client giving up on it)."""
        operation.completed = time.monotonic()
        operation.outcome = outcome
        if error and not isinstance(operation, Produced):
            operation.error = error[:300]
