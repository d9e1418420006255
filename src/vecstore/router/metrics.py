"""Prometheus metrics of a router process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from vecstore.cluster.profile import StageTimes
from vecstore.transport.stage_metrics import StageCollector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RouterMetrics:
    """Requests by route and status, latency, per-shard fan-out latency, retries."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vecstore_router_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "vecstore_router_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.shard_seconds = Histogram(
            "vecstore_router_shard_seconds",
            "Latency of one shard's part of a request",
            ["shard", "operation"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "vecstore_router_retries", "Requests to nodes that were retried", registry=self.registry
        )
        # the stages this router timed itself (its own, and each shard's round trip), not
        # those a node reported: the node exports them
        self.query_stages = StageTimes(where="router", also=frozenset({"round_trip"}))
        """Stages of searches in this router (docs/slow-queries.md)."""
        self.registry.register(
            StageCollector(
                "vecstore_router_query_stage_seconds",
                "Time searches spent in each stage in the router (parse, scatter, round_trip, ...)",
                self.query_stages,
            )
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
