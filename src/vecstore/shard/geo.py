"""Geo conditions: the exact test of one point, its numpy twin, and the region a condition
can only match inside (what the geo grid of `payload_index` looks up).

The formulas are qdrant-client local mode's (`local/geo.py`, `local/payload_filters.py`):
haversine on a sphere of 6,371,008.8 m, strict box bounds, a ray-casting polygon test where
a point on the exterior ring or on a hole's ring is outside. The numpy
versions give the same answer for every point: polygon and box are the same IEEE
operations in the same order; for the radius, points within a hair of the circle are
decided by the scalar formula. Pure functions: no state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from vecstore.cluster.filters import GeoBox, GeoCondition, GeoPoint, GeoPolygon, GeoRadius

MEAN_EARTH_RADIUS = 6_371_008.8
"""Metres, as recommended by the IUGG (and used by Qdrant)."""
RADIUS_BAND = 1e-3
"""Metres: numpy distances this close to the radius are rechecked with the scalar formula."""
REGION_MARGIN = 1e-6
"""Degrees added around a condition's region, against rounding in the bounds."""
EXACT_COORDINATE = 2**53
"""Integer coordinates beyond this are not exact in float64: such points are tested in Python."""

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
LonRange = tuple[float, float]


def geo_point(value: Any) -> GeoPoint | None:
    """(lon, lat) of a geo payload value: an object whose lon and lat are finite JSON numbers."""
    if not isinstance(value, dict):
        return None
    lon, lat = value.get("lon"), value.get("lat")
    for coordinate in (lon, lat):
        if type(coordinate) is not int and type(coordinate) is not float:
            return None
        try:
            if not math.isfinite(coordinate):
                return None
        except OverflowError:  # an integer too large for a float
            return None
    return lon, lat  # type: ignore[return-value]


def geo_distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres between two points (haversine), in local mode's order of operations."""
    lon1, lat1, lon2, lat2 = map(math.radians, [lon1, lat1, lon2, lat2])
    dlon = lon2 - lon1
    dlat = lat2 - lat1
    a = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return MEAN_EARTH_RADIUS * (2 * math.asin(math.sqrt(a)))


def point_holds(condition: GeoCondition, lon: float, lat: float) -> bool:
    """True if the point (lon, lat) satisfies the condition."""
    if isinstance(condition, GeoRadius):
        return geo_distance(lon, lat, condition.lon, condition.lat) < condition.radius
    if isinstance(condition, GeoBox):
        if condition.left > condition.right:  # crosses the antimeridian
            inside_lon = lon > condition.left or lon < condition.right
        else:
            inside_lon = condition.left < lon < condition.right
        return inside_lon and condition.top > lat > condition.bottom
    point = (lat, lon)
    if not _in_ring(point, condition.exterior, ignore_boundary=True):
        return False
    return not any(_in_ring(point, ring, ignore_boundary=False) for ring in condition.interiors)


def _in_ring(point: tuple[float, float], ring: tuple[GeoPoint, ...], ignore_boundary: bool) -> bool:
    # local mode works on (lat, lon) pairs: x is the latitude
    pt0, pt1 = point
    corners = [(lat, lon) for lon, lat in ring[:-1]]
    inside = False
    xj, yj = corners[-1]
    for xi, yi in corners:
        on_boundary = (
            (pt1 * (xi - xj) + yi * (xj - pt0) + yj * (pt0 - xi) == 0)
            and ((xi - pt0) * (xj - pt0) <= 0)
            and ((yi - pt1) * (yj - pt1) <= 0)
        )
        if on_boundary:
            return not ignore_boundary
        if ((yi > pt1) != (yj > pt1)) and (pt0 < (xj - xi) * (pt1 - yi) / (yj - yi) + xi):
            inside = not inside
        xj, yj = xi, yi
    return inside


