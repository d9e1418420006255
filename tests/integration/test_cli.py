"""The `vecstore` CLI driven as a user drives it: subprocesses against a real cluster.

Covers collections, points from JSONL and .npy, search with filters, status, the logical
snapshot round trip, clear errors on bad input, and `vecstore up` itself: supervision,
clean shutdown, and a restart on the same data dir that brings the data back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.conftest import TEST_ENV
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready

CLI = [sys.executable, "-m", "vecstore.cli.main"]


def vecstore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One CLI call, stdin closed (not a tty), output captured."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def ok(*args: str) -> Any:
    """A successful call's --json answer."""
    result = vecstore(*args, "--json")
    assert result.returncode == 0, f"vecstore {' '.join(args)}: {result.stderr}"
    return json.loads(result.stdout)


def fails(*args: str, expect: str, code: int = 1) -> str:
    """A failing call: the exit status, and a one-line `error: ...` naming the problem."""
    result = vecstore(*args)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    assert expect in last, last
    return last


def unit_rows(count: int, dim: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    normalized: np.ndarray[Any, np.dtype[np.float32]] = vectors / np.linalg.norm(
        vectors, axis=1, keepdims=True
    )
    return normalized


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_collections_points_search_status_snapshot_and_errors(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    """One cluster, the way an operator goes: collections, loading, searching, status,
    backup and restore, and the mistakes people make on the way."""
    r = ("--router", local_cluster.router_url)
    check_collections(r)
    vectors = check_points_and_search(r, tmp_path)
    check_status(r)
    check_bad_input(r, tmp_path, vectors[0])
    check_snapshot(r, tmp_path)
    check_named_vectors(r, tmp_path)
    assert ok("collections", "drop", "docs", "--yes", *r)["dropped"] is True
    assert [c["name"] for c in ok("collections", "list", *r)] == ["tags"]
    fails("collections", "drop", "docs", "--yes", *r, expect="collection 'docs' does not exist")


DIM = 8


def check_collections(r: tuple[str, str]) -> None:
    created = ok("collections", "create", "docs", "--dim", str(DIM), "--m", "12", *r)
    assert created["created"] is True
    assert created["schema"]["hnsw"]["connectivity"] == 12
    assert ok("collections", "create", "docs", "--dim", str(DIM), "--m", "12", *r)["created"] is False
    fails("collections", "create", "docs", "--dim", "9", *r, expect="different schema")
    listed = ok("collections", "list", *r)
    assert [(c["name"], c["dimension"], c["metric"], c["m"]) for c in listed] == [("docs", DIM, "cosine", 12)]


def check_points_and_search(r: tuple[str, str], tmp_path: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    # 200 points from JSONL (ids 0..199), 300 from .npy with payloads (ids 1000..1299)
    vectors = unit_rows(500, DIM, seed=1)
    colors = ["red", "blue"]
    rows = [
        {"id": i, "vector": vectors[i].tolist(), "payload": {"n": i, "color": colors[i % 2]}}
        for i in range(200)
    ]
    jsonl = write_jsonl(tmp_path / "points.jsonl", rows)
    assert ok("points", "upsert", "docs", "--file", str(jsonl), "--batch-size", "64", *r)["upserted"] == 200
    np.save(tmp_path / "rows.npy", vectors[200:])
    payloads = write_jsonl(
        tmp_path / "rows.jsonl", [{"n": i, "color": colors[i % 2]} for i in range(200, 500)]
    )
    npy = ("--vectors", str(tmp_path / "rows.npy"), "--payloads", str(payloads), "--start-id", "1000")
    assert ok("points", "upsert", "docs", *npy, *r)["upserted"] == 300
    assert ok("collections", "info", "docs", *r)["points"] == 500

    # an exact filtered search agrees with brute force over the points the filter allows
    ids = np.array(list(range(200)) + list(range(1000, 1300)))
    allowed = np.array([(i % 2 == 0) and i < 300 for i in range(500)])  # red and n < 300
    query = unit_rows(1, DIM, seed=2)[0]
    condition = {"must": [{"key": "color", "match": {"value": "red"}}, {"key": "n", "range": {"lt": 300}}]}
    search = ("search", "docs", "--vector", json.dumps(query.tolist()), "--k", "7")
    found = ok(*search, "--exact", "--filter", json.dumps(condition), "--consistency", "strong", *r)
    hits = found["results"][0]
    expected = ids[allowed][np.argsort(-(vectors @ query)[allowed])[:7]]
    assert [h["id"] for h in hits] == expected.tolist()
    assert all(h["payload"]["color"] == "red" and h["payload"]["n"] < 300 for h in hits)

    np.save(tmp_path / "queries.npy", unit_rows(3, DIM, seed=3))
    batch = ok("search", "docs", "--vector-file", str(tmp_path / "queries.npy"), "--k", "4", *r)
    assert [len(hits) for hits in batch["results"]] == [4, 4, 4]
    table = vecstore(*search, *r)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["RANK", "ID", "SCORE", "PAYLOAD"]
    return vectors


def check_named_vectors(r: tuple[str, str], tmp_path: Path) -> None:
    """A collection of named vectors, created, loaded from JSONL and searched by name."""
    spec = {"title": {"dimension": 4}, "body": {"dimension": 3, "metric": "l2"}}
    assert ok("collections", "create", "named", "--vectors", json.dumps(spec), *r)["created"] is True
    listed = {c["name"]: c for c in ok("collections", "list", *r)}
    assert listed["named"]["dimension"] == "body:3 title:4"
    body = unit_rows(30, 3, seed=9)
    rows = [
        {
            "id": i,
            "vector": {"title": [1.0, 0.0, 0.0, float(i)], **({"body": body[i].tolist()} if i % 3 else {})},
        }
        for i in range(30)
    ]
    upserted = ok("points", "upsert", "named", "--file", str(write_jsonl(tmp_path / "named.jsonl", rows)), *r)
    assert upserted["upserted"] == 30
    query = ("--vector", json.dumps(body[4].tolist()), "--k", "3", "--exact", "--consistency", "strong")
    hits = ok("search", "named", *query, "--using", "body", *r)["results"][0]
    having = [i for i in range(30) if i % 3]
    nearest = sorted(having, key=lambda i: float(((body[i] - body[4]) ** 2).sum()))[:3]
    assert [h["id"] for h in hits] == nearest
    fails("search", "named", *query, *r, expect="say which with --using NAME")
    plans = ok(
        "search", "named", "--explain", "--using", "body", "--filter", '{"must": [{"has_id": [1, 2]}]}', *r
    )
    assert sorted(p["shard"] for p in plans) == [0, 1] and {p["plan"] for p in plans} == {"exact"}
    assert sum(p["live_points"] for p in plans) == 20  # the points that have a body vector
    fails("search", "named", *query, "--using", "title", *r, expect="expects 4")
    bad = write_jsonl(tmp_path / "bad-named.jsonl", [{"id": 1, "vector": {"sound": [1.0]}}])
    fails("points", "upsert", "named", "--file", str(bad), *r, expect="no vector named 'sound'")
    assert ok("collections", "drop", "named", "--yes", *r)["dropped"] is True


def check_status(r: tuple[str, str]) -> None:
    rows = ok("status", *r)
    assert len(rows) == 6
    columns = {"shard", "node", "role", "term", "commit", "applied", "commit_lag", "indexing_lag"}
    assert columns | {"points", "health", "ready", "digest"} <= set(rows[0])
    for shard in (0, 1):
        members = [row for row in rows if row["shard"] == shard]
        assert sorted(m["role"] for m in members) == ["follower", "follower", "leader"]
    assert all(row["health"] == "ok" and isinstance(row["commit_lag"], int) for row in rows)
    assert sum(row["points"] for row in rows if row["role"] == "leader") == 500
    human = vecstore("status", *r)
    assert human.returncode == 0, human.stderr
    assert "shard 0: leader" in human.stdout and "COMMIT_LAG" in human.stdout


def check_bad_input(r: tuple[str, str], tmp_path: Path, vector: np.ndarray[Any, Any]) -> None:
    """Non-zero exit and one line that says what was wrong."""
    missing = str(tmp_path / "missing.jsonl")
    fails("points", "upsert", "docs", "--file", missing, *r, expect="does not exist", code=2)
    wrong = write_jsonl(
        tmp_path / "wrong.jsonl", [{"id": 1, "vector": [0.5] * DIM}, {"id": 2, "vector": [1.0]}]
    )
    last = fails(
        "points", "upsert", "docs", "--file", str(wrong), *r, expect="line 2: vector has 1 dimensions"
    )
    assert "expects 8" in last
    np.save(tmp_path / "narrow.npy", np.ones((3, DIM - 1), dtype=np.float32))
    fails("points", "upsert", "docs", "--vectors", str(tmp_path / "narrow.npy"), *r, expect="7 dimensions")
    query = ("--vector", json.dumps(vector.tolist()))
    fails("search", "docs", "--vector", "[1, 2]", *r, expect="query vector has 2 dimensions")
    fails("search", "docs", *query, "--filter", "{color: red}", *r, expect="--filter: not valid JSON")
    fails("search", "docs", *query, "--filter", '{"must": [{"key": "n"}]}', *r, expect="condition on 'n'")
    fails("search", "nope", *query, *r, expect="collection 'nope' does not exist")
    fails("collections", "info", "nope", *r, expect="collection 'nope' does not exist")


def check_snapshot(r: tuple[str, str], tmp_path: Path) -> None:
    # a second collection with another metric and dtype, and UUID ids
    ok("collections", "create", "tags", "--dim", "3", "--metric", "l2", "--dtype", "f16", *r)
    tag_rows = [
        {"id": f"00000000-0000-0000-0000-{i:012d}", "vector": [i, 1.0, -i], "payload": {"tag": f"t{i}"}}
        for i in range(20)
    ]
    ok("points", "upsert", "tags", "--file", str(write_jsonl(tmp_path / "tags.jsonl", tag_rows)), *r)
    queries = json.dumps(unit_rows(3, DIM, seed=5).tolist())
    odd = '{"must": [{"key": "color", "match": {"value": "blue"}}]}'
    question = ("search", "docs", "--vector", queries, "--k", "10", "--exact", "--filter", odd, *r)
    before = ok(*question)["results"]

    backup = tmp_path / "backup.vsb"
    made = ok("snapshot", "create", "--out", str(backup), "--page-size", "128", *r)
    assert made["collections"] == {"docs": 500, "tags": 20}
    assert made["bytes"] == backup.stat().st_size

    ok("collections", "drop", "docs", "--yes", *r)
    restored = ok("snapshot", "restore", "--file", str(backup), *r)
    assert restored["collections"] == {"docs": 500, "tags": 20}
    info = ok("collections", "info", "docs", *r)
    assert (info["points"], info["metric"], info["m"]) == (500, "cosine", 12)
    after = ok(*question)["results"]
    assert [[(h["id"], h["payload"]) for h in hits] for hits in after] == [
        [(h["id"], h["payload"]) for h in hits] for hits in before
    ]

    # a collection in the way with another schema is refused unless --force replaces it
    ok("collections", "drop", "tags", "--yes", *r)
    ok("collections", "create", "tags", "--dim", "5", *r)
    fails("snapshot", "restore", "--file", str(backup), *r, expect="tags exist with a different schema")
    ok("snapshot", "restore", "--file", str(backup), "--force", *r)
    tags = ok("collections", "info", "tags", *r)
    assert (tags["dimension"], tags["metric"], tags["dtype"], tags["points"]) == (3, "l2", "f16", 20)
    nearest = ok("search", "tags", "--vector", "[7, 1, -7]", "--k", "1", *r)["results"][0][0]
    assert nearest["id"] == "00000000-0000-0000-0000-000000000007" and nearest["payload"] == {"tag": "t7"}

    data = backup.read_bytes()
    (tmp_path / "cut.vsb").write_bytes(data[: len(data) // 2])
    fails("snapshot", "restore", "--file", str(tmp_path / "cut.vsb"), *r, expect="truncated")


# ---- vecstore up -------------------------------------------------------------------------


def manifest(data_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((data_dir / "cluster.json").read_text())
    return loaded


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class UpProcess:
    """`vecstore up` as a subprocess in its own session (so a failing test can kill it all)."""

    def __init__(self, data_dir: Path, log: Path, *extra: str) -> None:
        env = {**os.environ, **TEST_ENV}
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [*CLI, "up", "--data-dir", str(data_dir), *extra],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill_all(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.mark.slow
def test_up_supervises_stops_cleanly_and_restarts_with_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    up = UpProcess(data_dir, tmp_path / "up.log", "--port", str(port), "--shards", "2", "--replicas", "3")
    seen_pids: set[int] = set()
    try:
        wait_ready(readyz_url(url), 90)
        processes = manifest(data_dir)["processes"]
        assert manifest(data_dir)["router"] == url
        assert manifest(data_dir)["supervisor_pid"] == up.process.pid
        nodes = [p for p in processes if p["role"] == "node"]
        assert sorted((p["shard"], p["name"]) for p in nodes) == [
            (s, f"s{s}-n{n}") for s in range(2) for n in range(3)
        ]
        assert [p["role"] for p in processes].count("router") == 1
        assert all(alive(p["pid"]) for p in processes)
        seen_pids |= {p["pid"] for p in processes}

        d = ("--data-dir", str(data_dir))
        ok("collections", "create", "kept", "--dim", "4", *d)
        rows = [{"id": i, "vector": [1.0, i, 0.5, 2.0], "payload": {"i": i}} for i in range(50)]
        ok("points", "upsert", "kept", "--file", str(write_jsonl(tmp_path / "kept.jsonl", rows)), *d)

        victim = nodes[1]
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted() -> bool:
            entry = next(p for p in manifest(data_dir)["processes"] if p["name"] == victim["name"])
            return bool(entry["pid"] != victim["pid"] and entry["restarts"] == 1 and alive(entry["pid"]))

        wait_until(restarted, 30, f"{victim['name']} to be restarted")
        processes = manifest(data_dir)["processes"]
        seen_pids |= {p["pid"] for p in processes}

        assert up.terminate() == 0
        assert not [pid for pid in seen_pids if alive(pid)], "a child of `vecstore up` outlived it"

        # again on the same data dir: same spec, same port, same data
        up = UpProcess(data_dir, tmp_path / "up.log")
        wait_ready(readyz_url(url), 90)
        wait_until(lambda: ok("collections", "info", "kept", *d)["points"] == 50, 30, "the data to come back")
        seen_pids |= {p["pid"] for p in manifest(data_dir)["processes"]}
        assert up.terminate() == 0
        assert not [pid for pid in seen_pids if alive(pid)]
    finally:
        up.kill_all()
