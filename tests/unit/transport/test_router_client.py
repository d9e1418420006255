"""RouterClient against a real in-process HTTP server that answers like a router.

The scripted server speaks HTTP only (`rpc=False`); the RPC transport is tested against a
real router in tests/integration/test_router_rpc.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from vecstore.cluster.errors import CollectionNotFound, InvalidVector, Unavailable, VecStoreError
from vecstore.launcher.processes import free_ports
from vecstore.transport.router_client import RouterClient, normalize_router_url, point_body


class FakeRouter:
    """Records requests; answers from a script, else `{"status": "ok"}`."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, Any] | str]] = []
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = msgpack.unpackb(raw, raw=False) if raw else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        status, answer = self.answers.pop(0) if self.answers else (200, {"status": "ok"})
        if isinstance(answer, str):
            return web.Response(text=answer, status=status, content_type="text/html")
        return web.Response(body=msgpack.packb(answer), status=status, content_type="application/msgpack")

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    fake = FakeRouter()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    yield fake
    await fake.server.close()


def test_router_urls_are_normalized() -> None:
    assert normalize_router_url("127.0.0.1:6333") == "http://127.0.0.1:6333"
    assert normalize_router_url(" https://db.example:443/ ") == "https://db.example:443"
    with pytest.raises(ValueError, match="empty"):
        normalize_router_url("  ")


def test_point_body_leaves_out_a_missing_payload() -> None:
    assert point_body(3, (1.0, 2.0), None) == {"id": 3, "vector": [1.0, 2.0]}
    assert point_body("u", [1.0], {"a": 1})["payload"] == {"a": 1}


async def test_sends_msgpack_with_the_api_key_and_reads_answers(router: FakeRouter) -> None:
    router.answers = [(200, {"status": "ok", "upserted": 2})]
    async with RouterClient(router.url, api_key="secret-key-1", rpc=False) as client:
        written = await client.upsert("docs", [point_body(1, [0.5], None), point_body(2, [1.5], {"a": 1})])
    assert written == 2
    method, path, headers, body = router.requests[0]
    assert (method, path) == ("PUT", "/v1/collections/docs/points")
    assert headers["api-key"] == "secret-key-1"
    assert headers["Content-Type"] == "application/msgpack"
    assert body == {"points": [{"id": 1, "vector": [0.5]}, {"id": 2, "vector": [1.5], "payload": {"a": 1}}]}


async def test_search_and_scroll_bodies(router: FakeRouter) -> None:
    router.answers = [
        (200, {"status": "ok", "results": [[{"id": 1, "score": 0.9}]]}),
        (200, {"status": "ok", "points": [{"id": 1}], "next_offset": 2}),
    ]
    async with RouterClient(router.url, rpc=False) as client:
        hits = await client.search("docs", [[1.0, 0.0]], k=3, filter={"must": []}, ef=32)
        page, next_offset = await client.scroll("docs", offset=0, limit=1, with_vector=True)
    assert hits == [[{"id": 1, "score": 0.9}]]
    assert (page, next_offset) == ([{"id": 1}], 2)
    search_body = router.requests[0][3]
    assert search_body["filter"] == {"must": []} and search_body["ef"] == 32 and search_body["k"] == 3
    assert "api-key" not in router.requests[0][2]
    assert router.requests[1][3]["with_vector"] is True


async def test_errors_come_back_as_vecstore_errors(router: FakeRouter) -> None:
    router.answers = [
        (404, CollectionNotFound("nope").to_dict()),
        (400, InvalidVector("vector has 3 dimensions").to_dict()),
    ]
    async with RouterClient(router.url, rpc=False) as client:
        with pytest.raises(CollectionNotFound):
            await client.collection_info("nope")
        with pytest.raises(InvalidVector, match="3 dimensions"):
            await client.upsert("docs", [point_body(1, [1.0, 2.0, 3.0], None)])
    assert len(router.requests) == 2  # neither is retried


async def test_retries_unavailable_until_it_answers(router: FakeRouter) -> None:
    unavailable: tuple[int, dict[str, Any] | str] = (503, Unavailable("no leader").to_dict())
    router.answers = [unavailable, unavailable, (200, {"status": "ok", "dropped": False})]
    async with RouterClient(router.url, deadline_seconds=5, rpc=False) as client:
        assert await client.drop_collection("docs") is False
    assert len(router.requests) == 3


async def test_gives_up_on_unavailable_at_the_deadline(router: FakeRouter) -> None:
    router.answers = [(503, Unavailable("no leader").to_dict())] * 50
    async with RouterClient(router.url, deadline_seconds=0.3, rpc=False) as client:
        with pytest.raises(Unavailable, match="no leader"):
            await client.count("docs")


async def test_a_refused_connection_fails_fast() -> None:
    started = time.monotonic()
    async with RouterClient(f"127.0.0.1:{free_ports(1)[0]}", connect_seconds=0.3) as client:
        with pytest.raises(Unavailable, match="unreachable"):
            await client.list_collections()
    assert time.monotonic() - started < 5


async def test_ready_is_false_on_503(router: FakeRouter) -> None:
    router.answers = [(503, {"status": "not_ready"}), (200, {"status": "ok"})]
    async with RouterClient(router.url, rpc=False) as client:
        assert await client.ready() is False
        assert await client.ready() is True


async def test_a_non_vecstore_answer_is_named(router: FakeRouter) -> None:
    router.answers = [(502, "<html>bad gateway</html>")]
    async with RouterClient(router.url, rpc=False) as client:
        with pytest.raises(VecStoreError, match="not a VecStore response"):
            await client.call("GET", "/v1/collections")
