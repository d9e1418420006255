"""The readiness poll against a real tiny HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import NotReady, probe, readyz_url, wait_ready, wait_ready_async


class Handler(BaseHTTPRequestHandler):
    """Answers /readyz with the server's current status."""

    server: Server

    def do_GET(self) -> None:
        body = b'{"status": "not_ready"}' if self.server.status != 200 else b'{"status": "ok"}'
        self.server.hits += 1
        self.send_response(self.server.status if self.path == "/readyz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, status: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.status = status
        self.hits = 0


def serve(port: int, status: int) -> Server:
    server = Server(port, status)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def port() -> int:
    return free_ports(1)[0]


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


def test_returns_as_soon_as_the_url_answers_200(port: int, servers: list[Server]) -> None:
    servers.append(serve(port, 200))
    waited = wait_ready(readyz_url(f"127.0.0.1:{port}"), timeout=5, interval=0.05)
    assert 0 <= waited < 2
    assert servers[0].hits == 1


def test_waits_while_it_answers_503_then_returns(port: int, servers: list[Server]) -> None:
    server = serve(port, 503)
    servers.append(server)
    threading.Timer(0.4, lambda: setattr(server, "status", 200)).start()
    waited = wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=10, interval=0.05)
    assert waited >= 0.3
    assert server.hits > 1


def test_times_out_naming_the_url_and_the_last_status(port: int, servers: list[Server]) -> None:
    servers.append(serve(port, 503))
    url = f"http://127.0.0.1:{port}/readyz"
    started = time.monotonic()
    with pytest.raises(NotReady) as raised:
        wait_ready(url, timeout=0.5, interval=0.05)
    assert 0.4 < time.monotonic() - started < 3
    assert isinstance(raised.value, TimeoutError)
    message = str(raised.value)
    assert url in message
    assert "HTTP 503" in message and "not_ready" in message
    assert "after 0." in message  # the seconds waited
    assert raised.value.last_status == 503 and raised.value.url == url


def test_connection_refused_until_the_server_appears(port: int, servers: list[Server]) -> None:
    url = readyz_url(f"127.0.0.1:{port}")
    assert probe(url).status is None and "Refused" in str(probe(url))

    def appear() -> None:
        time.sleep(0.5)
        servers.append(serve(port, 200))

    threading.Thread(target=appear, daemon=True).start()
    assert wait_ready(url, timeout=10, interval=0.05) >= 0.4


def test_a_timeout_with_nothing_listening_names_the_error(port: int) -> None:
    url = readyz_url(f"127.0.0.1:{port}")
    with pytest.raises(TimeoutError, match=f"{url}.*ConnectionRefusedError"):
        wait_ready(url, timeout=0.3, interval=0.05)


def test_check_can_give_up_early(port: int) -> None:
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        wait_ready(readyz_url(f"127.0.0.1:{port}"), timeout=10, interval=0.01, check=check)


async def test_async_times_out_and_waits_the_same_way(port: int, servers: list[Server]) -> None:
    url = readyz_url(f"127.0.0.1:{port}")
    server = serve(port, 503)
    servers.append(server)
    with pytest.raises(NotReady, match="HTTP 503"):
        await wait_ready_async(url, timeout=0.3, interval=0.05)
    server.status = 200
    assert await wait_ready_async(url, timeout=5, interval=0.05) < 2


def test_readyz_url() -> None:
    assert readyz_url("127.0.0.1:80") == "http://127.0.0.1:80/readyz"
    assert readyz_url("http://127.0.0.1:80/") == "http://127.0.0.1:80/readyz"
