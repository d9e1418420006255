"""Geo columns: the geo points at one payload key of a container, with a grid to look up
the few that a selective geo condition can match.

The grid sorts points by (latitude band, longitude): a condition's region (`geo.py`) maps
to one longitude slice per band it spans, found by binary search, so a 1% query touches
about 1% of the points plus the band edges. Every candidate is then tested exactly, so the
answer equals `payload_filter.matches`. Points outside the lat/lon ranges (payloads are not
validated) and a memtable's newest rows are outside the grid and always tested. Reads only.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vecstore.cluster.filters import GeoCondition
from vecstore.shard.geo import EXACT_COORDINATE, condition_region, geo_point, points_hold
from vecstore.shard.payload_filter import geo_values

Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

MIN_GRID = 256
"""Below this many points a scan is as cheap as a lookup: no grid."""
MAX_BANDS = 4_096
BAND_STRIDE = 512.0
"""A band's share of the sort key: longitudes (shifted to 0..360) fit below it."""


@dataclass(frozen=True)
class GeoGrid:
    """Points [0, count) of a column sorted by (latitude band, longitude)."""

    count: int
    low: float
    height: float
    bands: int
    keys: Floats
    """Sorted sort keys: band * BAND_STRIDE + lon + 180."""
    order: Rows
    """Point numbers in key order."""
    outside: Rows
    """Points of [0, count) with a coordinate outside [-90, 90] x [-180, 180]: not in the grid."""

    def band(self, lat: float) -> int:
        """The band of a latitude (clipped to the grid)."""
        if not math.isfinite(lat):
            return 0 if lat < 0 else self.bands - 1
        return min(max(math.floor((lat - self.low) / self.height), 0), self.bands - 1)

    def candidates(self, condition: GeoCondition) -> Rows:
        """Points of [0, count) that may satisfy the condition (a superset of those that do)."""
        low, high, lon_ranges = condition_region(condition)
        top = self.low + self.height * self.bands
        if high < self.low or low > top:
            return self.outside
        bands = np.arange(self.band(low), self.band(high) + 1, dtype=np.float64) * BAND_STRIDE
        starts, ends = [], []
        for low_lon, high_lon in lon_ranges:
            west, east = max(low_lon, -180.0), min(high_lon, 180.0)
            if west > east:
                continue
            starts.append(np.searchsorted(self.keys, bands + (west + 180.0), side="left"))
            ends.append(np.searchsorted(self.keys, bands + (east + 180.0), side="right"))
        if not starts:
            return self.outside
        first, last = np.concatenate(starts), np.concatenate(ends)
        lengths = np.maximum(last - first, 0)
        total = int(lengths.sum())
        offsets = np.repeat(first - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        picked = self.order[offsets + np.arange(total)]
        return np.concatenate([picked, self.outside])


@dataclass(frozen=True)
class GeoColumn:
    """The geo points at one key for rows [0, rows) of a container; immutable once built."""

    rows: int
    edits: int
    """The memtable's edit count when the oldest rows were read (0 for segments)."""
    point_rows: Rows
    lon: Floats
    lat: Floats
    awkward: Rows
    """Rows with an integer coordinate float64 cannot hold exactly: evaluated per point."""
    grid: GeoGrid | None

    def matching_rows(self, condition: GeoCondition, use_grid: bool = True) -> Rows:
        """Rows with a point satisfying the condition (some rows may repeat)."""
        if use_grid and self.grid is not None:
            tail = np.arange(self.grid.count, len(self.lon), dtype=np.int64)
            points = np.concatenate([self.grid.candidates(condition), tail])
            passing = points[points_hold(condition, self.lon[points], self.lat[points])]
        else:
            passing = np.flatnonzero(points_hold(condition, self.lon, self.lat))
        found: Rows = self.point_rows[passing]
        return found


def build_geo_column(payloads: Iterable[dict[str, Any]], key: str, edits: int) -> GeoColumn:
    """Read the geo points at `key` from each payload, in row order, and grid them."""
    rows, lons, lats, awkward = array("q"), array("d"), array("d"), array("q")
    count = 0
    for row, payload in enumerate(payloads):
        count += 1
        for value in geo_values(payload, key):
            point = geo_point(value)
            if point is None:
                continue
            if any(type(c) is int and not -EXACT_COORDINATE <= c <= EXACT_COORDINATE for c in point):
                awkward.append(row)
                continue
            rows.append(row)
            lons.append(float(point[0]))
            lats.append(float(point[1]))
    lon, lat = np.array(lons, np.float64), np.array(lats, np.float64)
    return GeoColumn(
        count,
        edits,
        np.array(rows, np.int64),
        lon,
        lat,
        np.unique(np.array(awkward, np.int64)),
        _grid(lon, lat),
    )


def extend_geo_column(column: GeoColumn, payloads: Iterable[dict[str, Any]], key: str) -> GeoColumn:
    """The column with rows appended (the memtable grew); new points stay outside the grid
    until they are a quarter of it, then the grid is rebuilt."""
    tail = build_geo_column(payloads, key, column.edits)
    lon, lat = np.concatenate([column.lon, tail.lon]), np.concatenate([column.lat, tail.lat])
    grid = column.grid
    gridded = grid.count if grid is not None else 0
    if len(lon) - gridded > max(MIN_GRID, gridded // 4):
        grid = _grid(lon, lat)
    return GeoColumn(
        column.rows + tail.rows,
        column.edits,
        np.concatenate([column.point_rows, tail.point_rows + column.rows]),
        lon,
        lat,
        np.concatenate([column.awkward, tail.awkward + column.rows]),
        grid,
    )


def _grid(lon: Floats, lat: Floats) -> GeoGrid | None:
    if len(lon) < MIN_GRID:
        return None
    inside = (lat >= -90) & (lat <= 90) & (lon >= -180) & (lon <= 180)
    points = np.flatnonzero(inside)
    outside = np.flatnonzero(~inside)
    if not len(points):
        return None
    low, high = float(lat[points].min()), float(lat[points].max())
    bands = max(1, min(MAX_BANDS, math.isqrt(len(points))))
    height = (high - low) / bands or 1.0
    band = np.clip(np.floor((lat[points] - low) / height), 0, bands - 1)
    keys = band * BAND_STRIDE + (lon[points] + 180.0)
    order = np.argsort(keys, kind="stable")
    return GeoGrid(len(lon), low, height, bands, keys[order], points[order], outside)
