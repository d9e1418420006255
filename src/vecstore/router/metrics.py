"""Prometheus metrics of a router process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
