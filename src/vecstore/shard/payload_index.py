"""The payload index: per-container payload columns that turn a filter into numpy masks.

A column holds the values found at one payload key for every row of one container
(sealed segment or memtable), built lazily the first time a filter uses the key. Rows
whose current payload is not the one the column saw (overrides, in-place edits of the
active memtable) and values numpy cannot compare exactly are evaluated per point with
`payload_filter.matches`, so the answer always equals it. Reads only: never changes state.
"""

from __future__ import annotations

import threading
import weakref
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vecstore.cluster.datetimes import parse_datetime
from vecstore.cluster.filters import (
    And,
    Compare,
    CompareOp,
    Contains,
    DatetimeRange,
    Filter,
    GeoBox,
    GeoCondition,
    GeoPolygon,
    GeoRadius,
    HasId,
    HasVector,
    In,
    IsEmpty,
    IsNull,
    MinShould,
    Nested,
    Not,
    Or,
    Prefix,
    Regex,
    Scalar,
    StringCondition,
    Text,
    ValuesCount,
)
from vecstore.cluster.ids import PointId
from vecstore.cluster.payload_path import is_plain_name
from vecstore.shard.geo_index import GeoColumn, build_geo_column, extend_geo_column
from vecstore.shard.memtable import KeyArray, MemTable
from vecstore.shard.payload_filter import field_values, matches, raw_values
from vecstore.shard.segment import SealedSegment
from vecstore.shard.text_match import string_holds

Payload = dict[str, Any]
Container = MemTable | SealedSegment
Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]

EMPTY, NUMBER, BOOLEAN, STRING, OTHER = range(5)
"""Kinds of a stored value (EMPTY: a row without a value, dense layout only)."""
EXACT_INTEGER = 2**53
"""Integers beyond this lose precision in float64: such rows are evaluated per point."""
MIN_REBUILD_STALE = 64
"""A memtable column is rebuilt once more rows than this (and 1/8 of it) were edited since."""

_ORDERING: dict[CompareOp, Callable[[npt.NDArray[np.float64], float], Mask]] = {
    CompareOp.LT: lambda values, bound: values < bound,
    CompareOp.LE: lambda values, bound: values <= bound,
    CompareOp.GT: lambda values, bound: values > bound,
    CompareOp.GE: lambda values, bound: values >= bound,
}


class NotVectorizable(Exception):
    """A filter value numpy cannot compare exactly (a huge integer): evaluate per point."""


MAX_CACHED_CONDITIONS = 64
"""String conditions whose answers per distinct string are kept, per column lineage."""


class StringCodes:
    """Dictionary encoding of the strings of one column lineage; codes only ever grow.

    String conditions (words, prefixes, regexes, datetimes) are decided once per distinct
    string, not per row, and the answers are kept for the next filter.
    """

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.texts: list[str] = []
        self._lock = threading.Lock()
        self._holding: dict[StringCondition, Mask] = {}
        self._micros = np.zeros(0, np.int64)
        self._is_datetime = np.zeros(0, bool)

    def holding(self, condition: StringCondition, count: int) -> Mask:
        """For codes [0, count) at least: whether the string satisfies the condition."""
        with self._lock:
            known = self._holding.get(condition)
        if known is not None and len(known) >= count:
            return known
        if isinstance(condition, DatetimeRange):
            known = self._datetime_holding(condition, count)
        else:
            start = 0 if known is None else len(known)
            fresh = np.fromiter(
                (string_holds(condition, text) for text in self.texts[start:count]), bool, count - start
            )
            known = fresh if known is None else np.concatenate([known, fresh])
        with self._lock:
            if len(self._holding) >= MAX_CACHED_CONDITIONS:
                self._holding.pop(next(iter(self._holding)))
            self._holding[condition] = known
        return known

    def _datetime_holding(self, condition: DatetimeRange, count: int) -> Mask:
        with self._lock:
            micros, valid = self._micros, self._is_datetime
        if len(micros) < count:
            parsed = [parse_datetime(text) for text in self.texts[len(micros) : count]]
            micros = np.concatenate([micros, np.array([m or 0 for m in parsed], np.int64)])
            valid = np.concatenate([valid, np.array([m is not None for m in parsed], bool)])
            with self._lock:
                if len(micros) > len(self._micros):
                    self._micros, self._is_datetime = micros, valid
        result = valid.copy()
        for bound, compare in (
            (condition.gt, np.greater),
            (condition.gte, np.greater_equal),
            (condition.lt, np.less),
            (condition.lte, np.less_equal),
        ):
            if bound is not None:
                result &= compare(micros, bound)
        return result

    def code(self, text: str) -> int:
        """The code of a string, assigning the next one if new (builders hold the cache lock)."""
        found = self.codes.get(text)
        if found is None:
            found = self.codes[text] = len(self.texts)
            self.texts.append(text)
        return found


