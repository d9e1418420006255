"""The query profiler on real processes: `profile: true` (native), `?profile=true` (Qdrant),
`vecstore search --profile/--trace`, the stage histograms and the slow-query log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.conftest import started_cluster
from vecstore.launcher.local_cluster import LocalCluster


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request: (status, decoded answer; text for a non-JSON one)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as err:
        status, raw, kind = err.code, err.read(), err.headers.get_content_type()
    return status, json.loads(raw) if kind == "application/json" else raw.decode()


def ok(method: str, url: str, body: Any = None) -> Any:
    status, answer = http(method, url, body)
    assert status == 200, answer
    return answer


DIM = 8
POINTS = 400
ROUTER_STAGES = {"parse", "route", "queue", "scatter", "merge", "serialise"}
SHARD_STAGES = {"plan", "hnsw", "exact", "exact_tail", "filter", "rescore", "fetch"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """2 shards x 3 replicas, the slow-query log at 0 ms (every search is logged)."""
    directory = tmp_path_factory.mktemp("profiler")
    yield from started_cluster(directory, shards=2, router_env={"VECSTORE_SLOW_QUERY_MS": "0"})


@pytest.fixture(scope="module")
def loaded(cluster: LocalCluster) -> LocalCluster:
    url = cluster.router_url
    ok("PUT", f"{url}/v1/collections/docs", {"dimension": DIM})
    vectors = np.random.default_rng(5).normal(size=(POINTS, DIM)).astype(np.float32)
    points = [{"id": i, "vector": vectors[i].tolist(), "payload": {"n": i}} for i in range(POINTS)]
    ok("PUT", f"{url}/v1/collections/docs/points", {"points": points})
    return cluster


def search(url: str, **body: Any) -> dict[str, Any]:
    document: dict[str, Any] = ok(
        "POST", f"{url}/v1/collections/docs/search", {"vector": [0.5] * DIM, "k": 5, **body}
    )
    return document


def by_place(profile: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    places: dict[str, list[dict[str, Any]]] = {}
    for stage in profile["stages"]:
        places.setdefault(stage["where"], []).append(stage)
    return places


def check_profile(profile: dict[str, Any], shards: int = 2) -> None:
    """Stages from the router, each shard and the node that answered for it, consistent in time."""
    total = profile["total_ms"]
    assert total > 0
    places = by_place(profile)
    assert {s["name"] for s in places["router"]} >= ROUTER_STAGES
    for stage in profile["stages"]:
        assert stage["ms"] >= 0, stage
        assert -0.001 <= stage["start_ms"] <= total + 0.001, stage
        assert stage["start_ms"] + stage["ms"] <= total + 0.001, stage
    router_sum = sum(s["ms"] for s in places["router"] if s["name"] in ROUTER_STAGES)
    assert router_sum <= total + 0.001
    scatter = next(s for s in places["router"] if s["name"] == "scatter")
    nodes = [place for place in places if place.startswith("node ")]
    assert len(nodes) == shards  # one replica of each shard answered
    for shard in range(shards):
        stages = places[f"shard {shard}"]
        names = [s["name"] for s in stages]
        assert names.count("round_trip") == 1
        assert "plan" in names and "fetch" in names
        assert set(names) <= SHARD_STAGES | {"round_trip"}
        round_trip = next(s for s in stages if s["name"] == "round_trip")
        assert round_trip["ms"] <= scatter["ms"] + 0.001
        core = sum(s["ms"] for s in stages if s["name"] != "round_trip")
        assert core <= round_trip["ms"] + 0.001
    for node in nodes:
        handle = next(s for s in places[node] if s["name"] == "handle")
        assert handle["ms"] <= total  # the router's total covers every node's
        assert {s["name"] for s in places[node]} >= {"handle", "queue", "serialise"}
        inside = sum(s["ms"] for s in places[node] if s["name"] != "handle")
        assert inside <= handle["ms"] + 0.001


def test_native_search_profile(loaded: LocalCluster) -> None:
    url = loaded.router_url
    plain = search(url)
    assert "profile" not in plain
    assert "profile" not in search(url, profile=False)
    status, refused = http(
        "POST", f"{url}/v1/collections/docs/search", {"vector": [0.5] * DIM, "profile": "yes"}
    )
    assert status == 400
    assert "profile must be true or false" in refused["error"]
    answer = search(url, profile=True)
    assert [h["id"] for h in answer["result"]] == [h["id"] for h in plain["result"]]
    check_profile(answer["profile"])
    batch = ok(
        "POST",
        f"{url}/v1/collections/docs/search/batch",
        {"searches": [{"vector": [0.1] * DIM}, {"vector": [0.2] * DIM, "k": 3}], "profile": True},
    )
    assert len(batch["results"]) == 2
    assert sum(1 for s in batch["profile"]["stages"] if s["name"] == "scatter") == 2  # two option groups
    filtered = search(url, profile=True, filter={"must": [{"key": "n", "range": {"lt": 50}}]})
    assert {s["name"] for s in by_place(filtered["profile"])["shard 0"]} >= {"plan", "exact"}


def test_qdrant_profile_parameter(loaded: LocalCluster) -> None:
    url = loaded.router_url
    body = {"vector": [0.5] * DIM, "limit": 5}
    plain = ok("POST", f"{url}/collections/docs/points/search", body)
    assert "profile" not in plain
    answer = ok("POST", f"{url}/collections/docs/points/search?profile=true", body)
    assert answer["status"] == "ok"
    assert [p["id"] for p in answer["result"]] == [p["id"] for p in plain["result"]]
    check_profile(answer["profile"])
    query = {"query": [0.5] * DIM, "limit": 5}
    queried = ok("POST", f"{url}/collections/docs/points/query?profile=true", query)
    check_profile(queried["profile"])
    assert "profile" not in ok("POST", f"{url}/collections/docs/points/search?profile=false", body)
    status, refused = http("POST", f"{url}/collections/docs/points/search?profile=yes", body)
    assert status == 400
    assert "profile must be true or false" in refused["status"]["error"]


def vecstore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vecstore.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_cli_profile_and_trace(loaded: LocalCluster, tmp_path: Path) -> None:
    r = ("--router", loaded.router_url)
    vector = json.dumps([0.5] * DIM)
    printed = vecstore("search", "docs", "--vector", vector, "--k", "3", "--profile", *r)
    assert printed.returncode == 0, printed.stderr
    assert "profile:" in printed.stdout and "ms in the router" in printed.stdout
    for header in ("WHERE", "STAGE", "START_MS", "MS"):
        assert header in printed.stdout
    for stage in ("parse", "scatter", "round_trip", "plan", "hnsw", "merge"):
        assert f" {stage} " in printed.stdout
    as_json = vecstore("search", "docs", "--vector", vector, "--profile", "--json", *r)
    assert as_json.returncode == 0, as_json.stderr
    check_profile(json.loads(as_json.stdout)["profile"])
    trace = tmp_path / "search.trace.json"
    traced = vecstore("search", "docs", "--vector", vector, "--trace", str(trace), *r)
    assert traced.returncode == 0, traced.stderr
    assert "profile:" not in traced.stdout  # --trace alone writes the file, prints only hits
    events = json.loads(trace.read_text())["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert {"search docs", "scatter", "round_trip", "plan"} <= {e["name"] for e in complete}
    assert all({"name", "ph", "ts", "dur", "pid", "tid"} <= set(e) and e["dur"] >= 0 for e in complete)
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {"router", "shard 0", "shard 1"} <= tracks


def stage_counts(text: str, metric: str) -> dict[str, float]:
    counts = {}
    for line in text.splitlines():
        if line.startswith(f"{metric}_count{{"):
            stage = line.split('stage="', 1)[1].split('"', 1)[0]
            counts[stage] = float(line.rsplit(" ", 1)[1])
    return counts


def test_stage_histograms_grow(loaded: LocalCluster) -> None:
    url = loaded.router_url
    search(url)
    before = stage_counts(ok("GET", f"{url}/metrics"), "vecstore_router_query_stage_seconds")
    assert set(before) >= ROUTER_STAGES | {"round_trip"}
    search(url)
    search(url, profile=True)
    after = stage_counts(ok("GET", f"{url}/metrics"), "vecstore_router_query_stage_seconds")
    assert after["scatter"] == before["scatter"] + 2
    assert after["round_trip"] == before["round_trip"] + 4  # two shards each time
    node_stages: dict[str, float] = {}
    text = ""
    for address in loaded.node_addresses():
        text = ok("GET", f"http://{address}/metrics")
        for stage, count in stage_counts(text, "vecstore_node_query_stage_seconds").items():
            node_stages[stage] = node_stages.get(stage, 0) + count
    assert node_stages["plan"] >= 3  # every search so far reached a node of each shard
    assert node_stages["queue"] >= 3
    assert "# TYPE vecstore_node_query_stage_seconds histogram" in text


def slow_lines(cluster: LocalCluster) -> list[dict[str, Any]]:
    log = (cluster.data_dir / "logs" / "router-0.log").read_text()
    return [
        json.loads(line.split("slow query ", 1)[1]) for line in log.splitlines() if "slow query {" in line
    ]


def wait_for_lines(cluster: LocalCluster, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(lines := slow_lines(cluster)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return lines


def test_slow_query_log_at_zero_logs_every_search(loaded: LocalCluster) -> None:
    before = len(slow_lines(loaded))
    marked = [0.987654321] * DIM
    search(loaded.router_url, vector=marked, filter={"must": [{"key": "n", "range": {"gte": 0}}]})
    lines = wait_for_lines(loaded, before + 1)
    entry = lines[-1]
    assert entry["collection"] == "docs"
    assert entry["api"] == "native"
    assert entry["k"] == 5
    assert entry["queries"] == 1
    assert entry["filter"] is True
    assert entry["total_ms"] > 0
    places = {s["where"] for s in entry["stages"]}
    assert {"router", "shard 0", "shard 1"} <= places  # nodes send their stages for the log
    assert "0.98765" not in json.dumps(entry)  # never the query vector


def test_no_slow_query_log_without_a_threshold(tmp_path: Path) -> None:
    for cluster in started_cluster(tmp_path / "quiet", shards=1, replicas=1):
        url = cluster.router_url
        ok("PUT", f"{url}/v1/collections/docs", {"dimension": DIM})
        points = [{"id": 1, "vector": [0.5] * DIM}]
        ok("PUT", f"{url}/v1/collections/docs/points", {"points": points})
        assert search(url)["result"][0]["id"] == 1
        check_profile(search(url, profile=True)["profile"], shards=1)
        time.sleep(0.5)
        assert slow_lines(cluster) == []
