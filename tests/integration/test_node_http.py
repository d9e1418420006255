"""Bad input to a node's HTTP API: clear 4xx errors, and stored data left intact."""

from __future__ import annotations

import io

import aiohttp
import msgpack

from tests.integration.conftest import SECRET, wait_converged
from tests.integration.test_raft_node import DIM, create, upsert
from vecstore.cluster.codec import CODEC_VERSION, encode_command
from vecstore.cluster.commands import Upsert
from vecstore.cluster.credentials import NodeAccess
from vecstore.launcher.processes import LocalShardGroup
from vecstore.launcher.readiness import readyz_url, wait_ready_async
from vecstore.transport.node_client import NodeClient


async def post(address: str, path: str, **kwargs: object) -> tuple[int, dict[str, object]]:
    """A raw request to a node of the `shard_group` fixture, with its node token."""
    async with (
        aiohttp.ClientSession(headers=NodeAccess.of_secret(SECRET).headers()) as session,
        session.post(f"http://{address}{path}", **kwargs) as response,  # type: ignore[arg-type]
    ):
        return response.status, await response.json()


async def test_bad_requests_get_clear_errors(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    await upsert(client, list(range(10)))
    leader = await client.find_leader()
    before = (await client.status(leader))["digest"]
    msgpack_headers = {"Content-Type": "application/msgpack"}

    cases: list[tuple[str, dict[str, object], int, str]] = [
        ("/v1/apply", {"data": b"\xc1garbage", "headers": msgpack_headers}, 400, "msgpack"),
        (
            "/v1/apply",
            {"data": msgpack.packb([CODEC_VERSION + 1, "upsert", {}]), "headers": msgpack_headers},
            400,
            "version",
        ),
        (
            "/v1/apply",
            {
                "data": encode_command(Upsert.build("docs", [1], [[0.0] * (DIM + 1)])),
                "headers": msgpack_headers,
            },
            400,
            "dimensions",
        ),
        (
            "/v1/apply",
            {"data": encode_command(Upsert.build("nope", [1], [[0.0] * DIM])), "headers": msgpack_headers},
            404,
            "does not exist",
        ),
        (
            "/v1/apply",
            {"data": io.BytesIO(b"x" * (9 * 1024 * 1024)), "headers": msgpack_headers},
            413,
            "the limit is",
        ),
        (
            "/v1/collections/docs/search",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        ("/v1/collections/docs/search", {"json": {"vectors": [[1.0, 2.0]], "k": 3}}, 400, "dimensions"),
        ("/v1/collections/docs/search", {"json": {"vectors": [[1.0] * DIM], "k": 0}}, 400, "k"),
        (
            "/v1/collections/docs/search",
            {"json": {"vector": [1.0] * DIM, "filter": {"must": [{"key": "a"}]}}},
            400,
            "match",
        ),
        ("/v1/collections/nope/points/count", {"json": {}}, 404, "does not exist"),
        ("/v1/collections/docs/points/count", {"json": {"consistency": "sometimes"}}, 400, "consistency"),
    ]
    for path, kwargs, status, fragment in cases:
        got_status, body = await post(leader, path, **kwargs)
        assert got_status == status, (path, kwargs.get("json"), body)
        assert body["status"] == "error"
        assert fragment in str(body["error"]), body

    nan_upsert = Upsert("docs", (1,), DIM, b"\x00\x00\xc0\x7f" * DIM, ({},))
    got_status, body = await post(
        leader, "/v1/apply", data=encode_command(nan_upsert), headers=msgpack_headers
    )
    assert got_status == 400 and "finite" in str(body["error"])

    assert (await client.status(leader))["digest"] == before
    assert await client.count("docs", consistency="strong") == 10


async def test_writes_to_a_follower_name_the_leader(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    leader = await client.find_leader()
    follower = next(a for a in shard_group.http_addresses if a != leader)
    status, body = await post(
        follower,
        "/v1/apply",
        data=encode_command(Upsert.build("docs", [1], [[0.0] * DIM])),
        headers={"Content-Type": "application/msgpack"},
    )
    assert status == 421
    assert body["code"] == "not_leader" and body["leader"] == leader
    status, body = await post(follower, "/v1/collections/docs/points/count", json={"consistency": "strong"})
    assert status == 421


async def test_health_ready_and_metrics(shard_group: LocalShardGroup, client: NodeClient) -> None:
    await create(client)
    await upsert(client, list(range(5)))
    await wait_converged(client, shard_group.http_addresses)
    async with aiohttp.ClientSession() as session:
        for address in shard_group.http_addresses:
            async with session.get(f"http://{address}/healthz") as response:
                assert response.status == 200
            await wait_ready_async(readyz_url(address), 10)
            async with session.get(f"http://{address}/metrics") as response:
                text = await response.text()
                assert response.status == 200
                for name in (
                    "vecstore_apply_seconds",
                    "vecstore_search_seconds",
                    "vecstore_indexing_lag_points",
                    'vecstore_points{collection="docs"} 5.0',
                    "vecstore_raft_term",
                ):
                    assert name in text, name


async def test_bad_topology_requests_get_4xx_and_change_nothing(client: NodeClient) -> None:
    await create(client)
    await upsert(client, list(range(50)))
    leader = await client.find_leader()
    headers = {"Content-Type": "application/msgpack"}
    bad_topology = msgpack.packb(
        [CODEC_VERSION, "install_topology", {"shard_id": 0, "topology": {"epoch": -1, "shards": []}}]
    )
    status, body = await post(leader, "/v1/apply", data=bad_topology, headers=headers)
    assert status == 400 and body["code"] == "malformed_command", body
    bad_copy = msgpack.packb(
        [CODEC_VERSION, "migrate_in", {"command": ["drop_collection", {"name": "docs"}]}]
    )
    status, body = await post(leader, "/v1/apply", data=bad_copy, headers=headers)
    assert status == 400 and "migrate_in" in str(body["error"]), body
    status, body = await post(leader, "/v1/topology/dirty", json={"collection": 7})
    assert status == 400, body
    status, body = await post(leader, "/v1/topology", json={"consistency": "sometimes"})
    assert status == 400, body
    # a copy without a prepared migration is refused, and nothing changed
    copy = msgpack.packb(
        [
            CODEC_VERSION,
            "migrate_in",
            {"command": ["delete_points", {"collection": "docs", "selector": {"ids": [1]}}]},
        ]
    )
    status, body = await post(leader, "/v1/apply", data=copy, headers=headers)
    assert status == 409, body
    assert await client.count("docs", "strong") == 50
    status, body = await post(leader, "/v1/topology", json={})
    assert status == 200 and body["ownership"] is None
