"""The audit file: JSON lines, 0600, nothing when off."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from aiohttp import web

from vecstore.router.audit import AuditLog, points_in


def test_records_are_json_lines_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    audit = AuditLog(str(path))
    audit.record(who="admin:abc", method="PUT", path="/v1/collections/a", status=200)
    audit.record(who="anonymous", method="POST", path="/x", status=415, error="unsupported_media_type")
    audit.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["status"] for line in lines] == [200, 415]
    assert lines[1]["error"] == "unsupported_media_type"
    assert all(line["time"].endswith("Z") for line in lines)


def test_off_when_no_path(tmp_path: Path) -> None:
    audit = AuditLog("")
    assert not audit.enabled
    audit.record(who="x")  # nothing, no error
    assert list(tmp_path.iterdir()) == []


def test_the_point_count_comes_from_a_write_answer() -> None:
    assert points_in({"status": "ok", "upserted": 3}) == 3
    assert points_in({"status": "ok", "deleted": 2, "updated": 1}) == 3
    assert points_in(web.json_response({"status": "ok", "updated": 5})) == 5
    assert points_in(web.json_response({"status": "ok", "created": True})) is None
    assert points_in(web.json_response({"status": "error", "code": "x"}, status=400)) is None
    assert points_in(web.Response(body=b"not json", content_type="application/json")) is None
    assert points_in(None) is None