@dataclass(frozen=True)
class Column:
    """The values at one key for rows [0, rows) of a container; immutable once built.

    Dense layout (`value_rows` is None): one entry per row, kind EMPTY where there is no
    value. Sparse layout: one entry per value, `value_rows` naming its row. Numbers,
    booleans (0/1) and string codes share the float64 array; `kinds` tells them apart.
    """

    rows: int
    edits: int
    """The memtable's edit count when the oldest rows were read (0 for segments)."""
    kinds: npt.NDArray[np.uint8]
    numbers: npt.NDArray[np.float64]
    value_rows: Rows | None
    awkward: Rows
    """Rows holding a value numpy cannot mirror exactly: evaluated per point."""
    strings: StringCodes
    string_count: int

    def has_value(self) -> Mask:
        """Rows with at least one value (is_empty is its negation)."""
        if self.value_rows is None:
            gaps: Mask = self.kinds != EMPTY
            return gaps
        present = np.zeros(self.rows, dtype=bool)
        present[self.value_rows] = True
        return present

    def any_per_row(self, per_value: Mask) -> Mask:
        """Rows where at least one value satisfies `per_value`."""
        if self.value_rows is None:
            return per_value
        result = np.zeros(self.rows, dtype=bool)
        result[self.value_rows[per_value]] = True
        return result

    def present(self) -> Mask:
        """Entries that are values (not dense-layout gaps)."""
        return self.kinds != EMPTY if self.value_rows is None else np.ones(len(self.kinds), dtype=bool)

    def equal_to(self, wanted: Scalar) -> Mask:
        """Per value: `values_equal(value, wanted)`."""
        return self.equal_to_any((wanted,))

    def equal_to_any(self, wanted: Sequence[Scalar]) -> Mask:
        """Per value: equal to at least one of `wanted` (booleans, numbers, strings apart)."""
        result = np.zeros(len(self.kinds), dtype=bool)
        booleans = [float(w) for w in wanted if isinstance(w, bool)]
        numbers = [_exact_float(w) for w in wanted if isinstance(w, (int, float)) and not isinstance(w, bool)]
        codes = [
            float(code)
            for w in wanted
            if isinstance(w, str)
            and (code := self.strings.codes.get(w)) is not None
            and code < self.string_count
        ]
        if len(booleans) + len(numbers) + sum(isinstance(w, str) for w in wanted) != len(wanted):
            raise NotVectorizable(f"filter values {wanted!r} are not all strings, numbers or booleans")
        for kind, targets in ((BOOLEAN, booleans), (NUMBER, numbers), (STRING, codes)):
            if targets:
                result |= (self.kinds == kind) & np.isin(self.numbers, targets)
        return result

    def ordered(self, op: CompareOp, bound: Scalar) -> Mask:
        """Per value: a number satisfying `value <op> bound` (nothing if bound is no number)."""
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            return np.zeros(len(self.kinds), dtype=bool)
        passing: Mask = (self.kinds == NUMBER) & _ORDERING[op](self.numbers, _exact_float(bound))
        return passing

    def string_holding(self, condition: StringCondition) -> Mask:
        """Per value: a string satisfying the condition."""
        result = np.zeros(len(self.kinds), dtype=bool)
        strings = np.flatnonzero(self.kinds == STRING)
        if len(strings):
            holding = self.strings.holding(condition, self.string_count)
            result[strings] = holding[self.numbers[strings].astype(np.int64)]
        return result

    def containing(self, wanted: Scalar) -> Mask:
        """Per value: equal to `wanted`, or (both strings) having it as a substring."""
        if not isinstance(wanted, str):
            return self.equal_to(wanted)
        codes = [
            float(code) for code, text in enumerate(self.strings.texts[: self.string_count]) if wanted in text
        ]
        found: Mask = (self.kinds == STRING) & np.isin(self.numbers, codes)
        return found


