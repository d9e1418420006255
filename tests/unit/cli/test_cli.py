"""The CLI's pure parts: tables, router resolution, status rows, and failures that need
no cluster (bad flags, bad files), run in process through `main`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest

from vecstore.cli.collections import collection_row, schema_body
from vecstore.cli.main import cli, main
from vecstore.cli.output import CliError, cell, format_fields, format_table
from vecstore.cli.status import render, shard_summaries, status_rows
from vecstore.cli.target import read_manifest, resolve_router


def test_table_aligns_columns_and_marks_missing_values() -> None:
    rows: list[dict[str, object]] = [
        {"name": "docs", "points": 12},
        {"name": "a", "points": None, "ok": True},
    ]
    assert format_table(rows, ["name", "points", "ok"]).splitlines() == [
        "NAME  POINTS  OK",
        "docs  12      -",
        "a     -       yes",
    ]
    assert format_table([], ["name"]) == "NAME"


def test_cells_shorten_and_render_structures() -> None:
    assert cell(0.123456) == "0.1235"
    assert cell({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert cell("x" * 100, width=10) == "x" * 9 + "…"
    assert format_fields({"name": "docs", "dimension": 4}) == "name       docs\ndimension  4"


def test_router_resolution_order(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "cluster.json").write_text(json.dumps({"router": "http://127.0.0.1:7001"}))
    env = {"VECSTORE_ROUTER": "127.0.0.1:7002"}
    assert resolve_router("h:1", data_dir, env, cwd=tmp_path) == "http://h:1"
    assert resolve_router(None, data_dir, env, cwd=tmp_path) == "http://127.0.0.1:7001"
    assert resolve_router(None, None, env, cwd=tmp_path) == "http://127.0.0.1:7002"
    assert resolve_router(None, None, {}, cwd=tmp_path) == "http://127.0.0.1:6333"
    default_dir = tmp_path / "vecstore-data"
    default_dir.mkdir()
    (default_dir / "cluster.json").write_text(json.dumps({"router": "http://127.0.0.1:7003"}))
    assert resolve_router(None, None, {}, cwd=tmp_path) == "http://127.0.0.1:7003"


def test_a_missing_or_foreign_manifest_is_explained(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="is `vecstore up --data-dir"):
        read_manifest(tmp_path)
    (tmp_path / "cluster.json").write_text("[]")
    with pytest.raises(CliError, match="not written by `vecstore up`"):
        read_manifest(tmp_path)


def node_status(
    shard: int, node: str, role: str, commit: int, applied: int, digest: str
) -> dict[str, object]:
    return {
        "shard_id": shard,
        "node_id": node,
        "http_address": f"h:{node}",
        "role": role,
        "term": 2,
        "commit_index": commit,
        "last_applied": applied,
        "indexing_lag": 0,
        "ready": True,
        "digest": digest,
        "collections": {"docs": {"points": 5}, "other": {"points": 1}},
    }


def test_status_rows_compute_commit_lag_and_mark_unreachable_nodes() -> None:
    statuses = [
        node_status(1, "s1-n0", "leader", 10, 10, "d1"),
        node_status(0, "s0-n1", "follower", 8, 7, "d0"),
        node_status(0, "s0-n0", "leader", 9, 9, "d0"),
        {"shard_id": 1, "node_id": "s1-n1", "http_address": "h:x", "role": "unreachable", "error": "refused"},
    ]
    rows = status_rows(statuses)
    assert [(r["node"], r["commit_lag"]) for r in rows] == [
        ("s0-n0", 0),
        ("s0-n1", 2),
        ("s1-n0", 0),
        ("s1-n1", None),
    ]
    assert rows[0]["points"] == 6
    assert rows[3]["health"] == "unreachable" and rows[3]["ready"] is False
    assert shard_summaries(rows) == [
        "shard 0: leader s0-n0, 2/2 ready, digests agree",
        "shard 1: leader s1-n0, 1/2 ready, digests agree",
    ]
    assert "COMMIT_LAG" in render(rows).splitlines()[0]


def test_collection_rows_flatten_the_schema() -> None:
    schema = schema_body("docs", 4, "l2", "f16", 8, 100, 50)
    assert schema["hnsw"] == {"connectivity": 8, "expansion_add": 100, "expansion_search": 50}
    row = collection_row({"schema": schema, "points": 3, "segments": 1, "indexing_lag": 0, "tombstones": 0})
    assert (row["name"], row["metric"], row["m"], row["ef_construct"], row["ef"]) == (
        "docs",
        "l2",
        8,
        100,
        50,
    )


# ---- failures that need no cluster, through the real entry point -----------------------------------


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_error(err: str, expected: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]


UNUSED_ROUTER = ("--router", "http://127.0.0.1:9")


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_main(capsys, "points", "upsert", "docs", "--file", str(tmp_path / "no.jsonl"))
    assert code == 2
    assert_error(err, "does not exist")
    code, _, err = run_main(capsys, "collections", "create", "docs")
    assert code == 2
    assert_error(err, "give either --dim N (one unnamed vector) or --vectors")
    code, _, err = run_main(capsys, "search", "docs", "--consistency", "sometimes")
    assert code == 2
    assert_error(err, "'sometimes' is not one of")


def test_bad_flags_fail_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(
        capsys, "search", "docs", "--vector", "[1, 2]", "--filter", "{bad", *UNUSED_ROUTER
    )
    assert code == 1
    assert_error(err, "--filter: not valid JSON (Expecting property name")
    code, _, err = run_main(capsys, "search", "docs", "--vector", "[1]", "--filter", "[1]", *UNUSED_ROUTER)
    assert_error(err, "--filter must be a JSON object")
    code, _, err = run_main(capsys, "search", "docs", "--vector", '["a"]', *UNUSED_ROUTER)
    assert code == 1
    assert_error(err, "must be a list of numbers")
    code, _, err = run_main(capsys, "search", "docs", *UNUSED_ROUTER)
    assert_error(err, "exactly one of --vector")
    code, _, err = run_main(capsys, "collections", "drop", "docs", *UNUSED_ROUTER)
    assert code == 1
    assert_error(err, "pass --yes to confirm")


def test_mismatched_payload_file_is_refused_before_upserting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    np.save(tmp_path / "x.npy", np.ones((3, 2), dtype=np.float32))
    (tmp_path / "p.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    code, _, err = run_main(
        capsys,
        "points",
        "upsert",
        "docs",
        "--vectors",
        str(tmp_path / "x.npy"),
        "--file",
        str(tmp_path / "p.jsonl"),
    )
    assert code == 1
    assert_error(err, "exactly one of --file")


def test_passthrough_commands_do_not_parse_their_arguments() -> None:
    for path in (["node", "run"], ["router", "run"], ["ingest"]):
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        assert command.add_help_option is False
        assert command.context_settings["ignore_unknown_options"] is True
