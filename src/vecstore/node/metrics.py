"""Prometheus metrics of one node process, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from vecstore.cluster.profile import StageTimes
from vecstore.transport.stage_metrics import StageCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class NodeMetrics:
    """Every metric a node exports; gauges are refreshed from status on each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.apply_seconds = Histogram(
            "vecstore_apply_seconds",
            "Time to apply one committed command",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "vecstore_commit_seconds",
            "Time from submit to applied on the leader",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.write_backpressure = Counter(
            "vecstore_write_backpressure",
            "Writes of points held back because too many vectors waited for HNSW",
            registry=registry,
        )
        self.backpressure_seconds = Histogram(
            "vecstore_write_backpressure_seconds",
            "Time a held-back write waited for the indexer",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.search_seconds = Histogram(
            "vecstore_search_seconds",
            "Time to answer one search request",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "vecstore_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=registry,
        )
        self.indexing_lag = Gauge(
            "vecstore_indexing_lag_points",
            "Points applied but not yet in an HNSW index",
            registry=registry,
        )
        self.graph_rows = Gauge(
            "vecstore_graph_rows",
            "Rows put into HNSW graphs since the node started: built here, or adopted from the leader",
            ["how"],
            registry=registry,
        )
        self.graph_bytes_received = Gauge(
            "vecstore_graph_bytes_received",
            "Bytes of graphs received from the leader since the node started",
            registry=registry,
        )
        self.vectors = Gauge(
            "vecstore_points", "Live points per collection", ["collection"], registry=registry
        )
        self.segments = Gauge(
            "vecstore_sealed_segments",
            "Sealed segments per collection",
            ["collection"],
            registry=registry,
        )
        self.tombstones = Gauge(
            "vecstore_tombstones",
            "Deleted points not yet compacted away",
            ["collection"],
            registry=registry,
        )
        self.raft_term = Gauge("vecstore_raft_term", "Current Raft term", registry=registry)
        self.raft_is_leader = Gauge("vecstore_raft_leader", "1 if this node leads", registry=registry)
        self.raft_commit_index = Gauge("vecstore_raft_commit_index", "Commit index", registry=registry)
        self.raft_last_applied = Gauge("vecstore_raft_last_applied", "Last applied index", registry=registry)
        self.raft_log_entries = Gauge(
            "vecstore_raft_log_entries", "Entries in the Raft journal", registry=registry
        )
        self.query_stages = StageTimes()
        """Stages of searches on this node and its shard (docs/slow-queries.md)."""
        registry.register(
            StageCollector(
                "vecstore_node_query_stage_seconds",
                "Time searches spent in each stage on this node (queue, plan, hnsw, ...)",
                self.query_stages,
            )
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