def _exact_float(value: int | float) -> float:
    if isinstance(value, int) and not -EXACT_INTEGER <= value <= EXACT_INTEGER:
        raise NotVectorizable(f"integer {value} is beyond float64's exact range")
    return float(value)


# ---- building -----------------------------------------------------------------------------


def _holds_only_nulls(payload: Payload, key: str, child: Any, simple: bool) -> bool:
    """Whether a key with no non-null value still reaches something other than null or []."""
    if simple:
        return isinstance(child, list) and bool(child)
    return any(v is not None and v != [] for v in raw_values(payload, key))


def build_column(payloads: Iterable[Payload], key: str, edits: int, strings: StringCodes) -> Column:
    """Read the values at `key` from each payload, in row order.

    Written dense (one slot per row) straight into compact buffers; a row's second and
    later values go aside, and only if there are any does the column become sparse.
    """
    kinds = bytearray()
    numbers = array("d")
    extra_kinds = bytearray()
    extra_numbers = array("d")
    extra_rows = array("q")
    awkward = array("q")
    simple = is_plain_name(key)
    for row, payload in enumerate(payloads):
        child = payload.get(key) if simple else None
        if simple and child is None:
            kinds.append(EMPTY)
            numbers.append(0.0)
            continue
        values: Sequence[Any] = (
            (child,) if simple and not isinstance(child, (list, dict)) else field_values(payload, key)
        )
        if not values:
            kinds.append(EMPTY)
            numbers.append(0.0)
            if _holds_only_nulls(payload, key, child, simple):
                awkward.append(row)  # [null]: no value to index, yet not empty (is_empty)
        for position, value in enumerate(values):
            kind, number = _classify(value, strings)
            if kind == OTHER and type(value) not in (dict, list):
                awkward.append(row)  # a subclass of a JSON type: leave its comparisons to Python
            elif kind == NUMBER and type(value) is int and not -EXACT_INTEGER <= value <= EXACT_INTEGER:
                awkward.append(row)
            if position == 0:
                kinds.append(kind)
                numbers.append(number)
            else:
                extra_kinds.append(kind)
                extra_numbers.append(number)
                extra_rows.append(row)
    kind_array = _from_buffer(kinds, np.uint8)
    number_array = _from_buffer(numbers, np.float64)
    awkward_rows = np.unique(_from_buffer(awkward, np.int64))
    count = len(strings.texts)
    if not extra_rows:
        return Column(len(kinds), edits, kind_array, number_array, None, awkward_rows, strings, count)
    present = np.flatnonzero(kind_array != EMPTY)
    return Column(
        len(kinds),
        edits,
        np.concatenate([kind_array[present], _from_buffer(extra_kinds, np.uint8)]),
        np.concatenate([number_array[present], _from_buffer(extra_numbers, np.float64)]),
        np.concatenate([present, _from_buffer(extra_rows, np.int64)]),
        awkward_rows,
        strings,
        count,
    )


def _from_buffer(buffer: bytearray | array[Any], dtype: type[np.generic]) -> npt.NDArray[Any]:
    # shares the buffer's memory (no copy); an empty buffer cannot be shared
    return np.frombuffer(buffer, dtype=dtype) if len(buffer) else np.zeros(0, dtype=dtype)


