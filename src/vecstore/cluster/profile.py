"""Query profiles: where one search spent its time, stage by stage, across processes.

A `Profile` records named stages (parse, scatter, hnsw, ...) with where they ran; a process
grafts in the stages another one sent back (`graft`). `NO_PROFILE` records nothing, so code
that times itself costs next to nothing when nobody listens. `StageTimes` folds stages into
histogram buckets cheaply, `trace_events` turns a profile into a Chrome trace (Perfetto).
Pure: no I/O, and the only clock is `time.perf_counter`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np

STAGE_BUCKETS = (
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Upper bounds (seconds) of the stage histograms' buckets: stages are shorter than requests."""


Stage = tuple[str, str, float, float]
"""One timed stage of a query: (name, where, start, seconds). `name` says what ran (parse,
scatter, round_trip, plan, hnsw, ...), `where` who ran it ("router", "node <id>", "shard
<n>"), `start` is perf_counter() at its start on the clock of the profile holding it.
A plain tuple, not a NamedTuple: making one costs a third as much, on every search's path."""


class _Timer:
    """The context manager of `Profile.stage`."""

    __slots__ = ("_name", "_profile", "_started", "_where")

    def __init__(self, profile: Profile, name: str, where: str) -> None:
        self._profile = profile
        self._name = name
        self._where = where
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        started = self._started
        self._profile.stages.append((self._name, self._where, started, time.perf_counter() - started))


class _NoTimer:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None


_NO_TIMER = _NoTimer()


class Profile:
    """The stages of one query (or of one batch of queries run together) in one process."""

    __slots__ = ("origin", "remote", "stages", "where")
    enabled = True

    def __init__(self, where: str, origin: float | None = None, *, remote: bool = False) -> None:
        self.where = where
        """where stages run unless told otherwise"""
        self.origin = time.perf_counter() if origin is None else origin
        """perf_counter() when the query reached this process: stage offsets count from it"""
        self.remote = remote
        """whether the processes this one asks should send their stages back (`graft`)"""
        self.stages: list[Stage] = []

    def stage(self, name: str, where: str | None = None) -> _Timer | _NoTimer:
        """`with profile.stage("plan"):` times the block as one stage (on the paths every
        search takes, `add` costs half as much)."""
        return _Timer(self, name, where or self.where)

    def add(self, name: str, started: float, ended: float | None = None, where: str | None = None) -> None:
        """A stage that ran from `started` to `ended` (perf_counter values; default now)."""
        ended = time.perf_counter() if ended is None else ended
        self.stages.append((name, where or self.where, started, ended - started if ended > started else 0.0))

    def extend(self, stages: Iterable[Stage]) -> None:
        """Stages timed on this process's clock by another profile (a batch it shared)."""
        self.stages.extend(stages)

    def wire(self) -> dict[str, Any]:
        """The stages for another process to `graft`: `{"where", "origin", "total", "stages":
        [[name, where, start, seconds]]}`, in seconds on this process's clock (plain lists:
        a third of the cost of `to_dict` to build, encode and decode)."""
        return {"where": self.where, "origin": self.origin, "total": self.total(), "stages": self.stages}

    def graft(self, wire: Mapping[str, Any], sent: float, answered: float) -> None:
        """The stages another process reported (`wire`) for a request sent at `sent` and
        answered at `answered` (perf_counter here). Clocks of two processes cannot be
        compared, so its stages are centred in the round trip: what is left over is network
        and encoding, split evenly between the two ways. A "handle" stage spans the other
        process's total, where it ran."""
        total = float(wire.get("total", 0.0))
        shift = sent + max(0.0, (answered - sent) - total) / 2
        self.stages.append(("handle", str(wire.get("where", "elsewhere")), shift, total))
        offset = shift - float(wire.get("origin", 0.0))
        self.stages.extend(
            (name, where, offset + start, seconds) for name, where, start, seconds in wire.get("stages", ())
        )

    def last_end(self) -> float:
        """perf_counter() at the end of the latest stage so far (the origin before any)."""
        return max((start + seconds for _, _, start, seconds in self.stages), default=self.origin)

    def first_start(self, default: float) -> float:
        """perf_counter() at the start of the earliest stage (`default` before any)."""
        return min((start for _, _, start, _ in self.stages), default=default)

    def total(self) -> float:
        """Seconds from the origin to the end of the last stage."""
        return self.last_end() - self.origin

    def to_dict(self, total: float | None = None) -> dict[str, Any]:
        """`{"total_ms", "where", "stages": [{"name", "where", "start_ms", "ms"}]}`, stages by start;
        `start_ms` counts from the origin. `total` (seconds) overrides the computed one."""
        origin = self.origin
        stages = [
            {"name": name, "where": where, "start_ms": _ms(start - origin), "ms": _ms(seconds)}
            for name, where, start, seconds in sorted(self.stages, key=lambda stage: stage[2])
        ]
        seconds = self.total() if total is None else total
        return {"total_ms": _ms(seconds), "where": self.where, "stages": stages}


def _ms(seconds: float) -> float:
    """Seconds as milliseconds to 0.1 µs (like round(ms, 4) for the non-negative, faster)."""
    return int(seconds * 10_000_000 + 0.5) / 10_000


