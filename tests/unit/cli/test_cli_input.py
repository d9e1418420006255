"""Reading points and queries for the CLI: every bad line or row is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vecstore.cli.output import CliError
from vecstore.cli.points import (
    batches,
    count_lines,
    jsonl_points,
    load_matrix,
    npy_points,
    parse_point_line,
)
from vecstore.cli.search import parse_filter_option, parse_query_vector, render_results


def test_a_good_line_becomes_a_point() -> None:
    point = parse_point_line('{"id": 7, "vector": [1, 2.5], "payload": {"a": 1}}', 2, "f line 1")
    assert point == {"id": 7, "vector": [1.0, 2.5], "payload": {"a": 1}}
    assert "payload" not in parse_point_line('{"id": "u", "vector": [0, 0], "payload": null}', 2, "w")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": 1, "vector": [1, 2', "f line 3: not valid JSON (Expecting ',' delimiter at column 26)"),
        ("[1, 2]", "f line 3: expected an object"),
        ('{"vector": [1, 2]}', "f line 3: each point needs 'id' and 'vector'"),
        ('{"id": 1, "vector": [1, 2], "extra": 1}', "unknown fields ['extra']"),
        ('{"id": true, "vector": [1, 2]}', "'id' must be an unsigned integer or a UUID string"),
        ('{"id": 1, "vector": [1, 2, 3]}', "f line 3: vector has 3 dimensions, the collection expects 2"),
        ('{"id": 1, "vector": [1, "x"]}', "'vector' must be a list of numbers"),
        ('{"id": 1, "vector": [1, NaN]}', "NaN or infinite"),
        ('{"id": 1, "vector": [1, 2], "payload": [1]}', "'payload' must be a JSON object, got list"),
    ],
)
def test_bad_lines_are_named(line: str, message: str) -> None:
    with pytest.raises(CliError, match=None) as caught:
        parse_point_line(line, 2, "f line 3")
    assert message in caught.value.format_message()


def test_jsonl_numbers_lines_and_skips_blank_ones(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "vector": [1]}\n\n{"id": 2, "vector": [1, 2]}\n')
    assert count_lines(path) == 2
    points = jsonl_points(path, 1)
    assert next(points)["id"] == 1
    with pytest.raises(CliError, match=r"p.jsonl line 3: vector has 2 dimensions"):
        next(points)


def test_npy_rows_get_consecutive_ids_and_their_payloads(tmp_path: Path) -> None:
    matrix = np.arange(6, dtype=np.float32).reshape(3, 2)
    payloads = tmp_path / "p.jsonl"
    payloads.write_text('{"n": 0}\nnull\n{"n": 2}\n')
    points = list(npy_points(matrix, payloads, 100, tmp_path / "x.npy"))
    assert [p["id"] for p in points] == [100, 101, 102]
    assert points[1] == {"id": 101, "vector": [2.0, 3.0]}
    assert points[2]["payload"] == {"n": 2}
    assert next(npy_points(matrix, None, 0, tmp_path / "x.npy"))["vector"] == [0.0, 1.0]


def test_npy_problems_are_named(tmp_path: Path) -> None:
    bad = np.ones((3, 2), dtype=np.float32)
    bad[2, 1] = np.inf
    with pytest.raises(CliError, match=r"x.npy row 2: vector has a NaN or infinite value"):
        list(npy_points(bad, None, 0, tmp_path / "x.npy"))
    payloads = tmp_path / "p.jsonl"
    payloads.write_text('{"n": 0}\n{"n": \n')
    with pytest.raises(CliError, match=r"p.jsonl payload for row 1: not valid JSON"):
        list(npy_points(np.ones((2, 2)), payloads, 0, tmp_path / "x.npy"))
    payloads.write_text('{"n": 0}\n"text"\n')
    with pytest.raises(CliError, match=r"payload for row 1: 'payload' must be a JSON object"):
        list(npy_points(np.ones((2, 2)), payloads, 0, tmp_path / "x.npy"))


def test_matrices_are_checked(tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.ones((4, 3), dtype=np.float16))
    assert load_matrix(tmp_path / "ok.npy", 3).shape == (4, 3)
    np.save(tmp_path / "one.npy", np.ones(3))
    assert load_matrix(tmp_path / "one.npy").shape == (1, 3)
    with pytest.raises(CliError, match="vectors have 3 dimensions, the collection expects 5"):
        load_matrix(tmp_path / "ok.npy", 5)
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    with pytest.raises(CliError, match="must hold a 2-d numeric array"):
        load_matrix(tmp_path / "cube.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(CliError, match=r"is not a readable \.npy array"):
        load_matrix(tmp_path / "text.npy")


def test_batches_keep_order() -> None:
    points = [{"id": i} for i in range(5)]
    assert [[p["id"] for p in b] for b in batches(iter(points), 2)] == [[0, 1], [2, 3], [4]]


def test_query_vectors_and_filters() -> None:
    assert parse_query_vector("[1, 2]") == [[1.0, 2.0]]
    assert parse_query_vector("[[1, 2], [3, 4]]") == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(CliError, match=r"--vector row 1: vector has 1 dimensions"):
        parse_query_vector("[[1, 2], [3]]")
    with pytest.raises(CliError, match="non-empty JSON list"):
        parse_query_vector("[]")
    assert parse_filter_option(None) is None
    assert parse_filter_option('{"must": []}') == {"must": []}
    with pytest.raises(CliError, match="--filter: not valid JSON"):
        parse_filter_option("{must: []}")


def test_results_render_one_table_per_query() -> None:
    hits = [{"id": 3, "score": 0.5, "payload": {"a": 1}}]
    assert render_results([hits], True).splitlines()[1].split() == ["1", "3", "0.5000", '{"a":1}']
    text = render_results([hits, []], False)
    assert "query 0:" in text and "query 1:\nno hits" in text and "PAYLOAD" not in text
