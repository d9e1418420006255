"""The frame bound: which announced lengths close a Raft connection."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from vecstore.node.raft_frames import FRAME_MARGIN_BYTES, max_frame_bytes, oversized_frame


def frame(length: int, body: bytes = b"") -> bytes:
    return struct.pack("i", length) + body


def test_the_first_oversized_or_negative_header_is_found() -> None:
    assert oversized_frame(b"", 10) is None
    assert oversized_frame(b"\x01\x00", 10) is None  # an incomplete header
    assert oversized_frame(frame(11), 10) == 11
    assert oversized_frame(frame(-5), 10) == -5
    assert oversized_frame(frame(3, b"abc") + frame(2**31 - 1), 10) == 2**31 - 1
    assert oversized_frame(frame(10, b"x" * 10) + frame(4, b"ab"), 10) is None  # second incomplete


@given(st.lists(st.binary(max_size=20), max_size=6), st.integers(min_value=0, max_value=20))
def test_agrees_with_a_model(bodies: list[bytes], limit: int) -> None:
    stream = b"".join(frame(len(body), body) for body in bodies)
    expected = next((len(body) for body in bodies if len(body) > limit), None)
    assert oversized_frame(stream, limit) == expected


def test_the_bound_covers_one_append_batch() -> None:
    assert max_frame_bytes(17 << 20) == (17 << 20) + FRAME_MARGIN_BYTES
