"""Adapters that put every system of the comparison behind one interface (`Peer`).

One module per system. Each adapter ingests the workload with the same HNSW build
parameters where the system has them (connectivity/M 16, construction beam 128, cosine),
answers one or more queries for a value of its tunable search parameter, and filters
with its own native mechanism (or says it has none). Timing lives in `bench.measure`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from bench.dataset import FloatMatrix, IntArray
from bench.workload import Workload

CONNECTIVITY = 16
EXPANSION_ADD = 128
HNSW_EFS = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
"""The beam widths swept for HNSW systems, narrowest first (the sweep stops past recall 0.95)."""
SEARCH_FLOOR = HNSW_EFS[0]
"""The shard's collection-level expansion_search is a floor under every search's beam (64 by
default): the shard and the cluster set it to the narrowest swept value, so `ef` alone sets
the beam, as the other systems' parameters do."""


@dataclass(frozen=True)
class BuildTiming:
    """Seconds to make the rows searchable."""

    insert_s: float
    """Handing every row to the system (its add/insert/upsert calls, acknowledged)."""
    total_s: float
    """Until every row is indexed and searchable at full quality (insert included)."""


@runtime_checkable
class Peer(Protocol):
    """One system under test, in process (its own child process per run)."""

    param_name: str
    """The search parameter swept ("ef", "nprobes", ...)."""
    params: tuple[int, ...]
    """Values of it, increasing recall; the sweep stops soon after recall@10 >= 0.95."""
    filtering: str | None
    """How the system filters natively, or None when it cannot (filtered rows say n/a)."""
    notes: str
    """Index type and settings, shown under the table."""

    def build(self, workload: Workload, scratch: Path) -> BuildTiming: ...

    def search(self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None) -> IntArray:
        """Row ids (n, k), -1 padded; `bucket_below` filters to rows with bucket < it."""
        ...

    def disk_bytes(self) -> int | None:
        """Bytes the system keeps on disk for the data (None: it keeps them only in memory)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncPeer(Peer, Protocol):
    """A peer reached over the network: concurrent clients are coroutines, not threads."""

    loop: asyncio.AbstractEventLoop
    """The event loop its client session lives on (the driver runs clients there)."""

    async def search_async(
        self, queries: FloatMatrix, k: int, param: int, bucket_below: int | None
    ) -> IntArray: ...


@dataclass(frozen=True)
class PeerEntry:
    """Where a system's adapter lives and what it needs installed."""

    module: str
    factory: str
    requires: tuple[str, ...]
    """Top-level modules that must import (the heavy ones come from the `bench` extra)."""
    options: tuple[tuple[str, int], ...] = ()


SYSTEMS: dict[str, PeerEntry] = {
    "usearch": PeerEntry("bench.peers.usearch_peer", "UsearchPeer", ("usearch",)),
    "shard": PeerEntry("bench.peers.shard_peer", "ShardPeer", ("usearch",)),
    "cluster 1x1": PeerEntry(
        "bench.peers.cluster_peer", "ClusterPeer", ("aiohttp",), (("shards", 1), ("replicas", 1))
    ),
    "cluster 2x3": PeerEntry(
        "bench.peers.cluster_peer", "ClusterPeer", ("aiohttp",), (("shards", 2), ("replicas", 3))
    ),
    "hnswlib": PeerEntry("bench.peers.hnswlib_peer", "HnswlibPeer", ("hnswlib",)),
    "faiss": PeerEntry("bench.peers.faiss_peer", "FaissPeer", ("faiss",)),
    "chromadb": PeerEntry("bench.peers.chroma_peer", "ChromaPeer", ("chromadb",)),
    "milvus-lite": PeerEntry("bench.peers.milvus_peer", "MilvusPeer", ("pymilvus", "milvus_lite")),
    "milvus standalone": PeerEntry(
        "bench.peers.milvus_server_peer", "MilvusServerPeer", ("pymilvus", "milvus")
    ),
    "lancedb": PeerEntry("bench.peers.lancedb_peer", "LancePeer", ("lancedb",)),
    "qdrant local": PeerEntry("bench.peers.qdrant_peer", "QdrantPeer", ("qdrant_client",)),
}
OURS = ("usearch", "shard", "cluster 1x1", "cluster 2x3")
"""Raw usearch and the project itself; the rest are the peers a user might pick instead."""
EMBEDDED_PEERS = ("chromadb", "milvus-lite", "lancedb", "qdrant local")
"""Peers that run in the measuring process, or as a private helper process of its client library."""
SERVER_PEERS = ("milvus standalone",)
"""Peers that are database servers of their own, started for the run and queried over the
network, as the cluster is (not counted in the cluster's 'beats every embedded peer' targets)."""
LIBRARIES = ("hnswlib", "faiss")


def missing_modules(name: str) -> list[str]:
    """The modules a system needs that do not import here."""
    return [module for module in SYSTEMS[name].requires if importlib.util.find_spec(module) is None]


def create(name: str) -> Peer:
    """A fresh adapter for the named system."""
    entry = SYSTEMS[name]
    factory: Callable[..., Peer] = getattr(importlib.import_module(entry.module), entry.factory)
    return factory(**dict(entry.options))
