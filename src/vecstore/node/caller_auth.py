"""Who may call a node's API: holders of the cluster's node token, and nobody else.

Every path but the probes and metrics (/healthz, /readyz, /metrics: no data, needed by
Kubernetes and Prometheus) needs `Authorization: Bearer <node token>`; the RPC WebSocket
is checked at its handshake. A node run without a cluster secret (development only)
checks nothing. Refusals are logged with the caller's address, at most once a minute per
address; the presented value is never logged.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Middleware

from vecstore.cluster.credentials import token_matches
from vecstore.cluster.errors import Unauthorized
from vecstore.transport.server import Handler

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
LOG_EVERY_SECONDS = 60.0
MAX_REMEMBERED_CALLERS = 4096


class RefusalLog:
    """Rate-limited warnings about refused callers (`what` was refused: "an unauthenticated
    request"), with a count of the silent ones. Not thread-safe: one per thread."""

    def __init__(
        self, what: str = "an unauthenticated request", every_seconds: float = LOG_EVERY_SECONDS
    ) -> None:
        self.what = what
        self.every_seconds = every_seconds
        self._last: dict[str, float] = {}
        self._silent: dict[str, int] = {}

    def refused(self, caller: str, detail: str, now: float | None = None) -> bool:
        """Record a refusal; True when it was logged."""
        now = time.monotonic() if now is None else now
        last = self._last.get(caller)
        if last is not None and now - last < self.every_seconds:
            self._silent[caller] = self._silent.get(caller, 0) + 1
            return False
        if len(self._last) >= MAX_REMEMBERED_CALLERS:  # bounded: forget everyone, log again
            self._last.clear()
            self._silent.clear()
        self._last[caller] = now
        silent = self._silent.pop(caller, 0)
        log.warning(
            "refused %s from %s: %s (%d more not logged since the last line)",
            self.what,
            caller,
            detail,
            silent,
        )
        return True


def caller_auth_middleware(expected_token: str | None) -> Middleware:
    """The middleware checking the node token (none without a cluster secret)."""
    refusals = RefusalLog()

    @web.middleware
    async def check_caller(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            expected_token is not None
            and request.path not in OPEN_PATHS
            and not token_matches(request.headers.get("Authorization"), expected_token)
        ):
            refusals.refused(request.remote or "unknown", request.path)
            raise Unauthorized(
                "this node's API needs the cluster's node token "
                "('Authorization: Bearer ...', derived from the cluster secret; see docs/security.md)"
            )
        return await handler(request)

    return check_caller
