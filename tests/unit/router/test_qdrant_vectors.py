"""Dense vectors in Qdrant requests: the all-float fast path answers as the item-by-item check."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from vecstore.cluster.errors import InvalidVector, NotImplementedParameter
from vecstore.router.qdrant.translate import dense_vector

ITEMS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e39, max_value=1e39),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.booleans(),
    st.text(max_size=2),
)


def checked_item_by_item(raw: list[object]) -> list[float] | str:
    """What dense_vector answers for a list that is not all floats (its slow path)."""
    try:
        return dense_vector([*raw, 0], "v")[:-1]  # an int forces the item-by-item path
    except (InvalidVector, NotImplementedParameter) as err:
        return type(err).__name__


@given(st.lists(ITEMS, min_size=1, max_size=12))
def test_the_fast_path_agrees_with_the_item_by_item_check(raw: list[object]) -> None:
    try:
        got: list[float] | str = dense_vector(raw, "v")
    except (InvalidVector, NotImplementedParameter) as err:
        got = type(err).__name__
    assert got == checked_item_by_item(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1.0, float("nan")], "finite float32"),
        ([0.5, 3.5e38], "finite float32"),
        ([0.5, float("-inf")], "finite float32"),
        ([], "non-empty list"),
        ([[0.5]], "needs a vector with multivector_config"),
    ],
)
def test_bad_vectors_are_named(raw: list[object], message: str) -> None:
    with pytest.raises((InvalidVector, NotImplementedParameter), match=message):
        dense_vector(raw, "v")


def test_an_all_float_vector_is_returned_as_sent() -> None:
    raw = [0.25, -1.5, 3.0e38]
    assert dense_vector(raw, "v") == raw
