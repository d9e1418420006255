"""`make bench` resharding section: a loaded cluster grown online, 1 -> 2 -> 3 -> 4 shards.

A local 1 shard x 3 replicas cluster with its router is loaded through the router's native
HTTP API; then, one shard at a time, a new 3-node shard group is started and added with the
resharding coordinator while two clients run through the router: a writer (upserts of 100
new points per request, paced at `--write-rate` points/s so that indexing keeps up on a
small machine) and a searcher (k=10, one query after the other, as fast as answers come).
For each move: the points that changed owner (about 1/S_new of them under consistent
hashing) and the share the new shard holds after (counted at each shard's leader), the
seconds the move took, and the clients' throughput and latency during the move against a
window of the same length just before it, in the same run (ratio = during / before).
Errors the clients see are counted, not retried. The clients pause between moves, while
the next group starts and the moved points are indexed, so that each baseline starts with
every node's indexing caught up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.output import publish
from bench.report import table
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import LocalShardGroup, free_ports
from vecstore.launcher.readiness import readyz_url, wait_ready, wait_ready_async
from vecstore.reshard.coordinator import Coordinator
from vecstore.transport.node_client import NodeClient

COLLECTION = "bench"
K = 10
LOAD_BATCH = 1_000
WRITE_BATCH = 100
SETTLE_LAG = 1_000
"""Before each baseline window, every node's indexing lag must be at most this (points)."""
WARMUP_S = 1.0
"""Clients run this long, unmeasured, before each baseline window."""
MARKER = "Resharding online"


@dataclass
class Event:
    """One request of a client: when it finished, how long it took, and its outcome."""

    done: float
    seconds: float
    ok: bool
    points: int


@dataclass
class Client:
    """What one load client saw, request by request."""

    name: str
    events: list[Event] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acknowledged: list[range] = field(default_factory=list)
    """The ids of the points a writer's acknowledged requests wrote."""
    origin: float = field(default_factory=time.perf_counter)

    def record(self, started: float, ok: bool, points: int, error: str | None = None) -> None:
        now = time.perf_counter()
        self.events.append(Event(now, now - started, ok, points))
        if error is not None:
            self.errors.append(f"{self.name}, {started - self.origin:.1f} s into the run: {error}"[:300])

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Throughput and latency of the requests answered in [start, end); errors of those
        that were under way at any time in it."""
        good = [e for e in self.events if e.ok and start <= e.done < end]
        failed = [e for e in self.events if not e.ok and e.done >= start and e.done - e.seconds < end]
        seconds = max(end - start, 1e-9)
        latencies = [e.seconds for e in good]
        return {
            "requests_per_s": len(good) / seconds,
            "points_per_s": sum(e.points for e in good) / seconds,
            "p50_ms": float(np.percentile(latencies, 50)) * 1000 if latencies else 0.0,
            "p99_ms": float(np.percentile(latencies, 99)) * 1000 if latencies else 0.0,
            "requests": len(good),
            "errors": len(failed),
        }


class Switch:
    """Turns the clients on and off: they run through each baseline window and move, and
    pause in between (while a new group starts and the last move's points are indexed)."""

    def __init__(self) -> None:
        self.on = asyncio.Event()
        self.stopped = False

    async def wait(self) -> bool:
        """Until the clients may send; True if they had to wait, i.e. were paused."""
        if self.on.is_set():
            return False
        await self.on.wait()
        return True

    def stop(self) -> None:
        """For good: the clients finish their request in flight and return."""
        self.stopped = True
        self.on.set()


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any]
) -> tuple[bool, str | None]:
    """One request; (ok, error text)."""
    try:
        async with session.request(method, url, json=body) as response:
            if response.status == 200:
                await response.read()
                return True, None
            return False, f"HTTP {response.status}: {(await response.text())[:200]}"
    except (aiohttp.ClientError, TimeoutError) as err:
        return False, f"{type(err).__name__}: {err}"


async def writer(url: str, first_id: int, dim: int, rate: float, client: Client, switch: Switch) -> None:
    """Upserts of WRITE_BATCH new points (ids from `first_id` up), one request at a time, at
    most `rate` points/s: sent on a schedule, or at once when the last answer came late.
    The ids acknowledged are kept in `client.acknowledged`."""
    rng = np.random.default_rng(5)
    next_id = first_id
    interval = WRITE_BATCH / rate
    due = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        while True:
            if await switch.wait():
                due = time.perf_counter()  # no burst to make up for a pause
            if switch.stopped:
                return
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            due = max(due + interval, time.perf_counter())
            ids = range(next_id, next_id + WRITE_BATCH)
            next_id += WRITE_BATCH
            vectors = rng.normal(size=(len(ids), dim)).astype(np.float32).tolist()
            points = [
                {"id": i, "vector": v, "payload": {"row": i}} for i, v in zip(ids, vectors, strict=True)
            ]
            started = time.perf_counter()
            ok, error = await call(
                session, "PUT", f"{url}/v1/collections/{COLLECTION}/points", {"points": points}
            )
            client.record(started, ok, len(points), error)
            if ok:
                client.acknowledged.append(ids)


