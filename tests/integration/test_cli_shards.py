"""`vecstore shards` and `vecstore node replace` driven as an operator would, against
`vecstore up`: add a shard (the supervisor starts its nodes), check the status, remove it
again (its nodes stop), replace a member, with the data intact and served through the
router throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli import UpProcess, alive, manifest, ok, wait_until, write_jsonl
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready


@pytest.mark.slow
def test_shards_add_status_remove_and_node_replace_under_vecstore_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    up = UpProcess(data_dir, tmp_path / "up.log", "--port", str(port), "--shards", "1", "--replicas", "3")
    try:
        wait_ready(readyz_url(url), 90)
        d = ("--data-dir", str(data_dir))
        ok("collections", "create", "docs", "--dim", "4", *d)
        rows = [{"id": i, "vector": [1.0, i, 0.5, 2.0], "payload": {"i": i}} for i in range(300)]
        ok("points", "upsert", "docs", "--file", str(write_jsonl(tmp_path / "docs.jsonl", rows)), *d)

        before = ok("shards", "status", *d)
        assert before["epoch"] == 0 and [s["shard"] for s in before["shards"]] == [0]
        assert ok("shards", "pin", *d) == {"epoch": 0, "shards": [0]}  # idempotent
        assert ok("shards", "pin", *d) == {"epoch": 0, "shards": [0]}

        grown = ok("shards", "add", "--no-progress", *d)
        assert grown == {"epoch": 1, "shards": [0, 1]}
        nodes = [p for p in manifest(data_dir)["processes"] if p["role"] == "node"]
        assert sorted(p["name"] for p in nodes if p["shard"] == 1) == ["s1-n0", "s1-n1", "s1-n2"]
        status = ok("shards", "status", *d)
        assert status["epoch"] == 1 and status["move"] is None
        assert [s["shard"] for s in status["shards"]] == [0, 1]
        rows = ok("status", *d)
        assert sorted({row["shard"] for row in rows}) == [0, 1]
        assert all(row["role"] in ("leader", "follower") for row in rows)
        assert {row["epoch"] for row in rows} == {1} and {row["move"] for row in rows} == {None}
        assert ok("collections", "info", "docs", *d)["points"] == 300
        every = ok("search", "docs", "--vector", "[1, 0, 0, 0]", "--k", "1000", "--exact", *d)
        ids = [hit["id"] for hit in every["results"][0]]
        assert sorted(ids) == list(range(300))  # each point once, from the shard that owns it

        shrunk = ok("shards", "remove", "1", "--no-progress", *d)
        assert shrunk == {"epoch": 2, "shards": [0]}
        s1 = [p for p in nodes if p["shard"] == 1]
        wait_until(lambda: not any(alive(p["pid"]) for p in s1), 30, "shard 1's nodes to stop")
        assert all(p["shard"] == 0 for p in manifest(data_dir)["processes"] if p["role"] == "node")
        assert ok("collections", "info", "docs", *d)["points"] == 300
        every = ok("search", "docs", "--vector", "[1, 0, 0, 0]", "--k", "1000", "--exact", *d)
        assert sorted(hit["id"] for hit in every["results"][0]) == list(range(300))

        old = next(p for p in manifest(data_dir)["processes"] if p["name"] == "s0-n1")
        replaced = ok("node", "replace", "s0-n1", "--no-progress", *d)
        assert replaced == {"epoch": 3, "shard": 0, "members": ["s0-n0", "s0-n2", "s0-n3"]}
        wait_until(lambda: not alive(old["pid"]), 30, "s0-n1 to stop")
        names = sorted(p["name"] for p in manifest(data_dir)["processes"] if p["role"] == "node")
        assert names == ["s0-n0", "s0-n2", "s0-n3"]
        rows = ok("status", *d)
        assert sorted(row["node"] for row in rows) == names
        assert sum(row["role"] == "leader" for row in rows) == 1
        assert ok("collections", "info", "docs", *d)["points"] == 300
        assert up.terminate() == 0
    finally:
        up.kill_all()
