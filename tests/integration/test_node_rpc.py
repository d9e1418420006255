"""The node's `/v1/rpc` endpoint: the same operations and errors as HTTP, over one WebSocket."""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
from typing import Any

import aiohttp
import msgpack
import numpy as np
import pytest
from aiohttp import web

from tests.integration.test_raft_node import DIM, create, upsert, vectors_for
from vecstore.cluster.codec import encode_command
from vecstore.cluster.commands import Upsert
from vecstore.cluster.errors import InvalidRequest, NotLeader, PayloadTooLarge, Unavailable
from vecstore.launcher.processes import LocalShardGroup, free_ports
from vecstore.transport.node_client import NodeClient
from vecstore.transport.rpc import RPC_PATH, decode_response, encode_request


async def test_rpc_answers_like_http(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    await upsert(client, list(range(200)))
    leader = await client.find_leader()
    query = vectors_for([7]).tolist()
    async with NodeClient([leader], rpc=False, access=shard_group.access) as http:
        for consistency in ("strong", "leader"):
            by_rpc = await client.search("docs", query, 5, consistency=consistency)
            by_http = await http.search("docs", query, 5, consistency=consistency)
            # the same hits (scores may differ in the last bit: exact tail vs index once indexed)
            assert [[(h["id"], h["payload"]) for h in row] for row in by_rpc] == [
                [(h["id"], h["payload"]) for h in row] for row in by_http
            ]
            assert [h["score"] for h in by_rpc[0]] == pytest.approx(
                [h["score"] for h in by_http[0]], abs=1e-5
            )
            assert by_rpc[0][0]["id"] == 7
        assert await client.count("docs", consistency="leader") == await http.count("docs") == 200
        ids = [3, 4, 999]
        assert await client.get("docs", ids, consistency="leader") == await http.get("docs", ids)
        rpc_status, http_status = await client.status(leader), await http.status(leader)
        assert rpc_status["digest"] == http_status["digest"]
    assert client._channels, "the client should have talked over RPC"


async def test_rpc_errors_are_the_http_errors(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    await upsert(client, [1, 2, 3])
    leader = await client.find_leader()
    with pytest.raises(InvalidRequest, match="dimensions"):
        await client.search("docs", [[1.0, 2.0]], 3, consistency="leader")
    too_big = Upsert.build("docs", list(range(150_000)), np.ones((150_000, DIM), dtype=np.float32))
    with pytest.raises(PayloadTooLarge, match="the limit is"):
        await client.call(leader, "POST", "/v1/apply", raw=encode_command(too_big))
    follower = next(a for a in shard_group.http_addresses if a != leader)
    with pytest.raises(NotLeader) as raised:
        await client.call(
            follower, "POST", "/v1/apply", raw=encode_command(Upsert.build("docs", [9], vectors_for([9])))
        )
    assert raised.value.leader == leader
    assert await client.count("docs", consistency="strong") == 3


async def test_malformed_frames_get_errors_and_the_connection_survives(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    leader = await client.find_leader()
    async with (
        aiohttp.ClientSession(headers=shard_group.access.headers()) as session,
        session.ws_connect(f"http://{leader}{RPC_PATH}") as ws,
    ):
        frames = [
            b"\xc1 not msgpack",
            msgpack.packb({"not": "a list"}),
            encode_request(5, "POST", "/v1/collections/docs/search", ["not", "a", "map"]),
            encode_request(6, "POST", "/v1/no/such/thing", {}),
            encode_request(7, "POST", "/v1/collections/nope/points/count", {}),
            encode_request(8, "POST", "/v1/apply", {"a": "map, not a command"}),
            encode_request(9, "POST", "/v1/collections/docs/points/count", {}),
        ]
        for frame in frames:
            await ws.send_bytes(frame)
        answers: dict[int, list[tuple[int, Any]]] = {}
        for _ in frames:
            request_id, status, body = decode_response((await ws.receive(timeout=10)).data)
            answers.setdefault(request_id, []).append((status, body))
    assert sorted(status for status, _ in answers[0]) == [400, 400]  # undecodable: no id to answer
    assert answers[5][0][0] == 400 and "object" in answers[5][0][1]["error"]
    assert answers[6][0][0] == 404 and "no RPC operation" in answers[6][0][1]["error"]
    assert answers[7][0][0] == 404 and "does not exist" in answers[7][0][1]["error"]
    assert answers[8][0][0] == 400 and "application/msgpack" in answers[8][0][1]["error"]
    assert answers[9] == [(200, {"status": "ok", "count": 0, "epoch": None})]


async def test_a_killed_node_fails_requests_in_flight_as_unavailable(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    leader = await client.find_leader()
    follower = next(a for a in shard_group.http_addresses if a != leader)
    assert (await client.status(follower))["node_id"]
    node = shard_group.by_http(follower)
    node.signal(signal.SIGSTOP)
    pending = asyncio.ensure_future(client.status(follower))
    await asyncio.sleep(0.3)
    assert not pending.done()
    node.signal(signal.SIGKILL)  # no SIGCONT first: the request must never be answered
    with pytest.raises(Unavailable):
        await asyncio.wait_for(pending, 5)
    node.kill()
    with pytest.raises(Unavailable):  # a new connection is refused too
        await client.status(follower)
    assert await client.count("docs") == 0  # eventual reads rotate to the live replicas


async def test_falls_back_to_http_when_the_node_has_no_rpc_endpoint() -> None:
    async def count(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "count": 42})

    app = web.Application()
    app.router.add_post("/v1/collections/docs/points/count", count)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_ports(1)[0]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with NodeClient([f"127.0.0.1:{port}"]) as node_client:
            assert await node_client.count("docs") == 42
            assert await node_client.count("docs") == 42
            assert node_client._http_only == {f"127.0.0.1:{port}"}
    finally:
        await runner.cleanup()


async def test_a_client_leaving_during_the_handshake_is_not_an_error(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    address = shard_group.http_addresses[0]
    host, port = address.rsplit(":", 1)
    upgrade = (
        f"GET {RPC_PATH} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    for _ in range(100):  # reset right after the upgrade request, as a killed router does
        with socket.create_connection((host, int(port))) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.sendall(upgrade)
    assert (await client.status(address))["node_id"]  # still serving
    log = shard_group.by_http(address).log_path.read_text()
    assert "unhandled error" not in log