async def searcher(url: str, dim: int, client: Client, switch: Switch) -> None:
    """k=10 searches with random query vectors, one at a time, back to back."""
    queries = np.random.default_rng(9).normal(size=(256, dim)).astype(np.float32).tolist()
    number = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        while True:
            await switch.wait()
            if switch.stopped:
                return
            body = {"vector": queries[number % len(queries)], "k": K}
            number += 1
            started = time.perf_counter()
            ok, error = await call(session, "POST", f"{url}/v1/collections/{COLLECTION}/search", body)
            client.record(started, ok, 1, error)


async def load(url: str, rows: int, dim: int) -> dict[str, Any]:
    """Create the collection and upsert `rows` points through the router, 1,000 a request."""
    rng = np.random.default_rng(1)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        async with session.put(f"{url}/v1/collections/{COLLECTION}", json={"dimension": dim}) as r:
            r.raise_for_status()
        started = time.perf_counter()
        for start in range(0, rows, LOAD_BATCH):
            stop = min(start + LOAD_BATCH, rows)
            vectors = rng.normal(size=(stop - start, dim)).astype(np.float32).tolist()
            points = [
                {"id": i, "vector": v, "payload": {"row": i}}
                for i, v in zip(range(start, stop), vectors, strict=True)
            ]
            async with session.put(f"{url}/v1/collections/{COLLECTION}/points", json={"points": points}) as r:
                r.raise_for_status()
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "points_per_s": rows / seconds}


async def settle(url: str, limit_s: float = 120) -> dict[str, Any]:
    """Wait (at most `limit_s`) until every node's indexing lag is at most SETTLE_LAG."""
    started = time.perf_counter()
    lags: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while time.perf_counter() - started < limit_s:
            async with session.get(f"{url}/v1/status") as r:
                nodes = (await r.json())["nodes"] if r.status == 200 else []
            lags = [int(n.get("indexing_lag", SETTLE_LAG + 1)) for n in nodes]
            if lags and max(lags) <= SETTLE_LAG:
                break
            await asyncio.sleep(0.5)
    settled = bool(lags) and max(lags) <= SETTLE_LAG
    return {"seconds": time.perf_counter() - started, "settled": settled, "max_lag": max(lags, default=-1)}


def start_group(scratch: Path, shard_id: int, secret: str, groups: list[LocalShardGroup]) -> ShardSpec:
    """Start shard `shard_id`'s 3 nodes (kept in `groups` to be stopped), wait until each is ready."""
    group = LocalShardGroup(scratch / f"shard-{shard_id}", replicas=3, shard_id=shard_id, secret=secret)
    groups.append(group)
    group.start()
    for address in group.http_addresses:
        wait_ready(readyz_url(address), 120)
    return ShardSpec(
        group.shard_id, tuple(NodeSpec(n.node_id, n.raft_address, n.http_address) for n in group.nodes)
    )


async def shard_counts(topology: Topology, access: NodeAccess) -> dict[int, int]:
    """The points each shard of `topology` holds, counted at its leader."""
    counts: dict[int, int] = {}
    for shard in topology.shards:
        async with NodeClient([n.http for n in shard.nodes], deadline_seconds=60, access=access) as client:
            answer = await client.read(f"/v1/collections/{COLLECTION}/points/count", {}, "leader")
        counts[shard.id] = int(answer["count"])
    return counts


async def shard_info(topology: Topology, access: NodeAccess) -> dict[int, dict[str, int]]:
    """Per shard, at its leader: live points, tombstones (deleted points still in the
    collection's memtable or segments) and sealed segments."""
    info: dict[int, dict[str, int]] = {}
    for shard in topology.shards:
        async with NodeClient([n.http for n in shard.nodes], deadline_seconds=60, access=access) as client:
            answer = await client.request("leader", "GET", "/v1/collections")
        entry = next(e for e in answer["collections"] if e["schema"]["name"] == COLLECTION)
        info[shard.id] = {key: int(entry.get(key, 0)) for key in ("points", "tombstones", "segments")}
    return info


def ratio(during: float, before: float) -> float | None:
    """during / before; None when nothing was measured before."""
    return during / before if before > 0 else None


