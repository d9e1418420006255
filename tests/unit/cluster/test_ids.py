"""Point ids: unsigned 64-bit integers or UUIDs, normalised once."""

from __future__ import annotations

import uuid

import pytest

from vecstore.cluster.errors import InvalidPointId
from vecstore.cluster.ids import (
    MAX_INT_ID,
    normalize_point_id,
    point_id_sort_key,
    point_id_to_routing_key,
)

UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"


@pytest.mark.parametrize("value", [0, 1, 42, 2**63, MAX_INT_ID])
def test_integers_in_range_are_kept(value: int) -> None:
    assert normalize_point_id(value) == value
    assert MAX_INT_ID == 2**64 - 1


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (-1, "outside the unsigned 64-bit range"),
        (2**64, "outside the unsigned 64-bit range"),
        (-(2**70), "outside the unsigned 64-bit range"),
        (True, "boolean"),
        (False, "boolean"),
        (1.0, "type float"),
        (None, "type NoneType"),
        (b"abc", "type bytes"),
        ([1], "type list"),
        ("", "is not a UUID"),
        ("42", "is not a UUID"),
        ("not-a-uuid", "is not a UUID"),
        (UUID_TEXT[:-1], "is not a UUID"),
        (UUID_TEXT + "0", "is not a UUID"),
        (uuid.UUID(UUID_TEXT), "type UUID"),
    ],
)
def test_bad_ids_are_rejected_with_a_reason(value: object, fragment: str) -> None:
    with pytest.raises(InvalidPointId) as caught:
        normalize_point_id(value)
    assert fragment in caught.value.message
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    "spelling",
    [
        UUID_TEXT,
        UUID_TEXT.upper(),
        UUID_TEXT.replace("-", ""),
        "{" + UUID_TEXT + "}",
        "urn:uuid:" + UUID_TEXT,
    ],
)
def test_uuids_are_canonical_lowercase(spelling: str) -> None:
    assert normalize_point_id(spelling) == UUID_TEXT


def test_sort_key_puts_integers_before_uuids_in_numeric_order() -> None:
    small_uuid = "00000000-0000-0000-0000-000000000005"
    big_uuid = "ffffffff-0000-0000-0000-000000000000"
    ids: list[int | str] = [big_uuid, MAX_INT_ID, small_uuid, 10, 2, UUID_TEXT]
    assert sorted(ids, key=point_id_sort_key) == [2, 10, MAX_INT_ID, small_uuid, UUID_TEXT, big_uuid]


def test_an_integer_and_the_uuid_of_the_same_number_are_different_points() -> None:
    as_uuid = normalize_point_id("00000000-0000-0000-0000-000000000005")
    assert as_uuid != 5
    assert point_id_sort_key(5) != point_id_sort_key(as_uuid)
    assert point_id_to_routing_key(5) == "i:5"
    assert point_id_to_routing_key(as_uuid) == "u:00000000-0000-0000-0000-000000000005"
