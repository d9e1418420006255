"""`make bench` profiler section: what the query profiler costs a search.

Two local clusters of the same shape hold the same data: one with stage timing switched off
everywhere (`VECSTORE_QUERY_STAGES=0`: the baseline, as if there were no profiler), one as
shipped (every search's stages timed into the histograms). Three workloads take turns,
round after round, so that the drift of a shared machine hits them alike:

- baseline: the first cluster;
- profiling off: the second cluster, plain searches (what the histograms cost);
- profiling on: the second cluster, every search with `"profile": true`.

Halfway, both clusters restart with their roles swapped, so that a difference between the
two clusters themselves (placement, memory layout) cancels out. Each round runs one client
(p50 latency) and `--clients` concurrent ones (QPS), and reads the CPU time the cluster's
processes used (CPU per search: what a busy cluster pays, and the least disturbed by other
load on the machine). Ratios are medians over rounds of each round's ratio to its baseline.
A second table is the recorder's own cost per search, in process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from time import perf_counter
from typing import Any

import aiohttp
import numpy as np

from bench.dataset import ClusteredData, make_clustered
from bench.output import publish
from bench.router import _load, _wait
from vecstore.cluster.profile import NO_PROFILE, Profile, StageTimes
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports

K = 10
WORKLOADS = ("baseline", "profiling off", "profiling on")
ROUTER_STAGES = ("parse", "route", "queue", "scatter", "round_trip", "merge", "serialise")
NODE_STAGES = ("queue", "plan", "hnsw", "filter", "fetch", "serialise")
STAGES_OFF = {"VECSTORE_QUERY_STAGES": "0"}
STAGES_ON = {"VECSTORE_QUERY_STAGES": "1"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 60.0


def start_cluster(scratch: Path, name: str, shards: int, replicas: int) -> LocalCluster:
    return LocalCluster(scratch / name, shards=shards, replicas=replicas, port=free_ports(1)[0])


def run_with(cluster: LocalCluster, env: dict[str, str]) -> None:
    """(Re)start every process of `cluster` with `env` added (its data is kept)."""
    for process in cluster.processes:
        process.env.update(env)
    cluster.start()


def cpu_seconds(cluster: LocalCluster) -> float:
    """User + system CPU the cluster's processes have used so far (Linux /proc)."""
    total = 0
    for process in cluster.processes:
        if process.process is not None:
            fields = Path(f"/proc/{process.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


async def settle(session: aiohttp.ClientSession, url: str, query: list[float]) -> None:
    """Wait until searches no longer score rows exactly (every row in a published graph):
    the indexed steady state the section measures."""
    deadline = time.monotonic() + SETTLE_SECONDS
    body = {"vector": query, "k": K, "with_payload": False, "profile": True}
    while time.monotonic() < deadline:
        async with session.post(f"{url}/v1/collections/bench/search", json=body) as response:
            stages = (await response.json())["profile"]["stages"]
        if not any(stage["name"] == "exact_tail" for stage in stages):
            return
        await asyncio.sleep(1.0)
    print("warning: rows still scored exactly after settling", file=sys.stderr)


async def one_round(
    session: aiohttp.ClientSession,
    cluster: LocalCluster,
    data: ClusteredData,
    clients: int,
    profile: bool,
    offset: int,
) -> dict[str, float]:
    """One client through the queries (latencies), then `clients` at once (throughput)."""
    url = cluster.router_url
    extra = {"profile": True} if profile else {}
    count = len(data.queries)

    async def ask(position: int) -> float:
        query = data.queries[(position + offset) % count]
        body = {"vector": query.tolist(), "k": K, "with_payload": False, **extra}
        started = time.perf_counter()
        async with session.post(f"{url}/v1/collections/bench/search", json=body) as response:
            answer = await response.json()
        assert ("profile" in answer) is profile, answer
        return time.perf_counter() - started

    cpu_before = cpu_seconds(cluster)
    latencies = [await ask(position) for position in range(count)]

    async def client(number: int) -> None:
        for position in range(number, count * 2, clients):
            await ask(position)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    qps = count * 2 / (time.perf_counter() - started)
    cpu_ms = (cpu_seconds(cluster) - cpu_before) / (count * 3) * 1000
    return {"p50_ms": float(np.percentile(latencies, 50)) * 1000, "qps": qps, "cpu_ms": cpu_ms}


async def measure(
    session: aiohttp.ClientSession,
    clusters: dict[str, LocalCluster],
    data: ClusteredData,
    rounds: int,
    clients: int,
) -> dict[str, list[dict[str, float]]]:
    """Every workload once per round, in a rotating order (after one warm-up round)."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in WORKLOADS}
    for number in range(-1, rounds):
        order = WORKLOADS[number % 3 :] + WORKLOADS[: number % 3]
        for name in order:
            result = await one_round(session, clusters[name], data, clients, name == "profiling on", number)
            if number >= 0:
                runs[name].append(result)
        print(f"round {number + 1}/{rounds} done" if number >= 0 else "warm-up done", file=sys.stderr)
    return runs


async def bench_clusters(data: ClusteredData, scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Both phases: (first off, second on), then restarted the other way round."""
    first = start_cluster(scratch, "first", args.shards, args.replicas)
    second = start_cluster(scratch, "second", args.shards, args.replicas)
    query = data.queries[0].tolist()
    phases: list[dict[str, list[dict[str, float]]]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.clients)) as session:
            for number, (plain, timed) in enumerate(((first, second), (second, first))):
                run_with(plain, STAGES_OFF)
                run_with(timed, STAGES_ON)
                await asyncio.gather(_wait(plain.router_url), _wait(timed.router_url))
                if number == 0:
                    await _load(session, plain.router_url, data)
                    await _load(session, timed.router_url, data)
                await settle(session, plain.router_url, query)
                await settle(session, timed.router_url, query)
                clusters = {"baseline": plain, "profiling off": timed, "profiling on": timed}
                print(f"phase {number + 1}/2", file=sys.stderr)
                phases.append(await measure(session, clusters, data, args.rounds, args.clients))
                plain.stop()
                timed.stop()
    finally:
        first.stop()
        second.stop()
    return summarize(phases)