async def move_once(
    coordinator: Coordinator,
    current: Topology,
    spec: ShardSpec,
    clients: dict[str, Client],
    rows: int,
    before_s: float,
) -> tuple[Topology, dict[str, Any]]:
    """Measure a baseline window of `before_s`, then add `spec`; the figures of the move."""
    counts_before = await shard_counts(current, coordinator.access)
    baseline_start = time.perf_counter()
    await asyncio.sleep(before_s)
    move_start = time.perf_counter()
    acknowledged = len(clients["write"].acknowledged)
    after = await coordinator.add_shard(spec)
    move_end = time.perf_counter()
    counts_after = await shard_counts(after, coordinator.access)
    move_s = move_end - move_start
    window_start = max(baseline_start, move_start - move_s)  # equal length when the wait allowed
    before = {name: c.window(window_start, move_start) for name, c in clients.items()}
    during = {name: c.window(move_start, move_end) for name, c in clients.items()}
    # the points present when the move began, and which of them changed owner
    ids = [*range(rows), *(i for batch in clients["write"].acknowledged[:acknowledged] for i in batch)]
    moved = sum(1 for i in ids if current.owner(i) != after.owner(i))
    total_after = sum(counts_after.values())
    return after, {
        "from_shards": len(current.shards),
        "to_shards": len(after.shards),
        "epoch": after.epoch,
        "points_at_start": len(ids),
        "moved": moved,
        "fraction_moved": moved / len(ids),
        "new_shard_share": counts_after[spec.id] / max(total_after, 1),
        "one_over_s": 1 / len(after.shards),
        "move_s": move_s,
        "before_s": move_start - window_start,
        "counts_before": counts_before,
        "counts_after": counts_after,
        "before": before,
        "during": during,
        "ratios": {
            "write_points_per_s": ratio(during["write"]["points_per_s"], before["write"]["points_per_s"]),
            "write_p99": ratio(during["write"]["p99_ms"], before["write"]["p99_ms"]),
            "search_qps": ratio(during["search"]["requests_per_s"], before["search"]["requests_per_s"]),
            "search_p99": ratio(during["search"]["p99_ms"], before["search"]["p99_ms"]),
        },
        "errors_during": {name: during[name]["errors"] for name in clients},
        "load_average_1min": os.getloadavg()[0],
    }


