"""The logical backup file: records round-trip, damaged and foreign files are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest

from vecstore.cli.output import CliError
from vecstore.cli.snapshot import (
    header_record,
    points_of,
    points_record,
    read_records,
    scan,
    write_record,
)

SCHEMA = {"name": "docs", "dimension": 2, "metric": "l2", "dtype": "f32", "hnsw": {}}


def write_backup(path: Path, batches: list[list[dict[str, Any]]], end: bool = True) -> None:
    with path.open("wb") as stream:
        write_record(stream, header_record("http://r:1", "strong", [{"schema": SCHEMA, "points": 3}]))
        for batch in batches:
            write_record(stream, points_record("docs", 2, batch))
        if end:
            write_record(stream, {"kind": "end", "points": {"docs": sum(len(b) for b in batches)}})


POINTS: list[dict[str, Any]] = [
    {"id": 1, "vector": [0.5, 1.0], "payload": {"a": 1}},
    {"id": "00000000-0000-0000-0000-000000000002", "vector": [0.25, -3.0], "payload": None},
    {"id": 3, "vector": [1e-3, 2.0]},
]


def test_points_round_trip_through_a_record() -> None:
    record = points_record("docs", 2, POINTS)
    assert isinstance(record["vectors"], bytes) and len(record["vectors"]) == 3 * 2 * 4
    back = points_of(msgpack.unpackb(msgpack.packb(record, use_bin_type=True), raw=False))
    assert [p["id"] for p in back] == [1, "00000000-0000-0000-0000-000000000002", 3]
    assert back[0] == {"id": 1, "vector": [0.5, 1.0], "payload": {"a": 1}}
    assert "payload" not in back[1] and "payload" not in back[2]
    assert back[2]["vector"][0] == pytest.approx(1e-3, rel=1e-6)  # float32 precision


def test_a_complete_file_scans(tmp_path: Path) -> None:
    path = tmp_path / "b.vsb"
    write_backup(path, [POINTS[:2], POINTS[2:]])
    header = scan(path)
    assert header["collections"][0]["schema"] == SCHEMA
    assert header["counted"] == {"docs": 3}
    assert [r.get("kind") for r in read_records(path)] == [None, "points", "points", "end"]


def test_truncated_and_inconsistent_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.vsb"
    write_backup(path, [POINTS], end=False)
    with pytest.raises(CliError, match="truncated"):
        scan(path)
    write_backup(path, [POINTS])
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(CliError, match="truncated"):
        scan(path)
    with path.open("wb") as stream:
        write_record(stream, header_record("r", "strong", []))
        write_record(stream, points_record("docs", 2, POINTS))
        write_record(stream, {"kind": "end", "points": {"docs": 2}})
    with pytest.raises(CliError, match="damaged"):
        scan(path)
    bad = points_record("docs", 2, POINTS)
    bad["ids"] = bad["ids"][:2]
    with pytest.raises(CliError, match="inconsistent"):
        points_of(bad)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(msgpack.packb({"format": "something-else"}))
    with pytest.raises(CliError, match="not a VecStore logical backup"):
        scan(path)
    path.write_bytes(msgpack.packb({"format": "vecstore-logical-backup", "version": 99}))
    with pytest.raises(CliError, match="format version 99"):
        scan(path)
    path.write_bytes(b"")
    with pytest.raises(CliError, match="is empty"):
        scan(path)
    path.write_text("plain text")
    with pytest.raises(CliError, match="not a VecStore backup"):
        scan(path)
