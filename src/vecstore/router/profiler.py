"""The router's side of the query profiler (docs/slow-queries.md): a profile per search, its
stages into `vecstore_router_query_stage_seconds`, and searches slower than
`router.slow_query_ms` into the log as one JSON line each.

A slow-query line names the collection, k, the number of queries, whether a filter was
given, the total and the stages; never vectors, payloads or API keys.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from vecstore.cluster.profile import NO_PROFILE, Profile, StageTimes
from vecstore.cluster.spec import RouterSpec

log = logging.getLogger(__name__)
slow_log = logging.getLogger("vecstore.router.slow_queries")
"""Where slow searches go: `slow query {json}` at WARNING."""

ROUTER = "router"


class QueryProfiler:
    """Hands out profiles to search handlers and takes them back when the answer is ready."""

    def __init__(self, settings: RouterSpec, times: StageTimes) -> None:
        self.times = times
        self.stage_metrics = settings.query_stages
        self.slow_seconds = settings.slow_query_ms / 1000 if settings.slow_query_ms >= 0 else None
        """Searches at least this long are logged; None: no slow-query log."""
        if self.slow_seconds is not None:
            log.info("slow-query log on", extra={"threshold_ms": settings.slow_query_ms})

    def start(self, asked: bool) -> Profile:
        """The profile of a search that just arrived (`asked`: the caller wants it back).
        The nodes send their stages when someone will read them: the caller, or the
        slow-query log."""
        if asked or self.slow_seconds is not None:
            return Profile(ROUTER, remote=True)
        return Profile(ROUTER) if self.stage_metrics else NO_PROFILE

    def finish(
        self,
        profile: Profile,
        asked: bool,
        *,
        collection: str,
        k: object,
        queries: int,
        filtered: bool,
        api: str,
    ) -> dict[str, Any] | None:
        """Count the stages, log the search if it was slow; its profile document if `asked`."""
        if not profile.enabled:
            return None
        total = time.perf_counter() - profile.origin
        self.times.record(profile.stages)
        if self.slow_seconds is not None and total >= self.slow_seconds:
            document = profile.to_dict(total)
            entry = {
                "collection": collection,
                "api": api,
                "k": k,
                "queries": queries,
                "filter": filtered,
                "total_ms": document["total_ms"],
                "stages": document["stages"],
            }
            slow_log.warning("slow query %s", json.dumps(entry, separators=(",", ":"), default=str))
            return document if asked else None
        return profile.to_dict(total) if asked else None
