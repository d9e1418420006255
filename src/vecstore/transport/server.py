"""The server half of the transport, shared by the node's and the router's aiohttp apps:
answering in the client's encoding, reading bodies, mapping errors to statuses, and the
`/v1/rpc` WebSocket endpoint.

Every error body is `{"status": "error", "error": ..., "code": ...}` with the error class's
HTTP status. A client's error is logged as one line, never a traceback (a flood of bad
requests must not flood the log); only the unexpected is logged with its traceback and
answered as a 500 that says where to look, never with the exception text.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from vecstore.cluster.errors import PayloadTooLarge, VecStoreError
from vecstore.cluster.nesting import MAX_BODY_DEPTH, check_depth
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


LOGGED_MESSAGE_CHARS = 300
"""An error message is cut to this in the log (it may quote what the client sent)."""


def _one_line(text: str) -> str:
    """`text` cut to LOGGED_MESSAGE_CHARS, line breaks escaped: a client cannot forge log lines."""
    return text[:LOGGED_MESSAGE_CHARS].replace("\r", "\\r").replace("\n", "\\n")


def error_answer(err: BaseException, route: str, who: str) -> tuple[int, dict[str, Any]]:
    """The status and body for an exception a handler raised, logged as one line (a
    traceback only for the unexpected). `who` names the process ("node", "router") in
    the message of an internal error."""
    if isinstance(err, VecStoreError):
        status, body = err.http_status, err.to_dict()
        # a known error answered as 5xx (no leader, timeout) is the cluster's state, not a bug
        level = logging.WARNING if status >= 500 and status != 501 else logging.INFO
        _log_answer(logging.DEBUG if err.retriable and status < 500 else level, status, body, route)
        return status, body
    if isinstance(err, web.HTTPRequestEntityTooLarge):
        status, body = 413, PayloadTooLarge(f"request body too large: {err.text}").to_dict()
    elif isinstance(err, web.HTTPException):
        status, body = err.status, {"status": "error", "error": err.reason, "code": "http"}
    else:
        log.error("unhandled %s error", who, exc_info=err, extra={"route": route})
        return 500, {"status": "error", "error": f"internal error; see the {who} log", "code": "internal"}
    _log_answer(logging.INFO, status, body, route)
    return status, body


def _log_answer(level: int, status: int, body: dict[str, Any], route: str) -> None:
    log.log(
        level,
        "answered %d %s: %s",
        status,
        body.get("code"),
        _one_line(str(body.get("error"))),
        extra={"route": route},
    )


class OneLineClientErrors(logging.Filter):
    """For aiohttp's own logger ("aiohttp.server"): a request that is not even valid HTTP
    (bad header, bad chunking, bad method) is the client's error, so it becomes
    one INFO line of ours instead of aiohttp's ERROR with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if isinstance(err, HttpProcessingError) and 400 <= err.code < 500:
            detail = " ".join(str(err).split())[:LOGGED_MESSAGE_CHARS]  # aiohttp's has line breaks
            client = record.args[0] if isinstance(record.args, tuple) and record.args else "unknown"
            log.info("malformed HTTP request: %s", detail, extra={"client": client})
            return False
        return True


_ONE_LINE_CLIENT_ERRORS = OneLineClientErrors()


def quiet_malformed_http() -> None:
    """Install OneLineClientErrors on aiohttp's server logger (once, however often called)."""
    logging.getLogger("aiohttp.server").addFilter(_ONE_LINE_CLIENT_ERRORS)


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

        async def bounded(method: str, path: str, body: Any) -> Any:
            # frames skip decode_body: bound their nesting here, as for HTTP bodies
            check_depth(body, MAX_BODY_DEPTH, "request body")
            return await dispatch(method, path, body)

        ws = web.WebSocketResponse(max_msg_size=self._max_msg_size, compress=False)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client left during the handshake (aiohttp ignores it after)
            return ws
        self._sockets.add(ws)
        await serve_frames(ws, bounded, on_answer)
        return ws

    async def close_all(self, _app: Any = None) -> None:
        """Close every open connection (clients reconnect, elsewhere if need be)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
