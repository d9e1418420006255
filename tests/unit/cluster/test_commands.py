"""Command constructors: validation and normalisation of user input before it is logged."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.cluster.commands import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    Selector,
    Upsert,
    as_vector_matrix,
    validate_payload,
)
from vecstore.cluster.errors import (
    InvalidPointId,
    InvalidRequest,
    InvalidSchema,
    InvalidVector,
    PayloadTooLarge,
)
from vecstore.cluster.filters import IsEmpty

UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"


def test_build_normalises_ids_vectors_and_payloads() -> None:
    command = Upsert.build("docs", [7, UUID_TEXT.upper()], [[1, 2, 3], [4, 5, 6]], [{"a": 1}, None])
    assert command.ids == (7, UUID_TEXT)
    assert command.dimension == 3
    assert command.payloads == ({"a": 1}, {})
    assert len(command.vectors) == 2 * 3 * 4
    matrix = command.matrix()
    assert matrix.dtype == np.float32
    assert matrix.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_build_accepts_one_flat_vector_for_one_id() -> None:
    command = Upsert.build("docs", [1], [0.5, 0.25])
    assert command.matrix().shape == (1, 2)
    assert command.payloads == ({},)


def test_vectors_are_little_endian_float32() -> None:
    command = Upsert.build("docs", [1], np.array([[1.5, -2.0]], dtype=np.float64))
    assert command.vectors == np.array([1.5, -2.0], dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("ids", "vectors", "fragment"),
    [
        ([1, 2], [[1.0, 2.0]], "expected 2 vectors"),
        ([1], [[1.0, 2.0], [3.0, 4.0]], "expected 1 vectors"),
        ([1, 2], [[1.0, 2.0], [3.0]], "lists of numbers"),
        ([1], [["a", "b"]], "lists of numbers"),
        ([1], [[]], "at least one dimension"),
        ([1], [[1.0, float("nan")]], "finite"),
        ([1], [[float("inf"), 1.0]], "finite"),
        ([1, 2], [[[1.0]], [[2.0]]], "expected 2 vectors"),
        ([], [], "expected 0 vectors"),
    ],
)
def test_build_rejects_bad_vectors(ids: list[object], vectors: object, fragment: str) -> None:
    with pytest.raises(InvalidVector) as caught:
        Upsert.build("docs", ids, vectors)  # type: ignore[arg-type]
    assert fragment in caught.value.message


def test_build_rejects_bad_ids_names_and_payloads() -> None:
    with pytest.raises(InvalidPointId):
        Upsert.build("docs", [-1], [[1.0]])
    with pytest.raises(InvalidSchema):
        Upsert.build("no spaces", [1], [[1.0]])
    with pytest.raises(InvalidRequest, match="same point id twice"):
        Upsert.build("docs", [1, 1], [[1.0], [2.0]])
    with pytest.raises(InvalidRequest, match="same point id twice"):
        Upsert.build("docs", [UUID_TEXT, UUID_TEXT.upper()], [[1.0], [2.0]])
    with pytest.raises(InvalidRequest, match="got 1 payloads for 2 points"):
        Upsert.build("docs", [1, 2], [[1.0], [2.0]], [{}])
    with pytest.raises(InvalidRequest, match="payload must be a JSON object"):
        Upsert.build("docs", [1], [[1.0]], [["not", "an", "object"]])  # type: ignore[list-item]


def test_build_enforces_the_payload_limit() -> None:
    Upsert.build("docs", [1], [[1.0]], [{"t": "x" * 50}], max_payload_bytes=60)
    with pytest.raises(PayloadTooLarge) as caught:
        Upsert.build("docs", [1], [[1.0]], [{"t": "x" * 100}], max_payload_bytes=60)
    assert caught.value.http_status == 413
    assert "limit is 60" in caught.value.message


def test_validate_payload() -> None:
    nested = {"a": {"b": [1, 2.5, "x", None, True]}, "c": []}
    assert validate_payload(nested) is nested
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, {"x": b"bytes"}):
        with pytest.raises(InvalidRequest, match="not valid JSON"):
            validate_payload(bad)
    with pytest.raises(PayloadTooLarge):
        validate_payload({"x": "y" * DEFAULT_MAX_PAYLOAD_BYTES})


@pytest.mark.parametrize("payload", [{"n": 2**64}, {"n": -(2**63) - 1}, {"a": {1: "x"}}, {"a": [{2.5: 1}]}])
def test_validate_payload_rejects_what_the_wire_cannot_carry(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest, match="cannot be stored"):
        validate_payload(payload)


def test_validate_payload_keeps_the_whole_64_bit_range() -> None:
    payload = {"big": 2**64 - 1, "small": -(2**63)}
    assert validate_payload(payload) is payload


def test_as_vector_matrix_without_expected_rows() -> None:
    assert as_vector_matrix([[1, 2], [3, 4], [5, 6]]).shape == (3, 2)
    with pytest.raises(InvalidVector):
        as_vector_matrix([1.0, 2.0])


def test_selector_needs_exactly_one_of_ids_or_filter() -> None:
    assert Selector.of_ids([UUID_TEXT.upper(), 3]).ids == (UUID_TEXT, 3)
    assert Selector.of_filter(IsEmpty("a")).filter == IsEmpty("a")
    with pytest.raises(InvalidRequest, match="exactly one"):
        Selector()
    with pytest.raises(InvalidRequest, match="exactly one"):
        Selector(ids=(1,), filter=IsEmpty("a"))
    with pytest.raises(InvalidPointId):
        Selector.of_ids([True])


def test_as_vector_matrix_rejects_integers_beyond_float_range() -> None:
    with pytest.raises(InvalidVector, match="lists of numbers"):
        as_vector_matrix([[10**400, 0]])
