"""The router's query profiler: which profile a search gets, the histograms, the slow-query log,
and the settings behind them (spec, environment)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from vecstore.cluster.profile import NO_PROFILE, Profile, StageTimes
from vecstore.cluster.spec import RouterSpec, SpecError, parse_spec
from vecstore.node.config import load_config
from vecstore.router.__main__ import router_from_env
from vecstore.router.metrics import RouterMetrics
from vecstore.router.profiler import QueryProfiler

SHARDS = [{"id": 0, "nodes": [{"id": "a", "raft": "127.0.0.1:7001", "http": "127.0.0.1:8001"}]}]


def profiler(**settings: Any) -> QueryProfiler:
    return QueryProfiler(RouterSpec(**settings), StageTimes(where="router", also=frozenset({"round_trip"})))


def finish(profiler: QueryProfiler, profile: Profile, asked: bool) -> dict[str, Any] | None:
    return profiler.finish(profile, asked, collection="docs", k=5, queries=1, filtered=True, api="native")


def test_defaults_time_stages_without_asking_the_nodes() -> None:
    plain = profiler()
    assert plain.slow_seconds is None
    profile = plain.start(asked=False)
    assert profile.enabled and not profile.remote
    asked = plain.start(asked=True)
    assert asked.enabled and asked.remote


def test_stage_timing_off_gives_the_null_profile_unless_asked() -> None:
    off = profiler(query_stages=False)
    assert off.start(asked=False) is NO_PROFILE
    assert off.start(asked=True).remote
    assert finish(off, NO_PROFILE, asked=False) is None


def test_finish_counts_the_routers_stages_and_answers_only_when_asked() -> None:
    plain = profiler()
    profile = plain.start(asked=False)
    profile.add("parse", profile.origin)
    profile.add("round_trip", profile.origin, where="shard 0")
    profile.add("plan", profile.origin, where="shard 0")  # a node reported it: its own histogram
    assert finish(plain, profile, asked=False) is None
    assert {h.name for h in plain.times.histograms()} == {"parse", "round_trip"}
    asked = plain.start(asked=True)
    asked.add("parse", asked.origin)
    document = finish(plain, asked, asked=True)
    assert document is not None
    assert [s["name"] for s in document["stages"]] == ["parse"]


def test_the_slow_query_log_writes_one_json_line_over_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    slow = profiler(slow_query_ms=5.0)
    fast = slow.start(asked=False)
    assert fast.remote  # the nodes send their stages: the log may need them
    with caplog.at_level(logging.WARNING, logger="vecstore.router.slow_queries"):
        finish(slow, fast, asked=False)
        assert caplog.records == []
        late = slow.start(asked=False)
        late.add("scatter", late.origin)
        time.sleep(0.006)
        assert finish(slow, late, asked=False) is None  # logged, not answered
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("slow query {")
    entry = json.loads(message.removeprefix("slow query "))
    assert entry["collection"] == "docs"
    assert entry["k"] == 5
    assert entry["filter"] is True
    assert entry["total_ms"] >= 5.0
    assert [s["name"] for s in entry["stages"]] == ["scatter"]


def test_threshold_zero_logs_every_search(caplog: pytest.LogCaptureFixture) -> None:
    every = profiler(slow_query_ms=0.0)
    with caplog.at_level(logging.WARNING, logger="vecstore.router.slow_queries"):
        finish(every, every.start(asked=False), asked=False)
    assert len(caplog.records) == 1


def test_settings_from_the_spec_and_the_environment() -> None:
    spec = parse_spec({"shards": SHARDS, "router": {"slow_query_ms": 250, "query_stages": False}})
    assert spec.router.slow_query_ms == 250.0
    assert spec.router.query_stages is False
    with pytest.raises(SpecError, match="true or false"):
        parse_spec({"shards": SHARDS, "router": {"query_stages": "false"}})
    with pytest.raises(SpecError, match="slow_query_ms"):
        RouterSpec(slow_query_ms=float("nan"))
    router = router_from_env(RouterSpec(), {"VECSTORE_SLOW_QUERY_MS": "0", "VECSTORE_QUERY_STAGES": "0"})
    assert router.slow_query_ms == 0.0
    assert router.query_stages is False
    assert router_from_env(RouterSpec(), {"VECSTORE_QUERY_STAGES": "1"}).query_stages is True
    with pytest.raises(SpecError, match="VECSTORE_SLOW_QUERY_MS"):
        router_from_env(RouterSpec(), {"VECSTORE_SLOW_QUERY_MS": "soon"})


def test_the_histogram_is_exposed_by_stage() -> None:
    metrics = RouterMetrics()
    metrics.query_stages.record([("scatter", "router", 0.0, 0.002), ("plan", "shard 0", 0.0, 0.001)])
    text = metrics.render().decode()
    assert "# TYPE vecstore_router_query_stage_seconds histogram" in text
    assert 'vecstore_router_query_stage_seconds_count{stage="scatter"} 1.0' in text
    assert 'vecstore_router_query_stage_seconds_bucket{le="0.0025",stage="scatter"} 1.0' in text
    assert 'vecstore_router_query_stage_seconds_bucket{le="0.001",stage="scatter"} 0.0' in text
    assert 'stage="plan"' not in text


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("1", True), ("0", False), ("off", False)])
def test_nodes_read_the_stage_switch_from_their_environment(
    value: str | None, expected: bool, tmp_path: Path
) -> None:
    env = {
        "VECSTORE_NODE_ID": "a",
        "VECSTORE_DATA_DIR": str(tmp_path),
        "VECSTORE_RAFT_ADDRESS": "127.0.0.1:7001",
        "VECSTORE_HTTP_ADDRESS": "127.0.0.1:8001",
    }
    if value is not None:
        env["VECSTORE_QUERY_STAGES"] = value
    assert load_config(None, env).query_stages is expected
