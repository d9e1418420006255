"""The query profile recorder, its histogram folding and its Chrome trace form."""

from __future__ import annotations

import json
import time

import pytest

from vecstore.cluster.profile import (
    FOLD_EVERY,
    NO_PROFILE,
    STAGE_BUCKETS,
    Profile,
    StageTimes,
    trace_events,
)


def test_stages_are_recorded_in_order_with_offsets_from_the_origin() -> None:
    profile = Profile("router", origin=100.0)
    profile.add("parse", 100.0, 100.002)
    profile.add("scatter", 100.003, 100.010)
    profile.add("round_trip", 100.004, 100.009, where="shard 1")
    document = profile.to_dict()
    assert [s["name"] for s in document["stages"]] == ["parse", "scatter", "round_trip"]
    assert document["stages"][0] == {"name": "parse", "where": "router", "start_ms": 0.0, "ms": 2.0}
    assert document["stages"][2]["where"] == "shard 1"
    assert document["stages"][2]["start_ms"] == pytest.approx(4.0)
    assert document["total_ms"] == pytest.approx(10.0)
    assert document["where"] == "router"


def test_milliseconds_are_rounded_to_a_tenth_of_a_microsecond() -> None:
    profile = Profile("router", origin=0.0)
    profile.add("merge", 0.000_123_456_78, 0.000_123_456_78 + 0.001_234_567_8)
    [stage] = profile.to_dict()["stages"]
    assert stage["start_ms"] == 0.1235
    assert stage["ms"] == 1.2346
    assert profile.to_dict(total=0.25)["total_ms"] == 250.0


def test_a_stage_context_times_its_block() -> None:
    profile = Profile("shard 0")
    with profile.stage("plan"):
        time.sleep(0.002)
    with pytest.raises(ValueError, match="boom"), profile.stage("hnsw"):
        raise ValueError("boom")  # a failing stage is still recorded
    (plan, where, plan_start, plan_seconds), (hnsw, _, hnsw_start, _) = profile.stages
    assert (plan, hnsw) == ("plan", "hnsw")
    assert plan_seconds >= 0.002
    assert where == "shard 0"
    assert hnsw_start >= plan_start + plan_seconds


def test_no_profile_records_nothing() -> None:
    with NO_PROFILE.stage("plan"):
        pass
    NO_PROFILE.add("parse", 1.0, 2.0)
    NO_PROFILE.extend([("x", "router", 0.0, 1.0)])
    NO_PROFILE.graft({"total": 1.0, "where": "node a", "stages": [["a", "b", 0.0, 1.0]]}, 0, 1)
    assert NO_PROFILE.stages == []
    assert not NO_PROFILE.enabled
    assert not NO_PROFILE.remote


def test_a_remote_profile_is_centred_in_the_round_trip() -> None:
    node = Profile("node n1", origin=5.0)  # another process's clock: unrelated to ours
    node.add("queue", 5.0, 5.001)
    node.add("plan", 5.001, 5.003, where="shard 0")
    router = Profile("router", origin=0.0, remote=True)
    wire = json.loads(json.dumps(node.wire()))  # as it crosses the wire: lists, not tuples
    assert wire["total"] == pytest.approx(0.003)
    router.graft(wire, sent=1.0, answered=1.007)  # 7 ms round trip, 3 ms on the node
    by_name = {name: (where, start, seconds) for name, where, start, seconds in router.stages}
    assert by_name["handle"][0] == "node n1"
    assert by_name["handle"][1] == pytest.approx(1.002)  # (7 - 3) / 2 ms of network each way
    assert by_name["handle"][2] == pytest.approx(0.003)
    assert by_name["queue"][1] == pytest.approx(1.002)
    assert by_name["plan"][1] == pytest.approx(1.003)
    assert by_name["plan"][0] == "shard 0"


def test_a_remote_profile_longer_than_the_round_trip_starts_when_it_was_sent() -> None:
    router = Profile("router", origin=0.0)
    router.graft({"total": 0.009, "where": "node a", "stages": []}, sent=1.0, answered=1.005)
    assert router.stages[0][2] == pytest.approx(1.0)


def test_stage_times_bucket_like_prometheus() -> None:
    times = StageTimes(where="shard 0", also=frozenset({"round_trip"}))
    times.record(
        [
            ("plan", "shard 0", 0.0, STAGE_BUCKETS[0]),  # on a bound: counted in it (le)
            ("plan", "shard 0", 0.0, STAGE_BUCKETS[0] * 1.01),
            ("plan", "shard 0", 0.0, 100.0),  # past every bound: only +Inf
            ("hnsw", "shard 0", 0.0, 0.003),
            ("parse", "router", 0.0, 0.001),
            ("round_trip", "shard 1", 0.0, 0.004),
        ],
    )
    histograms = {h.name: h for h in times.histograms()}
    assert set(histograms) == {"plan", "hnsw", "round_trip"}
    plan = histograms["plan"]
    assert len(plan.cumulative) == len(STAGE_BUCKETS) + 1
    assert plan.cumulative[0] == 1
    assert plan.cumulative[1] == 2
    assert plan.cumulative[-2] == 2
    assert plan.cumulative[-1] == 3
    assert plan.total == pytest.approx(100.0 + STAGE_BUCKETS[0] * 2.01)
    hnsw = histograms["hnsw"]
    first = next(i for i, bound in enumerate(STAGE_BUCKETS) if bound >= 0.003)
    assert hnsw.cumulative[first - 1] == 0
    assert hnsw.cumulative[first] == 1


def test_stage_times_keep_counting_across_folds() -> None:
    times = StageTimes()
    for _ in range(FOLD_EVERY + 10):
        times.observe("merge", 0.0001)
    times.record([("merge", "router", 0.0, 0.0001)] * FOLD_EVERY)  # folds inside
    first = {h.name: h for h in times.histograms()}["merge"]
    assert first.cumulative[-1] == 2 * FOLD_EVERY + 10
    times.observe("merge", 1.0)
    again = {h.name: h for h in times.histograms()}["merge"]
    assert again.cumulative[-1] == 2 * FOLD_EVERY + 11
    assert again.total == pytest.approx((2 * FOLD_EVERY + 10) * 0.0001 + 1.0)


def test_trace_events_are_complete_events_on_one_track_per_place() -> None:
    profile = Profile("router", origin=0.0)
    profile.add("parse", 0.0, 0.001)
    profile.add("scatter", 0.001, 0.009)
    profile.add("round_trip", 0.0015, 0.0085, where="shard 10")
    profile.add("round_trip", 0.0015, 0.0080, where="shard 2")
    profile.add("plan", 0.003, 0.004, where="shard 2")
    profile.add("queue", 0.0025, 0.003, where="node n2")
    document = json.loads(json.dumps(profile.to_dict()))  # as it crosses the wire
    trace = trace_events(document)
    json.dumps(trace)  # loadable as JSON
    events = trace["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(complete[0])
    assert len(complete) == len(document["stages"]) + 1  # plus the whole search
    whole = next(e for e in complete if e["name"] == "search")
    assert whole["ts"] == 0 and whole["dur"] == pytest.approx(9000.0)
    names = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert list(names) == ["router", "shard 2", "shard 10", "node n2"]  # shards by number, then nodes
    plan = next(e for e in complete if e["name"] == "plan")
    assert plan["tid"] == names["shard 2"]
    assert plan["ts"] == pytest.approx(3000.0) and plan["dur"] == pytest.approx(1000.0)
    assert all(e["dur"] >= 0 for e in complete)
