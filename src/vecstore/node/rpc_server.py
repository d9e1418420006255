"""The node's `/v1/rpc` endpoint: its route table over one WebSocket per client.

The upgrade and frame loop are `vecstore.transport.server.RpcEndpoint`; this adapter
dispatches frames to the node's operations and counts them in its metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, NotFound
from vecstore.node.routes import Route, max_body_bytes
from vecstore.node.service import NodeService
from vecstore.transport.rpc import RouteTable
from vecstore.transport.server import Connection, RpcEndpoint


class RpcServer:
    """Serves a route table over WebSockets."""

    def __init__(self, service: NodeService, routes: Sequence[Route]) -> None:
        self.service = service
        self.routes = tuple(routes)
        self._table = RouteTable([(route.method, route.path, route) for route in self.routes])
        # a command over the limit must still arrive whole, to be refused with a 413
        self.endpoint = RpcEndpoint(self._open_connection, 2 * max_body_bytes(service))

    def _open_connection(self, _request: web.Request) -> Connection:
        return self.dispatch, self._count

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