class _NoProfile(Profile):
    """Records nothing (the off path: one attribute test or one shared no-op per stage)."""

    __slots__ = ()
    enabled = False

    def __init__(self) -> None:
        super().__init__("nowhere", 0.0)

    def stage(self, name: str, where: str | None = None) -> _Timer | _NoTimer:
        return _NO_TIMER

    def add(self, name: str, started: float, ended: float | None = None, where: str | None = None) -> None:
        return None

    def extend(self, stages: Iterable[Stage]) -> None:
        return None

    def graft(self, wire: Mapping[str, Any], sent: float, answered: float) -> None:
        return None


NO_PROFILE: Profile = _NoProfile()
"""The profile of an unprofiled query: records nothing."""


class StageHistogram(NamedTuple):
    """One stage's histogram: cumulative counts per bucket bound (the last is +Inf)."""

    name: str
    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    total: float


FOLD_EVERY = 4_096
"""Stages kept as plain floats before they are folded into bucket counts at once."""


class StageTimes:
    """Stage durations, folded into per-stage bucket counts for Prometheus.

    Recording only extends a list (tens of nanoseconds a search); choosing which stages
    count and bucketing them run once per FOLD_EVERY stages and at each scrape. Counted:
    every stage, or with `where`, those run there and those named in `also`. Not
    thread-safe: record and read from one thread (the event loop).
    """

    def __init__(
        self,
        bounds: tuple[float, ...] = STAGE_BUCKETS,
        where: str | None = None,
        also: frozenset[str] = frozenset(),
    ) -> None:
        self.bounds = bounds
        self._where = where
        self._also = also
        self._edges = np.asarray(bounds, dtype=np.float64)
        self._pending: list[Stage] = []
        self._counts: dict[str, np.ndarray[Any, np.dtype[np.int64]]] = {}
        self._sums: dict[str, float] = {}

    def record(self, stages: Iterable[Stage]) -> None:
        """Count stages (those `keep` accepts)."""
        pending = self._pending
        pending.extend(stages)
        if len(pending) >= FOLD_EVERY:
            self._fold()

    def observe(self, name: str, seconds: float) -> None:
        """Count one stage."""
        self._pending.append((name, "", 0.0, seconds))

    def _fold(self) -> None:
        pending, self._pending = self._pending, []
        where, also = self._where, self._also
        if where is not None:
            pending = [stage for stage in pending if stage[1] == where or stage[0] in also]
        groups: dict[str, list[float]] = {}
        for name, _, _, seconds in pending:
            group = groups.get(name)
            if group is None:
                groups[name] = [seconds]
            else:
                group.append(seconds)
        for name, values in groups.items():
            chosen = np.array(values, dtype=np.float64)
            buckets = np.searchsorted(self._edges, chosen, side="left")  # le semantics
            counts = np.bincount(buckets, minlength=len(self.bounds) + 1).astype(np.int64)
            if name in self._counts:
                self._counts[name] += counts
            else:
                self._counts[name] = counts
            self._sums[name] = self._sums.get(name, 0.0) + float(chosen.sum())

    def histograms(self) -> Iterator[StageHistogram]:
        """Each stage's histogram so far, by stage name."""
        self._fold()
        for name in sorted(self._counts):
            cumulative = tuple(int(c) for c in np.cumsum(self._counts[name]))
            yield StageHistogram(name, self.bounds, cumulative, self._sums[name])


def trace_events(profile: Mapping[str, Any], name: str = "search") -> dict[str, Any]:
    """A profile document (`Profile.to_dict`) as a Chrome trace, loadable in Perfetto
    (ui.perfetto.dev) or chrome://tracing: one track per place (router, each shard, each
    node), one complete ("X") event per stage, times in microseconds."""
    stages = list(profile.get("stages", ()))
    places = ["router", *sorted({str(s["where"]) for s in stages} - {"router"}, key=_place_order)]
    track = {place: number for number, place in enumerate(places, start=1)}
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": f"vecstore {name}"}}
    ]
    for place, tid in track.items():
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": place}})
        events.append(
            {"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid, "args": {"sort_index": tid}}
        )
    total_us = float(profile.get("total_ms", 0.0)) * 1000
    events.append(_complete(name, 0.0, total_us, track["router"], {"total_ms": profile.get("total_ms")}))
    for stage in stages:
        start_us = float(stage["start_ms"]) * 1000
        events.append(
            _complete(str(stage["name"]), start_us, float(stage["ms"]) * 1000, track[str(stage["where"])])
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _complete(
    name: str, start_us: float, duration_us: float, tid: int, args: dict[str, Any] | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "name": name,
        "cat": "query",
        "ph": "X",
        "ts": round(start_us, 3),
        "dur": round(max(0.0, duration_us), 3),
        "pid": 1,
        "tid": tid,
    }
    if args:
        event["args"] = args
    return event


def _place_order(place: str) -> tuple[int, int, str]:
    """Shards (by number) before nodes (by name)."""
    kind, _, rest = place.partition(" ")
    if kind == "shard" and rest.isdigit():
        return (0, int(rest), "")
    return (1, 0, place)
