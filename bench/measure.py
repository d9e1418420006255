"""One system of the comparison, measured in its own process: build, sweep, clients, filters, footprint.

The parent (`bench.comparison`) starts `python -m bench.measure SPEC` once per system and
data set, so no system's threads, caches or memory disturb another's figures. The child
prints progress on stderr and its result as one JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import peers
from bench.dataset import FloatMatrix, IntArray, recall_at_k
from bench.footprint import tree_cpu_seconds, tree_rss_bytes
from bench.peers import AsyncPeer, Peer
from bench.workload import SELECTIVITIES, K, Workload

TARGET_RECALL = 0.95
LATENCY_SAMPLES = 2_000
"""Latencies kept per run in the JSON (evenly subsampled) for the distribution plots."""


@dataclass(frozen=True)
class Budget:
    """How long each measurement may run."""

    sweep_queries: int
    """Queries per sweep point and per filtered selectivity (the first ones of the workload)."""
    min_seconds: float
    """QPS runs at the chosen parameter go round the queries until at least this long."""
    max_seconds: float
    """Any run stops here once it has answered `min_count` queries (slow systems)."""
    clients: int = 16
    min_count: int = 20
    repeats: int = 1
    """QPS runs at the chosen parameter are repeated this often and the median one is kept
    (the machine's speed moves between runs); runs cut by `max_seconds` are not repeated."""


@dataclass
class ClientRun:
    """What a run of one or more clients answered, and how fast."""

    answered: IntArray
    """Query numbers answered (each at least once)."""
    found: IntArray
    """(len(answered), K) ids, the last answer to each."""
    latencies: list[float]
    """Seconds per request, in completion order."""
    elapsed: float
    cpu_s: float
    """CPU seconds of the whole process tree (the system's servers included) during the run."""

    @property
    def qps(self) -> float:
        """Requests answered per second of wall time."""
        return len(self.latencies) / self.elapsed

    def summary(self, truth: IntArray) -> dict[str, Any]:
        """Recall against `truth` rows of the answered queries, QPS and latency percentiles."""
        millis = np.asarray(self.latencies) * 1000
        return {
            "recall": recall_at_k(self.found, truth[self.answered]),
            "qps": self.qps,
            "p50_ms": float(np.percentile(millis, 50)),
            "p99_ms": float(np.percentile(millis, 99)),
            "qps_per_cpu": len(self.latencies) / max(self.cpu_s, 1e-6),
            "requests": len(self.latencies),
            "queries": len(self.answered),
            "seconds": self.elapsed,
        }


class Driver:
    """Sends queries to a peer from `clients` threads (or coroutines for an AsyncPeer)."""

    def __init__(self, peer: Peer, queries: FloatMatrix) -> None:
        self.peer = peer
        self.queries = np.ascontiguousarray(queries)

    def run(
        self, count: int, clients: int, param: int, bucket_below: int | None, budget: Budget, min_s: float
    ) -> ClientRun:
        """Answer queries 0..count-1 at least once (cycling until `min_s`), within the budget."""
        found = np.full((count, K), -1, dtype=np.int64)
        done = np.zeros(count, dtype=bool)
        latencies: list[float] = []
        lock = threading.Lock()
        position = [0]
        cpu_started = tree_cpu_seconds()
        started = time.perf_counter()

        def next_query() -> int | None:
            with lock:
                elapsed = time.perf_counter() - started
                issued = position[0]
                if issued >= count and elapsed >= min_s:
                    return None
                if elapsed >= budget.max_seconds and issued >= min(budget.min_count, count):
                    return None
                position[0] += 1
                return issued % count

        def record(query: int, ids: IntArray, seconds: float) -> None:
            with lock:
                found[query] = ids[0, :K]
                done[query] = True
                latencies.append(seconds)

        if isinstance(self.peer, AsyncPeer):
            self._run_async(self.peer, clients, param, bucket_below, next_query, record)
        elif clients == 1:
            self._client(param, bucket_below, next_query, record)
        else:
            with ThreadPoolExecutor(clients) as pool:
                for future in [
                    pool.submit(self._client, param, bucket_below, next_query, record) for _ in range(clients)
                ]:
                    future.result()
        elapsed = time.perf_counter() - started
        answered = np.flatnonzero(done)
        return ClientRun(answered, found[answered], latencies, elapsed, tree_cpu_seconds() - cpu_started)

    def _client(
        self,
        param: int,
        bucket_below: int | None,
        next_query: Callable[[], int | None],
        record: Callable[[int, IntArray, float], None],
    ) -> None:
        while (query := next_query()) is not None:
            started = time.perf_counter()
            ids = self.peer.search(self.queries[query : query + 1], K, param, bucket_below)
            record(query, ids, time.perf_counter() - started)

    def _run_async(
        self,
        peer: AsyncPeer,
        clients: int,
        param: int,
        bucket_below: int | None,
        next_query: Callable[[], int | None],
        record: Callable[[int, IntArray, float], None],
    ) -> None:
        async def client() -> None:
            while (query := next_query()) is not None:
                started = time.perf_counter()
                ids = await peer.search_async(self.queries[query : query + 1], K, param, bucket_below)
                record(query, ids, time.perf_counter() - started)

        async def all_clients() -> None:
            await asyncio.gather(*(client() for _ in range(clients)))

        peer.loop.run_until_complete(all_clients())


def progress(system: str, message: str) -> None:
    """One line on stderr, prefixed with the system."""
    print(f"    [{system}] {message}", file=sys.stderr, flush=True)


def sweep(
    driver: Driver, peer: Peer, workload: Workload, budget: Budget, system: str
) -> list[dict[str, Any]]:
    """Recall and 1-client QPS per parameter, narrowest first, until just past recall 0.95."""
    count = min(budget.sweep_queries, len(workload.queries))
    points: list[dict[str, Any]] = []
    reached: int | None = None
    for param in peer.params:
        run = driver.run(count, 1, param, None, budget, 0.0)
        point = {"param": param, **run.summary(workload.truth)}
        points.append(point)
        progress(system, f"{peer.param_name}={param}: recall {point['recall']:.3f}, {point['qps']:,.0f} q/s")
        if reached is None and point["recall"] >= TARGET_RECALL:
            reached = len(points) - 1
        if reached is not None and (len(points) - 1 - reached >= 2 or point["recall"] >= 0.995):
            break
    return points


def chosen_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The first point at recall >= 0.95, else the one with the best recall."""
    for point in points:
        if point["recall"] >= TARGET_RECALL:
            return point
    return max(points, key=lambda point: point["recall"])


def latency_sample(latencies: list[float]) -> list[float]:
    """At most LATENCY_SAMPLES latencies in ms, evenly spaced over the run."""
    picks = np.linspace(0, len(latencies) - 1, min(len(latencies), LATENCY_SAMPLES)).astype(int)
    return [round(latencies[i] * 1000, 4) for i in picks]


def measure(system: str, workload: Workload, budget: Budget, scratch: Path) -> dict[str, Any]:
    """Everything the comparison reports about one system on one workload."""
    peer = peers.create(system)
    baseline = tree_rss_bytes()
    result: dict[str, Any] = {"system": system, "param_name": peer.param_name}
    try:
        progress(system, f"build: {workload.rows:,} x {workload.dim}")
        timing = peer.build(workload, scratch)
        result["build"] = {
            **asdict(timing),
            "insert_rows_per_s": workload.rows / timing.insert_s,
            "rows_per_s": workload.rows / timing.total_s,
        }
        result["notes"] = peer.notes  # some adapters add what they measured while building
        progress(system, f"built: insert {timing.insert_s:.1f}s, searchable after {timing.total_s:.1f}s")
        driver = Driver(peer, workload.queries)
        driver.run(min(20, len(workload.queries)), 1, peer.params[0], None, budget, 0.0)  # warm up
        result["sweep"] = sweep(driver, peer, workload, budget, system)
        chosen = chosen_point(result["sweep"])
        param = chosen["param"]
        result["chosen"] = {"param": param, "reached": chosen["recall"] >= TARGET_RECALL}
        total = len(workload.queries)
        for label, clients in (("one_client", 1), (f"{budget.clients}_clients", budget.clients)):
            runs = [driver.run(total, clients, param, None, budget, budget.min_seconds)]
            while len(runs) < budget.repeats and runs[0].elapsed < budget.max_seconds:
                runs.append(driver.run(total, clients, param, None, budget, budget.min_seconds))
            run = sorted(runs, key=lambda r: r.qps)[len(runs) // 2]
            result[label] = {
                **run.summary(workload.truth),
                "latencies_ms": latency_sample(run.latencies),
                "qps_runs": [r.qps for r in runs],
            }
            progress(
                system,
                f"{label}: {run.qps:,.0f} q/s ({result[label]['qps_per_cpu']:,.0f} per CPU-s), "
                f"recall {result[label]['recall']:.3f}",
            )
        result["filtered"] = filtered(driver, peer, workload, budget, param, system)
        result["rss_bytes"] = tree_rss_bytes() - baseline
        result["disk_bytes"] = peer.disk_bytes()
    finally:
        peer.close()
    return result


def filtered(
    driver: Driver, peer: Peer, workload: Workload, budget: Budget, param: int, system: str
) -> dict[str, Any]:
    """1-client recall and QPS with `bucket < s` for each selectivity s, at the chosen parameter."""
    if peer.filtering is None:
        return {str(s): None for s in SELECTIVITIES}
    count = min(budget.sweep_queries, len(workload.queries))
    found: dict[str, Any] = {}
    for selectivity in SELECTIVITIES:
        run = driver.run(count, 1, param, selectivity, budget, 0.0)
        found[str(selectivity)] = run.summary(workload.filtered_truth[selectivity])
        progress(
            system,
            f"filter {selectivity}%: recall {found[str(selectivity)]['recall']:.3f}, {run.qps:,.0f} q/s",
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.measure SPEC`: SPEC is JSON {system, workload, budget}."""
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    workload = Workload.load(Path(spec["workload"]))
    budget = Budget(**spec["budget"])
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-peer-", ignore_cleanup_errors=True) as scratch:
        result = measure(spec["system"], workload, budget, Path(scratch))
    # milvus-lite's server writes its folder once more while it shuts down, after the cleanup
    time.sleep(0.5)
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