async def run(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Start the cluster, load it, grow it shard by shard under load; stop everything."""
    cluster = LocalCluster(scratch / "cluster", shards=1, replicas=3, port=free_ports(1)[0])
    groups: list[LocalShardGroup] = []
    clients = {"write": Client("write"), "search": Client("search")}
    switch = Switch()
    tasks: list[asyncio.Task[None]] = []
    cluster.start()
    try:
        url = cluster.router_url
        await wait_ready_async(readyz_url(url), 180, 0.3)
        print(f"loading {args.rows} x {args.dim} points through the router ...", file=sys.stderr)
        loaded = await load(url, args.rows, args.dim)
        loaded["settle"] = await settle(url, 300)
        secret = cluster.secret_path.read_text().strip()
        tasks = [
            asyncio.create_task(writer(url, args.rows, args.dim, args.write_rate, clients["write"], switch)),
            asyncio.create_task(searcher(url, args.dim, clients["search"], switch)),
        ]
        coordinator = Coordinator(Topology.of_spec(cluster.spec), access=cluster.access)
        current = Topology.of_spec(cluster.spec)
        moves: list[dict[str, Any]] = []
        copy_rate = loaded["points_per_s"] / 2  # a guess for the first move, then the slowest seen
        try:
            for shard_id in range(1, args.shards):
                print(f"starting shard {shard_id} ...", file=sys.stderr)
                spec = await asyncio.to_thread(start_group, scratch, shard_id, secret, groups)
                # the baseline window must be at least as long as the move: estimate it
                present = args.rows + WRITE_BATCH * len(clients["write"].acknowledged)
                estimate = present / (shard_id + 1) / copy_rate
                before_s = min(max(args.min_window, 2 * estimate), args.max_window)
                print(
                    f"moving {len(current.shards)} -> {len(current.shards) + 1} shards "
                    f"({WARMUP_S:.0f} s of warm-up and {before_s:.1f} s of baseline first) ...",
                    file=sys.stderr,
                )
                switch.on.set()
                await asyncio.sleep(WARMUP_S)
                current, row = await move_once(coordinator, current, spec, clients, args.rows, before_s)
                switch.on.clear()
                copy_rate = min(copy_rate, max(row["moved"], 1) / row["move_s"])
                row["indexed_after"] = await settle(url, 300)
                row["shards_after"] = await shard_info(current, cluster.access)
                moves.append(row)
                print(render_move(row, args), file=sys.stderr)
        finally:
            await coordinator.close()
        switch.stop()
        await asyncio.gather(*tasks)
        errors = [e for c in clients.values() for e in c.errors]
        return {
            "rows": args.rows,
            "dim": args.dim,
            "replicas": 3,
            "write_batch": WRITE_BATCH,
            "write_rate": args.write_rate,
            "k": K,
            "load": loaded,
            "moves": moves,
            "client_errors_total": {name: len(c.errors) for name, c in clients.items()},
            "client_error_samples": errors[:20],
            "requests_total": {name: len(c.events) for name, c in clients.items()},
        }
    finally:
        switch.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for group in groups:
            group.stop()
        cluster.stop()


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_move(move: dict[str, Any], args: argparse.Namespace) -> str:
    """One move's table."""
    before, during, ratios = move["before"], move["during"], move["ratios"]
    lines = [
        f"{MARKER}: {move['from_shards']} -> {move['to_shards']} shards x 3 replicas "
        f"({args.rows:,} x {args.dim} points loaded; writer: {WRITE_BATCH}-point upserts of new points "
        f"at {args.write_rate:,.0f} points/s; searcher: k={K}, back to back)",
        f"moved {move['moved']:,} of {move['points_at_start']:,} points = {move['fraction_moved']:.3f} "
        f"(1/S = {move['one_over_s']:.3f}; the new shard holds {move['new_shard_share']:.3f} after) "
        f"in {move['move_s']:.1f} s; baseline: {move['before_s']:.1f} s just before",
        f"client errors during the move: {move['errors_during']['write']} writes, "
        f"{move['errors_during']['search']} searches; load average {move['load_average_1min']:.1f} "
        f"on {os.cpu_count()} CPUs at its end",
    ]
    settle = move.get("indexed_after")
    if settle is not None:
        lines.append(
            f"after the move, with the clients paused, indexing caught up (lag <= {SETTLE_LAG:,} on every "
            f"node) in {settle['seconds']:.1f} s"
            if settle["settled"]
            else f"after the move indexing had NOT caught up in {settle['seconds']:.0f} s "
            f"(lag {settle['max_lag']:,} on a node)"
        )
    rows = [
        [
            "writes, points/s",
            _num(before["write"]["points_per_s"]),
            _num(during["write"]["points_per_s"]),
            _num(ratios["write_points_per_s"], 2),
        ],
        [
            "write p99, ms",
            _num(before["write"]["p99_ms"], 1),
            _num(during["write"]["p99_ms"], 1),
            _num(ratios["write_p99"], 2),
        ],
        [
            "searches, queries/s",
            _num(before["search"]["requests_per_s"]),
            _num(during["search"]["requests_per_s"]),
            _num(ratios["search_qps"], 2),
        ],
        [
            "search p99, ms",
            _num(before["search"]["p99_ms"], 1),
            _num(during["search"]["p99_ms"], 1),
            _num(ratios["search_p99"], 2),
        ],
    ]
    text = "\n".join(lines) + "\n" + table(["through the router", "before", "during", "ratio"], rows)
    if "shards_after" in move:
        shards = ", ".join(
            f"{shard_id}: {info['points']:,} live + {info['tombstones']:,} deleted"
            for shard_id, info in sorted(move["shards_after"].items())
        )
        text += f"\nshards after the move (points in the collection): {shards}"
    return text


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    """Every move's table, then the summary."""
    parts = [render_move(move, args) for move in result["moves"]]
    totals = result["client_errors_total"]
    summary = (
        f"load: {result['load']['rows']:,} points in {result['load']['seconds']:.1f} s "
        f"({result['load']['points_per_s']:,.0f} points/s, 1 client, {LOAD_BATCH} a request); "
        f"client errors over the whole run: {totals['write']} writes, {totals['search']} searches"
    )
    samples = result["client_error_samples"]
    if samples:
        summary += "\n" + "\n".join(f"  {sample}" for sample in samples[:5])
    return "\n\n".join([*parts, summary])


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m bench.reshard`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument(
        "--write-rate", type=float, default=500.0, help="the writer's pace, points/s (new points)"
    )
    parser.add_argument("--shards", type=int, default=4, help="grow from 1 to this many shards")
    parser.add_argument("--min-window", type=float, default=5.0, help="shortest baseline window, s")
    parser.add_argument("--max-window", type=float, default=300.0, help="longest baseline window, s")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.min_window = 3_000, 2.0
    if args.shards < 2:
        parser.error("--shards must be at least 2 (a move needs a shard to add)")
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-reshard-") as scratch:
        result = asyncio.run(run(args, Path(scratch)))
    publish(report(result, args), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