def points_hold(condition: GeoCondition, lon: Floats, lat: Floats) -> Mask:
    """Per point: `point_holds`, with numpy (same answers)."""
    if isinstance(condition, GeoRadius):
        distance = _distances(lon, lat, condition.lon, condition.lat)
        result: Mask = distance < condition.radius
        for i in np.flatnonzero(np.abs(distance - condition.radius) <= RADIUS_BAND).tolist():
            result[i] = (
                geo_distance(float(lon[i]), float(lat[i]), condition.lon, condition.lat) < condition.radius
            )
        return result
    if isinstance(condition, GeoBox):
        if condition.left > condition.right:
            inside_lon = (lon > condition.left) | (lon < condition.right)
        else:
            inside_lon = (condition.left < lon) & (lon < condition.right)
        inside: Mask = inside_lon & (condition.top > lat) & (lat > condition.bottom)
        return inside
    result = _in_ring_many(lat, lon, condition.exterior, ignore_boundary=True)
    for ring in condition.interiors:
        result &= ~_in_ring_many(lat, lon, ring, ignore_boundary=False)
    return result


def _distances(lon: Floats, lat: Floats, center_lon: float, center_lat: float) -> Floats:
    lon1, lat1 = np.radians(lon), np.radians(lat)
    lon2, lat2 = math.radians(center_lon), math.radians(center_lat)
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * math.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    distance: Floats = MEAN_EARTH_RADIUS * 2 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return distance


def _in_ring_many(pt0: Floats, pt1: Floats, ring: tuple[GeoPoint, ...], ignore_boundary: bool) -> Mask:
    corners = [(lat, lon) for lon, lat in ring[:-1]]
    inside = np.zeros(len(pt0), dtype=bool)
    decided = np.zeros(len(pt0), dtype=bool)
    decision = np.zeros(len(pt0), dtype=bool)
    xj, yj = corners[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        for xi, yi in corners:
            on_boundary = (
                (pt1 * (xi - xj) + yi * (xj - pt0) + yj * (pt0 - xi) == 0)
                & ((xi - pt0) * (xj - pt0) <= 0)
                & ((yi - pt1) * (yj - pt1) <= 0)
                & ~decided
            )
            decision[on_boundary] = not ignore_boundary
            decided |= on_boundary
            if yi != yj:  # otherwise no crossing (local mode never divides then)
                crossing = ((yi > pt1) != (yj > pt1)) & (pt0 < (xj - xi) * (pt1 - yi) / (yj - yi) + xi)
                inside ^= crossing
            xj, yj = xi, yi
    result: Mask = np.where(decided, decision, inside)
    return result


def condition_region(condition: GeoCondition) -> tuple[float, float, list[LonRange]]:
    """(lowest lat, highest lat, longitude ranges) outside which no point satisfies the condition."""
    if isinstance(condition, GeoBox):
        lon_ranges = (
            [(condition.left, math.inf), (-math.inf, condition.right)]
            if condition.left > condition.right
            else [(condition.left, condition.right)]
        )
        return condition.bottom, condition.top, lon_ranges
    if isinstance(condition, GeoPolygon):
        lons = [lon for lon, _ in condition.exterior]
        lats = [lat for _, lat in condition.exterior]
        return min(lats), max(lats), [(min(lons), max(lons))]
    return _radius_region(condition)


def _radius_region(condition: GeoRadius) -> tuple[float, float, list[LonRange]]:
    angle = condition.radius / MEAN_EARTH_RADIUS  # radians of arc
    if angle >= math.pi / 2:
        return -math.inf, math.inf, [(-math.inf, math.inf)]
    spread = math.degrees(angle) + REGION_MARGIN
    low, high = condition.lat - spread, condition.lat + spread
    if low <= -90 or high >= 90:  # the circle holds a pole: every longitude
        return low, high, [(-math.inf, math.inf)]
    cos_lat = math.cos(math.radians(condition.lat))
    ratio = math.sin(angle) / cos_lat if cos_lat > 0 else 2.0
    if ratio >= 1:
        return low, high, [(-math.inf, math.inf)]
    half = math.degrees(math.asin(ratio)) + REGION_MARGIN
    west, east = condition.lon - half, condition.lon + half
    ranges = [(west, east)]
    if west < -180:
        ranges.append((west + 360, math.inf))
    if east > 180:
        ranges.append((-math.inf, east - 360))
    return low, high, ranges
