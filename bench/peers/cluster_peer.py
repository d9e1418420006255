"""The whole cluster through its router: a LocalCluster of S shards x R replicas on this machine.

Rows go in through the project's client (`RouterClient`) in batches of 1,000 (a few
requests in flight); searches are one request per query, as a client application sends them
with that client: over the router's `/v1/rpc` WebSocket, msgpack frames. Sixteen clients
are sixteen connections. The load generator shares the machine's cores with every node and
the router. `bench.hops` times the same search over plain HTTP (JSON and msgpack).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.dataset import FloatMatrix, IntArray
from bench.footprint import directory_bytes
from bench.peers import CONNECTIVITY, EXPANSION_ADD, HNSW_EFS, SEARCH_FLOOR, BuildTiming
from bench.router import _wait as wait_ready
from bench.workload import Workload
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import free_ports
from vecstore.transport.router_client import RouterClient

COLLECTION = "bench"
BATCH = 1_000
UPLOADERS = 4
CONNECTIONS = 16


class ClusterPeer:
    """A local cluster started for the run and stopped by `close`."""

    param_name = "ef"
    params = HNSW_EFS
    filtering = "payload filter in the search request, evaluated on every shard by its planner"

    def __init__(self, shards: int, replicas: int) -> None:
        self.shards, self.replicas = shards, replicas
        self.notes = (
            f"vecstore {shards} shard(s) x {replicas} replica(s) behind one router, f32, connectivity "
            f"{CONNECTIVITY}, expansion_add {EXPANSION_ADD}, expansion_search {SEARCH_FLOOR} (a floor "
            "under ef); one request per query through the project's client (RouterClient, WebSocket "
            "RPC), one connection per client"
        )
        self.loop = asyncio.new_event_loop()
        self.cluster: LocalCluster | None = None
        self.clients: list[RouterClient] = []
        self.rotation: itertools.cycle[RouterClient] | None = None
        self.url = ""

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """Start the cluster, create the collection, upload, wait until every node has indexed."""
        self.cluster = LocalCluster(
            scratch / "cluster", shards=self.shards, replicas=self.replicas, port=free_ports(1)[0]
        )
        self.cluster.start()
        self.url = self.cluster.router_url
        return self.loop.run_until_complete(self._build(workload))

    async def _build(self, workload: Workload) -> BuildTiming:
        await wait_ready(self.url)
        self.clients = [RouterClient(self.url) for _ in range(CONNECTIONS)]
        self.rotation = itertools.cycle(self.clients)
        schema = {
            "name": COLLECTION,
            "dimension": workload.dim,
            "metric": "cosine",
            "hnsw": {
                "connectivity": CONNECTIVITY,
                "expansion_add": EXPANSION_ADD,
                "expansion_search": SEARCH_FLOOR,
            },
        }
        await self.clients[0].create_collection(schema)
        started = time.perf_counter()
        batches = iter(range(0, workload.rows, BATCH))

        async def uploader(client: RouterClient) -> None:
            for start in batches:
                stop = min(start + BATCH, workload.rows)
                vectors = workload.base[start:stop].tolist()
                buckets = workload.buckets[start:stop].tolist()
                points = [
                    {"id": start + i, "vector": vector, "payload": {"bucket": bucket}}
                    for i, (vector, bucket) in enumerate(zip(vectors, buckets, strict=True))
                ]
                await client.upsert(COLLECTION, points)

        await asyncio.gather(*(uploader(client) for client in self.clients[:UPLOADERS]))
        inserted = time.perf_counter() - started
        while not await self._indexed():  # noqa: ASYNC110 - polling another process's status
            await asyncio.sleep(0.25)
        return BuildTiming(inserted, time.perf_counter() - started)

    async def _indexed(self) -> bool:
        nodes = await self.clients[0].status()
        return all(node.get("indexing_lag", 1) == 0 for node in nodes)

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """Blocking form of `search_async` (one request per query)."""
        return self.loop.run_until_complete(self.search_async(queries, k, param, bucket_below))

    async def search_async(
        self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None
    ) -> IntArray:
        """POST /v1/collections/bench/search, one request per query row (the next client's
        connection in turn)."""
        assert self.rotation is not None
        client = next(self.rotation)
        keys = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            body: dict[str, Any] = {"vector": query.tolist(), "k": k, "ef": param, "with_payload": False}
            if bucket_below is not None:
                body["filter"] = {"must": [{"key": "bucket", "range": {"lt": bucket_below}}]}
            hits = (await client.call("POST", f"/v1/collections/{COLLECTION}/search", body))["result"]
            keys[row, : len(hits)] = [hit["id"] for hit in hits[:k]]
        return keys

    def disk_bytes(self) -> int:
        """Every node's data folder (Raft journal, snapshots, segments), logs left out."""
        if self.cluster is None:
            return 0
        folder = self.cluster.data_dir
        return directory_bytes(folder) - directory_bytes(folder / "logs")

    def close(self) -> None:
        """Close the clients and stop every process of the cluster."""
        for client in self.clients:
            self.loop.run_until_complete(client.close())
        self.clients = []
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        self.loop.close()
