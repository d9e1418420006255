"""Read tokens: per-shard Raft indexes as "shard:index,...", parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.read_token import format_token, parse_token


@given(st.dictionaries(st.integers(0, 1_000), st.integers(1, 2**63 - 1), max_size=20))
def test_a_token_round_trips(indexes: dict[int, int]) -> None:
    assert parse_token(format_token(indexes)) == indexes


def test_shards_without_writes_are_left_out_and_no_token_is_empty() -> None:
    assert format_token({1: 0, 0: 7}) == "0:7"
    assert parse_token(None) == {} and parse_token("") == {}


@pytest.mark.parametrize(
    "raw", ["x", "1:", ":2", "1:2,,", "1:-2", "1:2;3:4", " 1:2", 5, ["1:2"], "1:" + "9" * 30]
)
def test_malformed_tokens_are_refused(raw: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_token(raw)