def summarize(phases: list[dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Per workload: medians over every round, and medians of each round's ratio to its baseline."""
    summary: dict[str, Any] = {}
    for name in WORKLOADS:
        rounds = [r for phase in phases for r in phase[name]]
        bases = [r for phase in phases for r in phase["baseline"]]
        summary[name] = {
            "rounds": rounds,
            **{key: statistics.median(r[key] for r in rounds) for key in ("qps", "p50_ms", "cpu_ms")},
            "ratio": {
                key: statistics.median(r[key] / b[key] for r, b in zip(rounds, bases, strict=True))
                for key in ("qps", "p50_ms", "cpu_ms")
            },
        }
    return summary


def recorder_cost(repeats: int = 20_000) -> dict[str, float]:
    """Microseconds per search of what the profiler adds, in process (no I/O, no encoding):
    the off path (null profiles), the stages timed into the histograms, and a profile
    returned (the node's stages sent back and grafted, the answer's document)."""

    def timed(profile: Profile, names: tuple[str, ...], times: StageTimes | None) -> None:
        for name in names:  # timed as the router and the node time them
            started = perf_counter()
            profile.add(name, started)
        if times is not None:
            times.record(profile.stages)

    def cost(fresh: bool, times: StageTimes | None, document: bool) -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            node = Profile("node n") if fresh else NO_PROFILE
            timed(node, NODE_STAGES, times)
            router = Profile("router") if fresh else NO_PROFILE
            if document:
                router.graft(node.wire(), router.origin, perf_counter())
            timed(router, ROUTER_STAGES, times)
            if document:
                router.to_dict()
        if times is not None:
            list(times.histograms())
        return (time.perf_counter() - started) / repeats * 1e6

    empty = time.perf_counter()
    for _ in range(repeats):
        pass
    loop_us = (time.perf_counter() - empty) / repeats * 1e6
    return {
        "null profile (baseline)": cost(False, None, False) - loop_us,
        "stages timed + histograms (profiling off)": cost(True, StageTimes(), False) - loop_us,
        "... + profile sent back and returned (on)": cost(True, StageTimes(), True) - loop_us,
    }


def report(result: dict[str, Any]) -> str:
    """The printed tables."""
    clusters = result["clusters"]
    lines = [
        f"Query profiler overhead ({result['shape']}, {result['rows']} x {result['dim']}, k={K}, "
        f"{result['queries']} queries x {result['rounds']} rounds x 2 phases; medians; 1 client "
        f"for p50, {result['clients']} for QPS; ratios: median of each round's ratio to its baseline)",
        f"{'workload':<16} {'QPS':>7} {'ratio':>6} {'p50 ms':>7} {'ratio':>6} "
        f"{'CPU ms/search':>13} {'ratio':>6}",
    ]
    for name in WORKLOADS:
        row, ratio = clusters[name], clusters[name]["ratio"]
        lines.append(
            f"{name:<16} {row['qps']:>7.0f} {ratio['qps']:>6.3f} {row['p50_ms']:>7.3f} "
            f"{ratio['p50_ms']:>6.3f} {row['cpu_ms']:>13.3f} {ratio['cpu_ms']:>6.3f}"
        )
    lines.append("")
    lines.append("recorder cost per search (router + one node, in process, no I/O)")
    cpu_us = clusters["baseline"]["cpu_ms"] * 1000
    for name, micros in result["recorder_us"].items():
        lines.append(f"  {name:<44} {micros:>7.2f} us = {micros / cpu_us:>6.2%} of a search's CPU")
    off, on = clusters["profiling off"]["ratio"], clusters["profiling on"]["ratio"]
    lines.append("")
    lines.append(
        f"target: cost < 1% off, < 5% on; CPU per search off {off['cpu_ms'] - 1:+.1%}, "
        f"on {on['cpu_ms'] - 1:+.1%}; QPS off {1 - off['qps']:+.1%}, on {1 - on['qps']:+.1%} "
        "(end-to-end figures on a shared machine move by a few % from run to run)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.profiler`."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.queries, args.rounds = 1_000, 30, 2
    print(f"making {args.rows} x {args.dim} clustered vectors ...", file=sys.stderr)
    data = make_clustered(args.rows, args.queries, args.dim, clusters=50, k=K, seed=23)
    result: dict[str, Any] = {
        "rows": args.rows,
        "dim": args.dim,
        "queries": args.queries,
        "rounds": args.rounds,
        "clients": args.clients,
        "shape": f"{args.shards}x{args.replicas}",
    }
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-profiler-") as scratch:
        result["clusters"] = asyncio.run(bench_clusters(data, Path(scratch), args))
    result["recorder_us"] = recorder_cost(2_000 if args.quick else 20_000)
    publish(report(result), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
