"""Geo, datetime, full-text, prefix, regex and array-index filters: parsing, evaluation, and
the geo grid against a scan of every point."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from vecstore.cluster.datetimes import format_datetime, parse_datetime
from vecstore.cluster.errors import InvalidFilter
from vecstore.cluster.filters import (
    MAX_REGEX_LENGTH,
    DatetimeRange,
    GeoBox,
    GeoCondition,
    GeoPolygon,
    GeoRadius,
    Regex,
    filter_to_json,
    parse_filter,
)
from vecstore.shard.geo import MEAN_EARTH_RADIUS, geo_distance, point_holds, points_hold
from vecstore.shard.geo_index import build_geo_column
from vecstore.shard.payload_filter import field_values, matches

BERLIN = {"lon": 13.405, "lat": 52.52}
LONDON = {"lon": -0.1278, "lat": 51.5074}


def check(condition: dict[str, Any], payload: dict[str, Any]) -> bool:
    return matches(parse_filter({"must": [condition]}), 1, payload)


def radius(center: dict[str, float], metres: float) -> dict[str, Any]:
    return {"key": "at", "geo_radius": {"center": center, "radius": metres}}


def square(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    corners = [(west, south), (east, south), (east, north), (west, north), (west, south)]
    return {"points": [{"lon": lon, "lat": lat} for lon, lat in corners]}


# ---- geo ----------------------------------------------------------------------------------


def test_radius_uses_haversine_on_the_mean_earth_radius() -> None:
    distance = geo_distance(BERLIN["lon"], BERLIN["lat"], LONDON["lon"], LONDON["lat"])
    assert 930_000 < distance < 935_000
    assert check(radius(LONDON, distance + 1), {"at": BERLIN})
    assert not check(radius(LONDON, distance), {"at": BERLIN})  # strictly less than the radius
    assert MEAN_EARTH_RADIUS == 6_371_008.8


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (BERLIN, True),
        ([LONDON, BERLIN], True),
        ([LONDON], False),
        ({"lon": 13, "lat": 52}, True),  # integers are coordinates too
        ({"lon": "13.4", "lat": 52.52}, False),
        ({"lat": 52.52}, False),
        ({"lon": True, "lat": 52}, False),
        ([[BERLIN]], False),  # an array is unwrapped one level only, as in Qdrant
        ("52.52,13.40", False),
        (None, False),
    ],
)
def test_only_geo_points_match(value: Any, expected: bool) -> None:
    assert check(radius(BERLIN, 100_000), {"at": value}) is expected


def test_bounding_box_is_strict_and_may_cross_the_antimeridian() -> None:
    box = {
        "key": "at",
        "geo_bounding_box": {"top_left": {"lon": 0, "lat": 10}, "bottom_right": {"lon": 10, "lat": 0}},
    }
    assert check(box, {"at": {"lon": 5, "lat": 5}})
    assert not check(box, {"at": {"lon": 0, "lat": 5}})
    assert not check(box, {"at": {"lon": 5, "lat": 10}})
    wrapped = {
        "key": "at",
        "geo_bounding_box": {"top_left": {"lon": 170, "lat": 10}, "bottom_right": {"lon": -170, "lat": -10}},
    }
    assert check(wrapped, {"at": {"lon": 179, "lat": 0}})
    assert check(wrapped, {"at": {"lon": -175, "lat": 0}})
    assert not check(wrapped, {"at": {"lon": 0, "lat": 0}})


def test_polygon_holds_its_inside_and_neither_rings_nor_holes() -> None:
    polygon = {
        "key": "at",
        "geo_polygon": {"exterior": square(0, 0, 10, 10), "interiors": [square(4, 4, 6, 6)]},
    }
    assert check(polygon, {"at": {"lon": 2, "lat": 2}})
    assert not check(polygon, {"at": {"lon": 0, "lat": 5}})  # on the exterior ring (as local mode)
    assert not check(polygon, {"at": {"lon": 5, "lat": 5}})  # in the hole
    assert not check(polygon, {"at": {"lon": 4, "lat": 5}})  # on the hole's ring
    assert not check(polygon, {"at": {"lon": 11, "lat": 5}})


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        (radius({"lon": 0, "lat": 91}, 1), "lat must be a number in [-90, 90]"),
        (radius({"lon": -180.5, "lat": 0}, 1), "lon must be a number in [-180, 180]"),
        (radius({"lon": 0, "lat": 0}, -1), "radius must be a non-negative number"),
        (radius({"lon": 0, "lat": 0, "x": 1}, 1), "must be a geo point"),
        ({"key": "at", "geo_radius": {"center": {"lon": 0, "lat": 0}}}, "expects fields"),
        ({"key": "at", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 0}}}, "expects fields"),
        (
            {"key": "at", "geo_polygon": {"exterior": {"points": square(0, 0, 1, 1)["points"][:3]}}},
            "at least 4 points",
        ),
        ({"key": "at", "geo_polygon": {"exterior": {"points": square(0, 0, 1, 1)["points"][:4]}}}, "closed"),
        (
            {"key": "at", "geo_polygon": {"exterior": square(0, 0, 1, 1), "interiors": [{"points": []}]}},
            "interiors[0] must have at least 4 points",
        ),
        ({"key": "at", "geo_radius": [0, 0]}, "must be an object"),
    ],
)
def test_bad_geo_conditions_are_refused(condition: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter({"must": [condition]})
    assert fragment in caught.value.message


def test_geo_conditions_survive_their_json_form() -> None:
    for condition in (
        radius(BERLIN, 5_000),
        {
            "key": "at",
            "geo_bounding_box": {"top_left": {"lon": 1, "lat": 2}, "bottom_right": {"lon": 3, "lat": 0}},
        },
        {"key": "at", "geo_polygon": {"exterior": square(0, 0, 10, 10), "interiors": [square(4, 4, 6, 6)]}},
    ):
        parsed = parse_filter({"must": [condition]})
        assert parse_filter(filter_to_json(parsed)) == parsed


def random_conditions(rng: np.random.Generator) -> list[GeoCondition]:
    conditions: list[GeoCondition] = [
        GeoRadius("at", 179.9, 0.0, 50_000.0),  # crosses the antimeridian
        GeoRadius("at", 0.0, 89.9, 100_000.0),  # holds the pole
        GeoRadius("at", 0.0, 0.0, 2.1e7),  # most of the earth
        GeoRadius("at", 10.0, 10.0, 0.0),
        GeoBox("at", 170.0, 10.0, -170.0, -10.0),
        GeoPolygon("at", ((-5.0, -5.0), (5.0, -5.0), (0.0, 5.0), (-5.0, -5.0))),
    ]
    for _ in range(40):
        lon, lat = float(rng.uniform(-180, 180)), float(rng.uniform(-80, 80))
        conditions.append(GeoRadius("at", lon, lat, float(rng.uniform(0, 3e6))))
        west, south = float(rng.uniform(-180, 170)), float(rng.uniform(-90, 80))
        conditions.append(
            GeoBox("at", west, south + float(rng.uniform(0, 10)), west + float(rng.uniform(0, 10)), south)
        )
        ring = ((west, south), (west + 10, south), (west + 5, south + 10), (west, south))
        conditions.append(
            GeoPolygon(
                "at",
                ring,
                (
                    (
                        (west + 4, south + 1),
                        (west + 6, south + 1),
                        (west + 5, south + 3),
                        (west + 4, south + 1),
                    ),
                ),
            )
        )
    return conditions


def test_grid_and_scan_equal_per_point_evaluation() -> None:
    rng = np.random.default_rng(5)
    payloads: list[dict[str, Any]] = []
    for row in range(3_000):
        kind = row % 10
        if kind == 0:
            payloads.append(
                {"at": [{"lon": float(rng.uniform(-180, 180)), "lat": float(rng.uniform(-90, 90))}, None]}
            )
        elif kind == 1:
            payloads.append({"at": {"lon": int(rng.integers(-180, 180)), "lat": int(rng.integers(-90, 90))}})
        elif kind == 2:
            payloads.append({"at": {"lon": 200.0, "lat": 100.0}})  # out of range: outside the grid
        elif kind == 3:
            payloads.append({"other": 1})
        elif kind == 4:
            payloads.append({"at": {"lon": 2**60, "lat": 0}})  # beyond float64's exact integers
        else:
            payloads.append(
                {"at": {"lon": float(rng.uniform(-180, 180)), "lat": float(rng.uniform(-90, 90))}}
            )
    column = build_geo_column(payloads, "at", 0)
    assert column.grid is not None
    assert len(column.awkward) == 300
    for condition in random_conditions(rng):
        expected = {row for row, payload in enumerate(payloads) if matches(condition, 1, payload)}
        awkward = set(column.awkward.tolist())
        for use_grid in (True, False):
            found = set(column.matching_rows(condition, use_grid).tolist())
            assert found - awkward == expected - awkward, (condition, use_grid)


def test_numpy_geo_tests_equal_the_scalar_ones_on_edges() -> None:
    lons = np.array([0.0, 10.0, 5.0, 0.0, 4.0, 6.0, 5.0, 1e-300, -0.0])
    lats = np.array([0.0, 10.0, 10.0, 5.0, 5.0, 4.0, 5.0, 0.0, 0.0])
    polygon = GeoPolygon(
        "at",
        tuple((p["lon"], p["lat"]) for p in square(0, 0, 10, 10)["points"]),
        (tuple((p["lon"], p["lat"]) for p in square(4, 4, 6, 6)["points"]),),
    )
    metres = geo_distance(0.0, 0.0, 10.0, 10.0)
    for condition in (
        polygon,
        GeoBox("at", 0, 10, 10, 0),
        GeoRadius("at", 0, 0, metres),
        GeoRadius("at", 0, 0, math.nextafter(metres, 0)),
    ):
        vector = points_hold(condition, lons, lats).tolist()
        assert vector == [
            point_holds(condition, lon, lat) for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True)
        ]


# ---- datetimes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-05-01T12:30:00Z", "2024-05-01T12:30:00.000000Z"),
        ("2024-05-01T12:30:00", "2024-05-01T12:30:00.000000Z"),  # no offset: UTC
        ("2024-05-01 14:30:00+02:00", "2024-05-01T12:30:00.000000Z"),
        ("2024-05-01T14:30:00.25+02", "2024-05-01T12:30:00.250000Z"),
        ("2024-05-01", "2024-05-01T00:00:00.000000Z"),
        ("2024-05-01T12:30:00.123456789z", "2024-05-01T12:30:00.123456Z"),
        ("2024-05-01 12:30:00 UTC", "2024-05-01T12:30:00.000000Z"),
    ],
)
def test_datetimes_parse_as_qdrant_does(text: str, iso: str) -> None:
    micros = parse_datetime(text)
    assert micros is not None and format_datetime(micros) == iso


@pytest.mark.parametrize(
    "text", ["2024-13-01", "noon", "", "2024-05-01 12", "1714566600", "2024-05-01T12:30:00+25:00"]
)
def test_non_datetimes_do_not_parse(text: str) -> None:
    assert parse_datetime(text) is None


def test_datetime_ranges() -> None:
    condition = {"key": "t", "range": {"gte": "2024-05-01T00:00:00+02:00", "lt": "2024-05-02"}}
    assert parse_filter({"must": [condition]}) == DatetimeRange(
        "t", gte=parse_datetime("2024-04-30T22:00:00Z"), lt=parse_datetime("2024-05-02T00:00:00Z")
    )
    assert check(condition, {"t": "2024-04-30T22:00:00Z"})
    assert not check(condition, {"t": "2024-04-30T21:59:59.999999Z"})
    assert check(condition, {"t": ["garbage", "2024-05-01 23:59"]})
    assert not check(condition, {"t": "2024-05-02T00:00:00"})
    assert not check(condition, {"t": 1714521600})  # numbers are no datetimes
    parsed = parse_filter({"must": [condition]})
    assert parse_filter(filter_to_json(parsed)) == parsed


@pytest.mark.parametrize(
    ("bounds", "fragment"),
    [
        ({"gt": "yesterday"}, "needs a number or an RFC 3339 datetime"),
        ({"gt": "2024-01-01", "lt": 5}, "mixes datetime strings and numbers"),
    ],
)
def test_bad_datetime_ranges_are_refused(bounds: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter({"must": [{"key": "t", "range": bounds}]})
    assert fragment in caught.value.message


# ---- text, prefix, regex ------------------------------------------------------------------

TITLE = {"title": "The Quick-brown fox_jumps over 2 lazy dogs"}


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"text": "quick FOX"}, True),  # every word, any order, case folded
        ({"text": "quick cat"}, False),
        ({"text": "qui"}, False),  # whole words only
        ({"text": "jumps"}, True),  # "_" separates words
        ({"text": ""}, False),
        ({"text_any": "cat dogs"}, True),
        ({"text_any": "cat bird"}, False),
        ({"text_any": ""}, False),
        ({"phrase": "brown fox"}, True),
        ({"phrase": "fox brown"}, False),
        ({"phrase": "quick brown fox jumps"}, True),
        ({"phrase": ""}, False),
        ({"prefix": "The Q"}, True),
        ({"prefix": "the"}, False),  # case-sensitive
        ({"prefix": ""}, True),
        ({"substring": "k-br"}, True),
        ({"regex": r"\bfox_\w+"}, True),
        ({"regex": "^fox"}, False),
    ],
)
def test_string_matches(match: dict[str, str], expected: bool) -> None:
    assert check({"key": "title", "match": match}, TITLE) is expected
    assert not check({"key": "title", "match": match}, {"title": 5})


def test_regex_is_bounded_and_checked() -> None:
    assert parse_filter({"must": [{"key": "a", "match": {"regex": "x" * MAX_REGEX_LENGTH}}]}) == Regex(
        "a", "x" * MAX_REGEX_LENGTH
    )
    with pytest.raises(InvalidFilter, match="more than 256"):
        parse_filter({"must": [{"key": "a", "match": {"regex": "x" * (MAX_REGEX_LENGTH + 1)}}]})
    with pytest.raises(InvalidFilter, match="not a valid regular expression"):
        parse_filter({"must": [{"key": "a", "match": {"regex": "(unclosed"}}]})


# ---- array-index keys ---------------------------------------------------------------------

ITEMS = {"items": [{"n": 1, "tags": ["a", "b"]}, {"n": 2}], "grid": [[1, 2], [3]], "one": {"n": 5}}


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("items[0].n", [1]),
        ("items[1].n", [2]),
        ("items[2].n", []),
        ("items[].n", [1, 2]),
        ("items.n", [1, 2]),  # VecStore walks through arrays of objects without []
        ("items[0].tags", ["a", "b"]),
        ("items[0].tags[1]", ["b"]),
        ("grid[1]", [3]),
        ("grid[0][1]", [2]),
        ("one[0].n", []),  # an index into an object reaches nothing
        ("one[].n", []),
        ('"one".n', [5]),
    ],
)
def test_array_index_keys(key: str, values: list[Any]) -> None:
    assert field_values(ITEMS, key) == values


@pytest.mark.parametrize("key", ["a[", "a[x]", "a..b", "a.", "[0]", 'a."b'])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidFilter, match="dotted path"):
        parse_filter({"must": [{"key": key, "match": {"value": 1}}]})