def _classify(value: Any, strings: StringCodes) -> tuple[int, float]:
    kind = type(value)
    if kind is bool:
        return BOOLEAN, float(value)
    if kind is int:
        return NUMBER, float(value)
    if kind is float:
        return NUMBER, value
    if kind is str:
        return STRING, float(strings.code(value))
    return OTHER, 0.0


def extend_column(column: Column, payloads: Iterable[Payload], key: str) -> Column:
    """The column with rows appended (the memtable grew); the old column stays valid."""
    tail = build_column(payloads, key, column.edits, column.strings)
    shift = column.rows

    def sparse(part: Column, offset: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64], Rows]:
        if part.value_rows is not None:
            return part.kinds, part.numbers, part.value_rows + offset
        present = np.flatnonzero(part.kinds != EMPTY)
        return part.kinds[present], part.numbers[present], present + offset

    awkward = np.concatenate([column.awkward, tail.awkward + shift])
    count = len(column.strings.texts)
    if column.value_rows is None and tail.value_rows is None:
        kinds = np.concatenate([column.kinds, tail.kinds])
        numbers = np.concatenate([column.numbers, tail.numbers])
        return Column(shift + tail.rows, column.edits, kinds, numbers, None, awkward, column.strings, count)
    head_kinds, head_numbers, head_rows = sparse(column, 0)
    tail_kinds, tail_numbers, tail_rows = sparse(tail, shift)
    return Column(
        shift + tail.rows,
        column.edits,
        np.concatenate([head_kinds, tail_kinds]),
        np.concatenate([head_numbers, tail_numbers]),
        np.concatenate([head_rows, tail_rows]),
        awkward,
        column.strings,
        count,
    )


