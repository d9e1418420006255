"""The router's `/v1/rpc` endpoint: the native API over one WebSocket per client.

For clients that send many small requests (one search per user query): a WebSocket
message costs a tenth of an HTTP request's CPU on both sides. Frames are those of the
node RPC (`vecstore.transport.rpc`): `[id, method, path, body]` answered by
`[id, status, body]`, where method, path, body and answer are exactly the native HTTP
API's. The API key is checked when the connection opens (as for any request) and every
frame is checked against the scope its operation needs.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, NotFound
from vecstore.router.app import KEYS, METRICS, SPEC, Handler, scope
from vecstore.router.auth import Scope, presented_key
from vecstore.router.native_api import ROUTES, Call
from vecstore.transport.rpc import RouteTable, serve_frames


class RouterRpc:
    """Serves the native route table over WebSockets."""

    def __init__(self) -> None:
        self._table = RouteTable([(route.method, route.path, route) for route in ROUTES])
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """GET /v1/rpc: upgrade, then serve request frames until the client goes."""
        app = request.app
        key = presented_key(request.headers)
        ws = web.WebSocketResponse(max_msg_size=app[SPEC].router.max_body_bytes, compress=False)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client left during the handshake (aiohttp ignores it after)
            return ws
        self._sockets.add(ws)

        async def dispatch(method: str, path: str, body: Any) -> Any:
            found = self._table.find(method, path)
            if found is None:
                raise NotFound(f"no native API operation {method} {path}")
            route, params = found
            app[KEYS].check(key, route.scope)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise InvalidRequest(f"request body must be an object, got {type(body).__name__}")
            started = time.perf_counter()
            try:
                return await route.op(Call(app, method, params, body))
            finally:
                app[METRICS].request_seconds.labels(route.path).observe(time.perf_counter() - started)

        def count(path: str, status: int) -> None:
            app[METRICS].requests.labels(self._table.label(path), str(status)).inc()

        await serve_frames(ws, dispatch, count)
        return ws

    def route_handler(self) -> Handler:
        """The aiohttp handler (opening a connection needs a read key, like any request)."""

        @scope(Scope.READ)
        async def open_connection(request: web.Request) -> web.StreamResponse:
            return await self.handle(request)

        return open_connection

    async def close_all(self, _app: Any = None) -> None:
        """Close every open connection on shutdown."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
