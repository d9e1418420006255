"""Request bodies and their field readers: clear errors, never a crash."""

from __future__ import annotations

import json

import pytest

from vecstore.cluster.errors import InvalidRequest
from vecstore.transport.wire import JSON, _has_long_digit_run, decode_body, field_float


def test_field_float() -> None:
    assert field_float({"x": 2}, "x") == 2.0
    assert field_float({}, "x") is None
    for bad in (10**400, float("inf"), float("nan"), True, "1"):
        with pytest.raises(InvalidRequest, match="x must be"):
            field_float({"x": bad}, "x")


@pytest.mark.parametrize(
    "text",
    [
        '{"vector": [0.1, -2.5e-3, 3], "k": 10, "name": "caf\\u00e9"}',
        '{"a": NaN, "b": Infinity}',  # refused by orjson: the standard library decodes them
        '{"id": 123456789012345678901234567890}',  # beyond 64 bits: likewise
        '{"a": {"b": [1, {"c": null}]}, "d": true}',
    ],
)
def test_json_bodies_decode_as_the_standard_library_decodes_them(text: str) -> None:
    got = decode_body(text.encode(), JSON)
    expected = json.loads(text)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON: Expecting property name"),
        ("[1]", "must be an object"),
        ('{"a":' * 3000, "nested deeper"),
    ],
)
def test_bad_json_bodies_get_the_standard_librarys_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode_body(text.encode(), JSON)


@pytest.mark.parametrize(
    ("text", "long_run"),
    [
        ('{"a": 12345678901234567890}', True),
        ('{"a": 1234567890123456789}', False),
        ("12345678901234567890", True),
        ('{"a": 0.12345678901234567890}', True),
        ('{"a": [1, 22, 333]}', False),
        ("", False),
    ],
)
def test_long_digit_runs_are_found(text: str, long_run: bool) -> None:
    assert _has_long_digit_run(text.encode()) is long_run