class ColumnCache:
    """The columns of one container, by key. Built under a lock; handed out immutable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._columns: dict[str, Column] = {}
        self._geo: dict[str, GeoColumn] = {}

    def used_keys(self) -> list[str]:
        """Payload keys with a column (filters have used them)."""
        return list(self._columns)

    def used_geo_keys(self) -> list[str]:
        """Payload keys with a geo column (geo filters have used them)."""
        return list(self._geo)

    def geo_column(self, container: Container, key: str) -> tuple[GeoColumn, Rows]:
        """The geo column for `key`, current for the container's rows, and rows edited since."""
        with self._lock:
            column = self._geo.get(key)
            if isinstance(container, SealedSegment):
                if column is None:
                    column = self._geo[key] = build_geo_column(container.payloads(), key, 0)
                return column, np.zeros(0, np.int64)
            stale = _edited_since(container, column.edits) if column is not None else np.zeros(0, np.int64)
            if column is None or len(stale) > max(MIN_REBUILD_STALE, container.count // 8):
                column = build_geo_column(container.payloads[: container.count], key, container.edits)
                stale = np.zeros(0, np.int64)
            elif column.rows < container.count:
                column = extend_geo_column(column, container.payloads[column.rows : container.count], key)
            self._geo[key] = column
            return column, stale

    def column(self, container: Container, key: str) -> tuple[Column, Rows]:
        """The column for `key`, current for the container's rows, and rows edited since it."""
        with self._lock:
            column = self._columns.get(key)
            if isinstance(container, SealedSegment):
                if column is None:
                    column = build_column(container.payloads(), key, 0, StringCodes())
                    self._columns[key] = column
                return column, np.zeros(0, np.int64)
            stale = _edited_since(container, column.edits) if column is not None else np.zeros(0, np.int64)
            if column is None or len(stale) > max(MIN_REBUILD_STALE, container.count // 8):
                column = build_column(
                    container.payloads[: container.count], key, container.edits, StringCodes()
                )
                stale = np.zeros(0, np.int64)
            elif column.rows < container.count:
                column = extend_column(column, container.payloads[column.rows : container.count], key)
            self._columns[key] = column
            return column, stale


def _edited_since(memtable: MemTable, edits: int) -> Rows:
    if memtable.edits == edits:
        return np.zeros(0, np.int64)
    return np.array(sorted(row for row, number in memtable.edited.items() if number > edits), dtype=np.int64)


GEO_PREFIX = "\x00geo:"
"""Marks a geo column among the keys in use (no payload path starts with NUL)."""


class PayloadIndex:
    """Column caches of one collection's containers; a cache goes with its container.

    `use_geo_grid` False makes geo conditions test every geo value of a column instead of
    looking candidates up in the grid (same answers; the benchmark's baseline).
    """

    def __init__(self, use_geo_grid: bool = True) -> None:
        self.use_geo_grid = use_geo_grid
        self._lock = threading.Lock()
        self._caches: weakref.WeakKeyDictionary[Container, ColumnCache] = weakref.WeakKeyDictionary()

    def cache(self, container: Container) -> ColumnCache:
        """The container's column cache (created empty on first use)."""
        with self._lock:
            found = self._caches.get(container)
            if found is None:
                found = self._caches[container] = ColumnCache()
            return found

    def keys_in_use(self, containers: Iterable[Container]) -> set[str]:
        """Keys with a column in any of these containers (geo columns as `GEO_PREFIX + key`)."""
        with self._lock:
            caches = [self._caches.get(c) for c in containers]
        found = {key for cache in caches if cache is not None for key in cache.used_keys()}
        return found | {
            GEO_PREFIX + k for cache in caches if cache is not None for k in cache.used_geo_keys()
        }

    def warm(self, segment: SealedSegment, keys: Iterable[str]) -> None:
        """Build a new segment's columns ahead of the first search (maintenance thread)."""
        cache = self.cache(segment)
        for key in sorted(keys):
            if key.startswith(GEO_PREFIX):
                cache.geo_column(segment, key.removeprefix(GEO_PREFIX))
            else:
                cache.column(segment, key)


# ---- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveView:
    """What the collection adds to stored payloads, read under its lock for one filter."""

    tombstones: KeyArray
    """Sorted."""
    override_keys: KeyArray
    """Sorted keys whose payload was replaced after their container stored it."""
    payload_of: Callable[[int], Payload]
    id_map: Mapping[PointId, int]


class _Evaluation:
    """One filter over one container's rows: masks from columns, plus rows to redo per point."""

    def __init__(self, index: PayloadIndex, container: Container, view: LiveView) -> None:
        self.use_geo_grid = index.use_geo_grid
        self.container = container
        self.cache = index.cache(container)
        self.view = view
        self.rows = container.count
        self.per_point: list[Rows] = []

    def column(self, key: str) -> Column:
        column, stale = self.cache.column(self.container, key)
        self.per_point.extend(part for part in (column.awkward, stale) if len(part))
        return column

    def mask(self, condition: Filter) -> Mask:
        if isinstance(condition, And):
            result = np.ones(self.rows, dtype=bool)
            for child in condition.children:
                result &= self.mask(child)
            return result
        if isinstance(condition, Or):
            result = np.zeros(self.rows, dtype=bool)
            for child in condition.children:
                result |= self.mask(child)
            return result
        if isinstance(condition, Not):
            return ~self.mask(condition.child)
        if isinstance(condition, HasId):
            wanted = [self.view.id_map[i] for i in condition.ids if i in self.view.id_map]
            return self.rows_mask(np.array(sorted(wanted), dtype=np.uint64))
        if isinstance(condition, IsEmpty):
            # a row without a non-null value is empty unless it holds nulls in an array (not
            # empty, as in Qdrant): the column keeps those rows aside, checked point by point
            column = self.column(condition.key)
            self.per_point.append(column.awkward)
            return ~column.has_value()
        if isinstance(condition, MinShould):
            held = np.zeros(self.rows, dtype=np.int64)
            for child in condition.children:
                held += self.mask(child)
            return held >= condition.min_count
        if isinstance(condition, IsNull | ValuesCount | Nested):
            raise NotVectorizable  # columns hold flattened non-null values: evaluate per point
        if isinstance(condition, GeoRadius | GeoBox | GeoPolygon):
            return self.geo_mask(condition)
        if isinstance(condition, DatetimeRange | Text | Prefix | Regex):
            column = self.column(condition.key)
            return column.any_per_row(column.string_holding(condition))
        if isinstance(condition, HasVector):
            raise NotVectorizable  # resolved into ids before evaluation; never here
        return self.field_mask(condition)

    def geo_mask(self, condition: GeoCondition) -> Mask:
        column, stale = self.cache.geo_column(self.container, condition.key)
        self.per_point.extend(part for part in (column.awkward, stale) if len(part))
        result = np.zeros(self.rows, dtype=bool)
        result[column.matching_rows(condition, self.use_geo_grid)] = True
        return result

    def field_mask(self, condition: Compare | In | Contains) -> Mask:
        column = self.column(condition.key)
        if isinstance(condition, Compare):
            if condition.op is CompareOp.EQ:
                per_value = column.equal_to(condition.value)
            elif condition.op is CompareOp.NE:
                per_value = column.present() & ~column.equal_to(condition.value)
            else:
                per_value = column.ordered(condition.op, condition.value)
        elif isinstance(condition, In):
            per_value = column.equal_to_any(condition.values)
            if condition.negate:
                per_value = column.present() & ~per_value
        else:
            per_value = column.containing(condition.value)
        return column.any_per_row(per_value)

    def rows_mask(self, keys: KeyArray) -> Mask:
        """Rows of this container holding any of the sorted `keys`."""
        result = np.zeros(self.rows, dtype=bool)
        result[rows_holding(self.container, keys)] = True
        return result


def rows_holding(container: Container, keys: KeyArray) -> Rows:
    """Row numbers of those sorted `keys` that this container stores."""
    keys = keys[(keys >= container.key_lo) & (keys < container.key_hi)]
    if isinstance(container, MemTable):
        return keys.astype(np.int64) - container.key_lo
    stored = container.keys()
    rows = np.searchsorted(stored, keys).astype(np.int64)
    inside = rows < len(stored)
    rows, keys = rows[inside], keys[inside]
    found: Rows = rows[stored[rows] == keys]
    return found


def container_matches(
    index: PayloadIndex, container: Container, condition: Filter, view: LiveView
) -> KeyArray:
    """Live keys of one container whose current payload satisfies the filter, ascending."""
    dead = rows_holding(container, view.tombstones)
    evaluation = _Evaluation(index, container, view)
    try:
        mask = np.array(evaluation.mask(condition), dtype=bool)  # a copy: rows are patched below
        redo = np.concatenate([rows_holding(container, view.override_keys), *evaluation.per_point])
    except NotVectorizable:
        mask = np.zeros(container.count, dtype=bool)
        redo = np.arange(container.count)
    if len(dead):
        mask[dead] = False
        redo = redo[~np.isin(redo, dead)]
    keys = container.keys()
    for row in np.unique(redo).tolist():
        key = int(keys[row])
        mask[row] = matches(condition, container.ext_ids[row], view.payload_of(key))
    return np.asarray(keys[mask], dtype=np.uint64)


def sorted_keys(keys: Iterable[int]) -> KeyArray:
    """A sorted uint64 array of keys (tombstones, override keys)."""
    return np.sort(np.fromiter(keys, dtype=np.uint64))


def contains_keys(allowed: KeyArray, keys: KeyArray) -> Mask:
    """Which of `keys` are in the sorted array `allowed` (padding never is)."""
    if not len(allowed):
        return np.zeros(keys.shape, dtype=bool)
    positions = np.minimum(np.searchsorted(allowed, keys), len(allowed) - 1)
    found: Mask = allowed[positions] == keys
    return found
