"""NodeClient against real in-process HTTP servers: leader following and retries.

The scripted servers speak HTTP only (`rpc=False`); the RPC transport is tested against
real nodes in tests/integration/test_node_rpc.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from vecstore.cluster.commands import DropCollection
from vecstore.cluster.errors import CollectionNotFound, InvalidRequest, NotLeader, Unavailable
from vecstore.transport.node_client import NodeClient


class FakeNode:
    """A real aiohttp server that answers like a node would, by script."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, object]]] = []
        self.calls = 0
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        status, body = self.answers.pop(0) if self.answers else (200, {"status": "ok"})
        return web.json_response(body, status=status)

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
async def nodes() -> AsyncIterator[list[FakeNode]]:
    fakes = [FakeNode(), FakeNode()]
    for fake in fakes:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        fake.server = TestServer(app, host="127.0.0.1")
        await fake.server.start_server()
    yield fakes
    for fake in fakes:
        assert fake.server is not None
        await fake.server.close()


async def test_follows_the_leader_hint(nodes: list[FakeNode]) -> None:
    follower, leader = nodes
    follower.answers = [(421, NotLeader(leader.address).to_dict())]
    async with NodeClient([follower.address, leader.address], rpc=False) as client:
        client.leader = follower.address
        assert (await client.apply(DropCollection("docs")))["status"] == "ok"
        assert client.leader == leader.address
        assert follower.calls == 1 and leader.calls == 1


async def test_retries_unavailable_then_succeeds(nodes: list[FakeNode]) -> None:
    node = nodes[0]
    node.answers = [(503, Unavailable("busy").to_dict()), (503, Unavailable("busy").to_dict())]
    retries: list[int] = []
    async with NodeClient([node.address], on_retry=lambda: retries.append(1), rpc=False) as client:
        answer = await client.request("any", "GET", "/v1/status")
    assert answer["status"] == "ok"
    assert node.calls == 3 and len(retries) == 2


async def test_non_retriable_errors_surface_at_once(nodes: list[FakeNode]) -> None:
    node = nodes[0]
    node.answers = [(404, CollectionNotFound("docs").to_dict())]
    async with NodeClient([node.address], rpc=False) as client:
        with pytest.raises(CollectionNotFound):
            await client.count("docs")
    node.answers = [(400, InvalidRequest("bad k").to_dict())]
    async with NodeClient([node.address], rpc=False) as client:
        with pytest.raises(InvalidRequest, match="bad k"):
            await client.count("docs")
    assert node.calls == 2


async def test_gives_up_at_the_deadline_with_the_last_error() -> None:
    async with NodeClient(["127.0.0.1:1"], deadline_seconds=0.5) as client:
        with pytest.raises(Unavailable, match="unreachable"):
            await client.request("any", "GET", "/v1/status")


async def test_a_body_msgpack_cannot_carry_is_an_invalid_request() -> None:
    async with NodeClient(["127.0.0.1:1"], deadline_seconds=0.5) as client:
        with pytest.raises(InvalidRequest, match="outside -2\\*\\*63"):
            await client.call("127.0.0.1:1", "POST", "/v1/collections/c/search", {"vectors": [[2**70]]})
