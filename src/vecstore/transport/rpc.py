"""Node RPC: the node's HTTP API carried over one WebSocket per node, msgpack frames.

An HTTP request through aiohttp costs about 0.2 ms of CPU on each side; a WebSocket
message about 0.02 ms. Routers and ingest workers send every node request this way: one
long-lived connection per node (`GET /v1/rpc`, upgraded), many requests in flight on it,
answered in any order.

Frames (msgpack):
- request  `[id, method, path, body]`: body is a map (what the HTTP request's msgpack body
  would be), bytes (an encoded command for `/v1/apply`) or nil;
- response `[id, status, body]`: status and body exactly as the HTTP API answers.

Errors keep their HTTP meaning: a status >= 400 carries the error document. A lost
connection fails every request in flight on it as Unavailable (retriable, like a reset
HTTP connection); the next request reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

import aiohttp
import msgpack

from vecstore.cluster.errors import (
    Forbidden,
    InvalidRequest,
    Timeout,
    Unauthorized,
    Unavailable,
    Unreachable,
    VecStoreError,
    error_from_dict,
)
from vecstore.transport.arrays import ext_hook, msgpack_default

log = logging.getLogger(__name__)

RPC_PATH = "/v1/rpc"
HEARTBEAT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 1 << 30
MAX_IN_FLIGHT = 512
TLS_CLOSE_SECONDS = 1.0
TLS_CLOSE_POLL_SECONDS = 0.005
INTERNAL_ERROR = {"status": "error", "error": "internal error; see the server log", "code": "internal"}
_PARAMETER = re.compile(r"\{(\w+)\}")


def encode_request(request_id: int, method: str, path: str, body: Any) -> bytes:
    """One request frame."""
    try:
        packed: bytes = msgpack.packb(
            [request_id, method, path, body], use_bin_type=True, default=msgpack_default
        )
    except OverflowError:
        raise InvalidRequest("the request has an integer outside -2**63..2**64-1") from None
    return packed


def decode_request(frame: bytes) -> tuple[int, str, str, Any]:
    """`(id, method, path, body)` of a request frame; ValueError if it is not one."""
    try:
        decoded = msgpack.unpackb(frame, raw=False, strict_map_key=False, ext_hook=ext_hook)
    except (ValueError, msgpack.UnpackException) as err:
        raise ValueError(f"RPC frame is not valid msgpack: {err}") from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 4
        or not isinstance(decoded[0], int)
        or not isinstance(decoded[1], str)
        or not isinstance(decoded[2], str)
    ):
        raise ValueError("RPC frame must be [id, method, path, body]")
    request_id, method, path, body = decoded
    return request_id, method, path, body


def encode_response(request_id: int, status: int, body: Any) -> bytes:
    """One response frame."""
    packed: bytes = msgpack.packb([request_id, status, body], use_bin_type=True, default=msgpack_default)
    return packed


def decode_response(frame: bytes) -> tuple[int, int, Any]:
    """`(id, status, body)` of a response frame; ValueError if it is not one."""
    decoded = msgpack.unpackb(frame, raw=False, strict_map_key=False, ext_hook=ext_hook)
    if not isinstance(decoded, list) or len(decoded) != 3:
        raise ValueError("RPC response must be [id, status, body]")
    request_id, status, body = decoded
    return int(request_id), int(status), body


_request_ids = itertools.count(1)


def new_request(method: str, path: str, body: Any) -> tuple[int, bytes]:
    """A fresh request id and its frame (encoded before any connection is made, so a body
    msgpack cannot carry fails as InvalidRequest whatever the state of the network)."""
    request_id = next(_request_ids)
    return request_id, encode_request(request_id, method, path, body)


def _expire(future: asyncio.Future[tuple[int, Any]], address: str) -> None:
    if not future.done():
        future.set_exception(Timeout(f"{address} did not answer in time"))


class RpcUnsupported(Exception):
    """The node does not serve `/v1/rpc` (an older version): use plain HTTP."""


class RpcChannel:
    """One WebSocket to one node, with requests multiplexed on it."""

    def __init__(self, address: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.address = address
        self._ws = ws
        self._pending: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        session: aiohttp.ClientSession,
        base_url: str,
        connect_seconds: float,
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | bool = True,
    ) -> RpcChannel:
        """Connect to `{base_url}/v1/rpc` (http -> ws, https -> wss); RpcUnsupported if the
        server has no such route."""
        address = base_url.split("://", 1)[-1]
        try:
            ws = await asyncio.wait_for(
                session.ws_connect(
                    f"{base_url}{RPC_PATH}",
                    heartbeat=HEARTBEAT_SECONDS,
                    max_msg_size=MAX_RESPONSE_BYTES,
                    headers=headers,
                    ssl=tls,
                ),
                connect_seconds,
            )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise Unauthorized(
                    f"{address} refused the connection: missing or wrong credentials (a router "
                    "asks an API key, a node the cluster's node token: pass the cluster secret)"
                ) from None
            if err.status == 403:
                raise Forbidden(f"{address} refused the API key") from None
            # no such route (an older server), or something in between that does not upgrade
            raise RpcUnsupported(f"{address} answered {err.status} to the upgrade") from None
        except aiohttp.ClientSSLError as err:
            raise Unreachable(tls_complaint(address, err)) from None
        except (aiohttp.ClientError, ConnectionError, OSError) as err:
            raise Unreachable(f"{address} is unreachable: {err}") from None
        except TimeoutError:
            raise Timeout(f"{address} did not accept a connection in time") from None
        return cls(address, ws)

    @property
    def closed(self) -> bool:
        """True once the connection is gone (the next request opens a new one)."""
        return self._ws.closed or self._reader.done()

    async def call(self, method: str, path: str, body: Any, wait_seconds: float) -> Any:
        """Send one request and wait for its answer; server errors raise VecStoreError."""
        request_id, frame = new_request(method, path, body)
        return await self.exchange(request_id, frame, wait_seconds)

    async def exchange(self, request_id: int, frame: bytes, wait_seconds: float) -> Any:
        """Send an encoded request (`new_request`) and wait for its answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, Any]] = loop.create_future()
        self._pending[request_id] = future
        # a timer on the future itself: cheaper than wait_for's extra future and callbacks
        timer = loop.call_later(wait_seconds, _expire, future, self.address)
        try:
            try:
                await self._ws.send_bytes(frame)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as err:
                raise Unavailable(f"{self.address} is unreachable: {err}") from None
            status, answer = await future
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
        if status >= 400:
            raise error_from_dict(answer if isinstance(answer, dict) else {})
        return answer

    async def _read(self) -> None:
        reason = "connection closed"
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.BINARY:
                    if message.type == aiohttp.WSMsgType.ERROR:
                        reason = f"connection failed: {self._ws.exception()}"
                    continue
                try:
                    request_id, status, body = decode_response(message.data)
                except (ValueError, TypeError, msgpack.UnpackException) as err:
                    reason = f"sent a malformed RPC frame ({err})"
                    break
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result((status, body))
        except (aiohttp.ClientError, ConnectionError) as err:
            reason = f"connection lost: {err}"
        finally:
            self._fail_pending(Unavailable(f"{self.address}: {reason}"))
            if not self._ws.closed:
                with contextlib.suppress(Exception):
                    await self._ws.close()

    def _fail_pending(self, err: VecStoreError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(err)
        self._pending.clear()

    async def close(self) -> None:
        """Close the connection; requests in flight fail as Unavailable. Over TLS, returns
        once the socket is closed too (see `_socket_closed`)."""
        tls_socket = self._ws.get_extra_info("socket") if self._ws.get_extra_info("sslcontext") else None
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._fail_pending(Unavailable(f"{self.address}: client closed"))
        if tls_socket is not None:
            await _socket_closed(tls_socket, TLS_CLOSE_SECONDS)


class _Socket(Protocol):
    def fileno(self) -> int: ...


async def _socket_closed(sock: _Socket, seconds: float) -> None:
    """Wait (at most `seconds`) until `sock` is closed.

    Closing a TLS connection first exchanges close_notify alerts with the peer; the socket
    closes only after that, a few loop turns later. A short-lived program (the CLI, a test)
    that ended its event loop sooner would leave the socket to the garbage collector
    ("unclosed transport" warnings). aiohttp waits for its pooled connections on session
    close, but a WebSocket's connection has left the pool.
    """
    for _ in range(round(seconds / TLS_CLOSE_POLL_SECONDS)):  # no event to wait on: poll
        if sock.fileno() == -1:
            return
        await asyncio.sleep(TLS_CLOSE_POLL_SECONDS)


def tls_complaint(address: str, err: aiohttp.ClientSSLError) -> str:
    """What to tell a user whose TLS handshake with `address` failed."""
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return (
            f"{address} has a TLS certificate this client does not trust ({err.certificate_error}); "
            "give the CA that signed it (VECSTORE_TLS_CA_FILE, or --ca-file for the CLI)"
        )
    return f"{address}: the TLS handshake failed ({err}); does it serve HTTPS?"


# ---- server side (the transport-neutral part; node and router adapt it to aiohttp) ------


class PathTemplate:
    """An aiohttp-style path template (`/v1/collections/{name}/search`) matched without aiohttp."""

    def __init__(self, template: str) -> None:
        self.template = template
        parts = _PARAMETER.split(template)
        regex = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)" for index, part in enumerate(parts)
        )
        self._pattern = re.compile(regex)

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters, or None if `path` does not fit."""
        found = self._pattern.fullmatch(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


R = TypeVar("R")
ROUTE_CACHE_SIZE = 4_096


class RouteTable(Generic[R]):
    """Finds which route serves `method path`, remembering the answers (paths repeat: a
    client sends the same few requests over and over)."""

    def __init__(self, routes: Sequence[tuple[str, str, R]]) -> None:
        self._routes = [(method, PathTemplate(path), route) for method, path, route in routes]
        self._found: dict[tuple[str, str], tuple[R, dict[str, str]] | None] = {}
        self._labels: dict[str, str] = {}

    def find(self, method: str, path: str) -> tuple[R, dict[str, str]] | None:
        """The route and its path parameters (a copy), or None."""
        key = (method, path)
        if key not in self._found:
            if len(self._found) >= ROUTE_CACHE_SIZE:
                self._found.clear()
            self._found[key] = next(
                (
                    (route, params)
                    for route_method, template, route in self._routes
                    if route_method == method and (params := template.match(path)) is not None
                ),
                None,
            )
        found = self._found[key]
        return None if found is None else (found[0], dict(found[1]))

    def label(self, path: str) -> str:
        """The template serving `path` (for metrics), or "unmatched"."""
        label = self._labels.get(path)
        if label is None:
            if len(self._labels) >= ROUTE_CACHE_SIZE:
                self._labels.clear()
            label = next((t.template for _, t, _ in self._routes if t.match(path) is not None), "unmatched")
            self._labels[path] = label
        return label


class FrameMessage(Protocol):
    """What a WebSocket message offers (aiohttp's WSMessage)."""

    @property
    def type(self) -> aiohttp.WSMsgType: ...

    @property
    def data(self) -> Any: ...


class FrameSocket(Protocol):
    """The server side of a WebSocket (aiohttp's WebSocketResponse)."""

    @property
    def closed(self) -> bool: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def send_bytes(self, data: bytes) -> None: ...


Dispatch = Callable[[str, str, Any], Awaitable[Any]]
"""`dispatch(method, path, body) -> answer`, raising VecStoreError for errors."""


async def serve_frames(
    ws: FrameSocket,
    dispatch: Dispatch,
    on_answer: Callable[[str, int], None] | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> None:
    """Serve request frames until the client goes: each in its own task, answered as it
    finishes. At most `max_in_flight` run at once; past that the socket is not read
    (back-pressure). `on_answer(path, status)` is called for each request (metrics)."""
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        slots.release()

    async for message in ws:
        if message.type != aiohttp.WSMsgType.BINARY:
            continue
        await slots.acquire()
        task = loop.create_task(_serve_one(ws, message.data, dispatch, on_answer))
        tasks.add(task)
        task.add_done_callback(finished)


async def _serve_one(
    ws: FrameSocket, frame: bytes, dispatch: Dispatch, on_answer: Callable[[str, int], None] | None
) -> None:
    request_id, path = 0, "?"
    try:
        try:
            request_id, method, path, body = decode_request(frame)
        except ValueError as err:
            raise InvalidRequest(str(err)) from None
        status, answer = 200, await dispatch(method, path, body)
    except VecStoreError as err:
        status, answer = err.http_status, err.to_dict()
    except Exception:
        log.exception("unhandled error", extra={"path": path})
        status, answer = 500, INTERNAL_ERROR
    if on_answer is not None:
        on_answer(path, status)
    if ws.closed:
        return
    try:
        response = encode_response(request_id, status, answer)
    except (TypeError, ValueError, OverflowError):
        log.exception("cannot encode an answer", extra={"path": path})
        response = encode_response(request_id, 500, INTERNAL_ERROR)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(response)
