"""The router's `/v1/rpc` endpoint: the native API over one WebSocket per client.

For clients that send many small requests (one search per user query): a WebSocket
message costs a tenth of an HTTP request's CPU on both sides. Frames are those of the
node RPC (`vecstore.transport.rpc`): `[id, method, path, body]` answered by
`[id, status, body]`, where method, path, body and answer are exactly the native HTTP
API's. The API key is checked when the connection opens (as for any request, by the
app's middleware) and every frame is checked against the scope its operation needs.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, NotFound, VecStoreError
from vecstore.router.aliases import resolve_alias
from vecstore.router.auth import Scope, presented_key
from vecstore.router.context import KEYS, LIMITS, METRICS, record_audit
from vecstore.router.native_api import ROUTES, Call, NativeRoute
from vecstore.transport.rpc import RouteTable
from vecstore.transport.server import Connection, RpcEndpoint


class RouterRpc:
    """Serves the native route table over WebSockets."""

    def __init__(self, max_body_bytes: int) -> None:
        self._table: RouteTable[NativeRoute] = RouteTable([(r.method, r.path, r) for r in ROUTES])
        self.endpoint = RpcEndpoint(self._open_connection, max_body_bytes)

    def _open_connection(self, request: web.Request) -> Connection:
        """How one connection is served: its key, checked against each frame's operation."""
        app = request.app
        key = presented_key(request.headers)
        client = request.remote
        metrics = app[METRICS]
        limits = app[LIMITS]

        async def dispatch(method: str, path: str, body: Any) -> Any:
            found = self._table.find(method, path)
            if found is None:
                raise NotFound(f"no native API operation {method} {path}")
            route, params = found
            limits.check_address(client or "unknown", time.monotonic())
            app[KEYS].check(key, route.scope)
            limits.check_key(key, time.monotonic())
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise InvalidRequest(f"request body must be an object, got {type(body).__name__}")
            started = time.perf_counter()
            status, code, answer = 200, None, None
            try:
                params = dict(params)
                await resolve_alias(app, method, path, params)
                answer = await route.op(Call(app, method, params, body))
                return answer
            except VecStoreError as err:
                status, code = err.http_status, err.code
                raise
            except Exception:
                status, code = 500, "internal"
                raise
            finally:
                metrics.request_seconds.labels(route.path).observe(time.perf_counter() - started)
                if route.scope > Scope.READ:
                    record_audit(app, key, client, method, path, params, status, code, answer)

        def count(path: str, status: int) -> None:
            metrics.requests.labels(self._table.label(path), str(status)).inc()

        return dispatch, count
