"""DataFrame conversions of the client, and its small pure helpers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.client.aio import as_filter, as_ids, as_matrix
from vecstore.client.frames import pandas_columns, points_to_pandas, points_to_polars, polars_columns
from vecstore.client.models import Point
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.read_token import format_token, merge_tokens, parse_token


def test_pandas_columns_leave_missing_values_out_and_make_json_values() -> None:
    frame = pd.DataFrame(
        {
            "id": np.array([3, 4], dtype=np.uint64),
            "vector": [np.ones(2), [0.5, 0.25]],
            "price": [np.nan, 2.5],
            "when": [pd.Timestamp("2026-01-02T03:04:05"), pd.NaT],
            "tags": [np.array(["a", "b"]), None],
            "flag": [np.True_, False],
        }
    )
    ids, matrix, payloads = pandas_columns(frame, "id", "vector", None)
    assert ids == [3, 4] and all(type(i) is int for i in ids)
    assert matrix.dtype == np.float32 and matrix.tolist() == [[1, 1], [0.5, 0.25]]
    assert payloads == [
        {"when": "2026-01-02T03:04:05", "tags": ["a", "b"], "flag": True},
        {"price": 2.5, "flag": False},
    ]
    assert pandas_columns(frame, "id", "vector", ["price"])[2] == [{}, {"price": 2.5}]
    with pytest.raises(InvalidRequest, match="not in the frame"):
        pandas_columns(frame, "id", "vector", ["nope"])
    ragged = pd.DataFrame({"id": [1, 2], "vector": [[1.0], [1.0, 2.0]]})
    with pytest.raises(InvalidRequest, match="same length"):
        pandas_columns(ragged, "id", "vector", None)


def test_polars_array_and_list_columns() -> None:
    matrix = np.arange(6, dtype=np.float32).reshape(3, 2)
    frame = pl.DataFrame({"id": ["a", "b", "c"], "v": matrix, "d": [dt.date(2026, 1, 1), None, None]})
    assert isinstance(frame["v"].dtype, pl.Array)
    ids, got, payloads = polars_columns(frame, "id", "v", None)
    assert ids == ["a", "b", "c"]
    np.testing.assert_array_equal(got, matrix)
    assert payloads == [{"d": "2026-01-01"}, {}, {}]
    listed = pl.DataFrame({"id": [1, 2], "v": [[1.0, 2.0], [3.0, 4.0]]})
    assert polars_columns(listed, "id", "v", None)[1].tolist() == [[1, 2], [3, 4]]


def test_points_to_frames_with_reserved_payload_keys() -> None:
    points = [
        Point(1, {"id": "mine", "x": 1}, np.array([1, 2], dtype=np.float32)),
        Point(2, {"y": "z"}, np.array([3, 4], dtype=np.float32)),
    ]
    frame = points_to_pandas(points)
    assert list(frame.columns) == ["id", "vector", "payload.id", "x", "y"]
    assert frame["payload.id"].isna().tolist() == [False, True]
    polars_frame = points_to_polars(points)
    assert polars_frame["vector"].dtype == pl.Array(pl.Float32, 2)
    assert polars_frame["x"].to_list() == [1, None]
    without_vectors = points_to_pandas([Point(1, {"a": 1})])
    assert "vector" not in without_vectors.columns


def test_client_helpers() -> None:
    assert as_matrix([1, 2]).shape == (1, 2)
    with pytest.raises(InvalidRequest, match="matrix"):
        as_matrix(np.zeros((2, 2, 2)))
    assert as_ids(np.array([1, 2], dtype=np.uint64)) == [1, 2]
    assert as_ids([np.int64(5), "u"]) == [5, "u"]
    condition = {"key": "a", "match": {"value": 1}}
    assert as_filter(condition) == {"must": [condition]}
    assert as_filter({"should": [condition]}) == {"should": [condition]}


tokens = st.dictionaries(st.integers(0, 50), st.integers(1, 2**63 - 1), max_size=6)


@given(tokens, tokens)
def test_merged_token_is_the_per_shard_maximum(first: dict[int, int], second: dict[int, int]) -> None:
    merged = parse_token(merge_tokens(format_token(first), format_token(second)))
    assert merged == {s: max(first.get(s, 0), second.get(s, 0)) for s in first.keys() | second.keys()}
