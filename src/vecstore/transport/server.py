"""The server half of the transport, shared by the node's and the router's aiohttp apps:
answering in the client's encoding, reading bodies, mapping errors to statuses, and the
`/v1/rpc` WebSocket endpoint.

Every error body is `{"status": "error", "error": ..., "code": ...}` with the error class's
HTTP status; anything unexpected is logged with its traceback and answered as a 500 that
says where to look, never with the exception text.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import PayloadTooLarge, VecStoreError
from vecstore.transport.rpc import Dispatch, serve_frames
from vecstore.transport.wire import JSON, MSGPACK, decode_body, encode_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AnswerHook = Callable[[str, int], None]
"""`hook(path, status)`, called once per RPC frame answered (metrics)."""
Connection = tuple[Dispatch, AnswerHook | None]
"""How one WebSocket connection is served: its dispatcher and its answer hook."""


def respond(request: web.Request, body: Any, status: int = 200) -> web.Response:
    """JSON, or msgpack when the client accepts it."""
    kind = MSGPACK if MSGPACK in request.headers.get("Accept", "") else JSON
    return web.Response(body=encode_body(body, kind), status=status, content_type=kind)


async def body_of(request: web.Request) -> dict[str, Any]:
    """The decoded request body, an object (JSON or msgpack); InvalidRequest otherwise."""
    return decode_body(await request.read(), request.content_type)


def route_label(request: web.Request) -> str:
    """The route's path template, for metrics and logs ("unmatched" for a 404)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def error_answer(err: BaseException, route: str, who: str) -> tuple[int, dict[str, Any]]:
    """The status and body for an exception a handler raised. `who` names the process
    ("node", "router") in the message of an internal error."""
    if isinstance(err, VecStoreError):
        return err.http_status, err.to_dict()
    if isinstance(err, web.HTTPRequestEntityTooLarge):
        return 413, PayloadTooLarge(f"request body too large: {err.text}").to_dict()
    if isinstance(err, web.HTTPException):
        return err.status, {"status": "error", "error": err.reason, "code": "http"}
    log.error("unhandled %s error", who, exc_info=err, extra={"route": route})
    return 500, {"status": "error", "error": f"internal error; see the {who} log", "code": "internal"}


class RpcEndpoint:
    """`GET /v1/rpc`: upgrades to a WebSocket and serves request frames (`serve_frames`)
    until the client goes; `close_all` on shutdown."""

    def __init__(self, open_connection: Callable[[web.Request], Connection], max_msg_size: int) -> None:
        self._open_connection = open_connection
        self._max_msg_size = max_msg_size
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Upgrade, then serve frames. `open_connection(request)` runs before the upgrade,
        so it can refuse the connection with an HTTP error."""
        dispatch, on_answer = self._open_connection(request)
        ws = web.WebSocketResponse(max_msg_size=self._max_msg_size, compress=False)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client left during the handshake (aiohttp ignores it after)
            return ws
        self._sockets.add(ws)
        await serve_frames(ws, dispatch, on_answer)
        return ws

    async def close_all(self, _app: Any = None) -> None:
        """Close every open connection (clients reconnect, elsewhere if need be)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
