"""The node's `/v1/rpc` endpoint: its route table over one WebSocket per client.

The frame loop is `vecstore.transport.rpc.serve_frames`; this adapter upgrades the
connection, dispatches frames to the node's operations and counts them in its metrics.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, NotFound
from vecstore.node.routes import Route, max_body_bytes
from vecstore.node.service import NodeService
from vecstore.transport.rpc import RouteTable, serve_frames


class RpcServer:
    """Serves a route table over WebSockets."""

    def __init__(self, service: NodeService, routes: Sequence[Route]) -> None:
        self.service = service
        self.routes = tuple(routes)
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._table = RouteTable([(route.method, route.path, route) for route in self.routes])

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """GET /v1/rpc: upgrade, then serve request frames until the client goes."""
        # a command over the limit must still arrive whole, to be refused with a 413
        ws = web.WebSocketResponse(max_msg_size=2 * max_body_bytes(self.service), compress=False)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client left during the handshake (aiohttp ignores it after)
            return ws
        self._sockets.add(ws)
        await serve_frames(ws, self.dispatch, self._count)
        return ws

    async def dispatch(self, method: str, path: str, body: Any) -> Any:
        """Run one request frame's operation."""
        found = self._table.find(method, path)
        if found is None:
            raise NotFound(f"no RPC operation {method} {path}")
        route, params = found
        if route.raw_body:
            body = body if isinstance(body, bytes) else None
        elif body is None:
            body = {}
        elif not isinstance(body, dict):
            raise InvalidRequest(f"request body must be an object, got {type(body).__name__}")
        return await route.op(self.service, params, body)

    def _count(self, path: str, status: int) -> None:
        self.service.metrics.requests.labels(self._table.label(path), str(status)).inc()

    async def close_all(self, _app: Any = None) -> None:
        """Close every open connection (on shutdown: clients reconnect elsewhere)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
