"""An RPC channel over TLS, against a real in-process aiohttp server serving WSS.

The routers and nodes that serve WSS are tested in tests/integration/test_tls.py; here,
what the channel itself promises: a refused certificate is a clear Unreachable, and
`close()` returns with the socket closed (not left to the garbage collector).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from vecstore.cluster.errors import Unreachable
from vecstore.cluster.tls import client_context, server_context
from vecstore.launcher.tls_files import TlsFiles, create_tls_files
from vecstore.transport.rpc import RPC_PATH, RpcChannel, decode_request, encode_response


async def answer_every_frame(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        request_id, _, path, _ = decode_request(message.data)
        await ws.send_bytes(encode_response(request_id, 200, {"path": path}))
    return ws


@pytest.fixture
async def wss(tmp_path: Path) -> AsyncIterator[tuple[str, TlsFiles]]:
    files = create_tls_files(tmp_path / "tls")
    app = web.Application()
    app.router.add_get(RPC_PATH, answer_every_frame)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_context(files.cert, files.key))
    try:
        yield f"https://127.0.0.1:{server.port}", files
    finally:
        await server.close()


async def test_close_returns_once_the_tls_socket_is_closed(wss: tuple[str, TlsFiles]) -> None:
    url, files = wss
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            channel = await RpcChannel.open(session, url, 5.0, None, client_context(files.ca))
            assert await channel.call("GET", "/v1/status", None, 5.0) == {"path": "/v1/status"}
            sock = channel._ws.get_extra_info("socket")
            await channel.close()
            assert channel.closed and sock.fileno() == -1


async def test_an_untrusted_certificate_is_a_clear_unreachable(wss: tuple[str, TlsFiles]) -> None:
    url, _ = wss
    async with aiohttp.ClientSession() as session:
        with pytest.raises(Unreachable, match=r"does not trust.*VECSTORE_TLS_CA_FILE"):
            await RpcChannel.open(session, url, 5.0, None, ssl.create_default_context())
