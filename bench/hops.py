"""Where a cluster query's time goes: per-hop latency against a local 1 x 1 cluster.

Starts one node and one router (`vecstore up` layout), loads clustered rows, then times
one client sending the same queries in a loop to each hop in turn:

- a bare HTTP round trip (`GET /healthz`) to the node and to the router;
- a search sent straight to the node (JSON and msgpack bodies);
- a search through the router (JSON and msgpack bodies);
- the same two searches over the `/v1/rpc` WebSocket, as the project's clients send them
  (`NodeClient` to the node, `RouterClient` to the router).

The shard's own search time is in `bench.shard_vs_usearch`; this section is about the
hops around it. python -m bench.hops [--rows N] [--queries N] [--quick] [--json F] [--docs]
(`--docs` rewrites the table in docs/api.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import numpy as np

from bench.dataset import make_clustered
from bench.router import _wait as wait_ready
from vecstore.cluster.credentials import NodeAccess
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.transport.node_client import NodeClient
from vecstore.transport.router_client import RouterClient

COLLECTION = "hops"
MSGPACK = "application/msgpack"


async def _timed(count: int, call: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    for i in range(min(50, count)):  # warm up connections and caches
        await call(i)
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": float(np.percentile(latencies, 50)) * 1000,
        "p99_ms": float(np.percentile(latencies, 99)) * 1000,
        "qps": count / elapsed,
    }


async def _load(session: aiohttp.ClientSession, router: str, base: np.ndarray) -> None:
    schema = {"dimension": base.shape[1], "metric": "cosine"}
    async with session.put(f"{router}/v1/collections/{COLLECTION}", json=schema) as response:
        response.raise_for_status()
    for start in range(0, len(base), 1_000):
        points = [
            {"id": start + i, "vector": row} for i, row in enumerate(base[start : start + 1_000].tolist())
        ]
        async with session.put(
            f"{router}/v1/collections/{COLLECTION}/points", json={"points": points}
        ) as response:
            response.raise_for_status()
    while True:
        async with session.get(f"{router}/v1/status") as response:
            nodes = (await response.json())["nodes"]
        if all(node.get("indexing_lag", 1) == 0 for node in nodes):
            return
        await asyncio.sleep(0.25)


async def run(rows: int, queries: int) -> list[tuple[str, dict[str, float]]]:
    """Start a 1 x 1 cluster, load it, time each hop."""
    data = make_clustered(rows, max(queries, 100), 128, clusters=100, k=10, seed=7)
    with tempfile.TemporaryDirectory(prefix="vecstore-hops-") as scratch:
        cluster = LocalCluster(Path(scratch), shards=1, replicas=1, port=free_ports(1)[0])
        cluster.start()
        try:
            router = cluster.router_url
            node = f"http://{cluster.node_addresses()[0]}"
            await wait_ready(router)
            # the router has no API keys here: the node token on every request is for the nodes
            async with aiohttp.ClientSession(headers=cluster.access.headers()) as session:
                await _load(session, router, data.base)
                return await _measure(session, router, node, cluster.access, data.queries, queries)
        finally:
            cluster.stop()


async def _measure(
    session: aiohttp.ClientSession,
    router: str,
    node: str,
    access: NodeAccess,
    vectors: np.ndarray,
    count: int,
) -> list[tuple[str, dict[str, float]]]:
    lists = vectors.tolist()
    path = f"/v1/collections/{COLLECTION}/search"

    async def get(url: str) -> None:
        async with session.get(url) as response:
            await response.read()

    async def post_json(url: str, body: dict[str, Any]) -> None:
        async with session.post(url, json=body) as response:
            response.raise_for_status()
            await response.read()

    async def post_msgpack(url: str, body: dict[str, Any]) -> None:
        headers = {"Content-Type": MSGPACK, "Accept": MSGPACK}
        async with session.post(url, data=msgpack.packb(body), headers=headers) as response:
            response.raise_for_status()
            await response.read()

    n = len(lists)
    node_client = NodeClient([node.removeprefix("http://")], access=access)
    router_client = RouterClient(router)

    async def node_rpc(i: int) -> None:
        await node_client.search(COLLECTION, [lists[i % n]], 10, with_payload=False)

    async def router_rpc(i: int) -> None:
        await router_client.call("POST", path, {"vector": lists[i % n], "with_payload": False})

    try:
        rpc_rows = [
            ("search to the node, RPC (NodeClient)", await _timed(count, node_rpc)),
            ("search through the router, RPC (RouterClient)", await _timed(count, router_rpc)),
        ]
    finally:
        await node_client.close()
        await router_client.close()
    return [
        ("GET /healthz, node", await _timed(count, lambda i: get(f"{node}/healthz"))),
        ("GET /healthz, router", await _timed(count, lambda i: get(f"{router}/healthz"))),
        (
            "search to the node, JSON",
            await _timed(
                count,
                lambda i: post_json(f"{node}{path}", {"vector": lists[i % n], "with_payload": False}),
            ),
        ),
        (
            "search to the node, msgpack",
            await _timed(
                count,
                lambda i: post_msgpack(f"{node}{path}", {"vector": lists[i % n], "with_payload": False}),
            ),
        ),
        (
            "search through the router, JSON",
            await _timed(
                count,
                lambda i: post_json(f"{router}{path}", {"vector": lists[i % n], "with_payload": False}),
            ),
        ),
        (
            "search through the router, msgpack",
            await _timed(
                count,
                lambda i: post_msgpack(f"{router}{path}", {"vector": lists[i % n], "with_payload": False}),
            ),
        ),
        *rpc_rows,
    ]


DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
DOC_BLOCK = re.compile(r"(<!-- hops:begin -->\n).*?(<!-- hops:end -->)", re.DOTALL)


def table(results: list[tuple[str, dict[str, float]]]) -> str:
    """The markdown table of the results."""
    lines = [
        "| request (1 client, in a loop) | p50 ms | p99 ms | per second |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, f in results:
        lines.append(f"| {name} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['qps']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the per-hop table (and write it where asked)."""
    parser = argparse.ArgumentParser(prog="python -m bench.hops", description=__doc__)
    parser.add_argument("--rows", type=int, help="rows loaded (default 20,000; quick 1,500)")
    parser.add_argument("--queries", type=int, help="requests per hop (default 2,000; quick 100)")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--docs", action="store_true", help="rewrite the table in docs/api.md")
    args = parser.parse_args(argv)
    rows = args.rows or (1_500 if args.quick else 20_000)
    queries = args.queries or (100 if args.quick else 2_000)
    results = asyncio.run(run(rows, queries))
    text = table(results)
    print(f"## Per-hop latency, 1 x 1 cluster, {rows:,} x 128 rows, {queries:,} requests per hop\n")
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "queries": queries, "hops": dict(results)}, indent=1))
    if args.docs:
        DOC.write_text(DOC_BLOCK.sub(lambda m: m.group(1) + text + m.group(2), DOC.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
