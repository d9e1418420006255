"""The router's probes of issue 14, replayed against a real 2-shard cluster with no API keys
(the default): cross-origin writes, CORS, nesting, `"filter": null`, logged tracebacks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgpack
import pytest

from tests.integration.conftest import _wait_router_ready, started_cluster
from vecstore.launcher.local_cluster import LocalCluster

pytestmark = pytest.mark.security

ALLOWED = "https://app.example.com"
EVIL = "https://evil.example.net"
POINTS = 40


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """2 shards x 1 replica; the router allows one web origin."""
    directory = tmp_path_factory.mktemp("router-security")
    yield from started_cluster(
        directory,
        shards=2,
        replicas=1,
        router_env={"VECSTORE_CORS_ORIGINS": ALLOWED},
        ready=_ready_and_loaded,
    )


async def _ready_and_loaded(local: LocalCluster) -> None:
    await _wait_router_ready(local.router_url)
    await _load(local.router_url)


async def _load(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{url}/v1/collections/docs", json={"dimension": 4}) as response:
            assert response.status == 200, await response.text()
        points = [{"id": i, "vector": [1.0, float(i), 0.0, 0.5], "payload": {"n": i}} for i in range(POINTS)]
        async with session.put(f"{url}/v1/collections/docs/points", json={"points": points}) as response:
            assert response.status == 200, await response.text()


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, dict(response.headers)


async def _count(url: str) -> int:
    status, body, _ = await _call(
        "POST", f"{url}/v1/collections/docs/points/count", json={"consistency": "strong"}
    )
    assert status == 200 and body is not None
    return int(body["count"])


async def test_cross_origin_text_plain_write_is_refused(cluster: LocalCluster) -> None:
    url = cluster.router_url
    # what a form or fetch() on any web page may send without a preflight
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        status, body, headers = await _call(
            "POST",
            f"{url}/v1/collections/docs/points/delete",
            data=b'{"ids": [1, 2, 3]}',
            headers={"Content-Type": content_type, "Origin": EVIL},
        )
        assert status == 415, (content_type, body)
        assert body is not None and body["code"] == "unsupported_media_type"
        assert "application/json" in body["error"]
        assert "Access-Control-Allow-Origin" not in headers
    status, body, _ = await _call(
        "POST",
        f"{url}/collections/docs/points/delete",
        data=b'{"points": [1]}',
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415, body  # the Qdrant-compatible routes too
    assert await _count(url) == POINTS


async def test_preflight_only_for_configured_origins(cluster: LocalCluster) -> None:
    url = f"{cluster.router_url}/v1/collections/docs/points/delete"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    status, _, headers = await _call("OPTIONS", url, headers={"Origin": EVIL, **ask})
    assert status == 403
    assert "Access-Control-Allow-Origin" not in headers
    status, _, headers = await _call("OPTIONS", url, headers={"Origin": ALLOWED, **ask})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "content-type" in headers["Access-Control-Allow-Headers"]
    count_url = f"{cluster.router_url}/v1/collections/docs/points/count"
    _, _, allowed = await _call("POST", count_url, json={}, headers={"Origin": ALLOWED})
    assert allowed["Access-Control-Allow-Origin"] == ALLOWED
    _, _, refused = await _call("POST", count_url, json={}, headers={"Origin": EVIL})
    assert "Access-Control-Allow-Origin" not in refused


async def test_deep_payloads_and_bodies_are_400_and_store_nothing(cluster: LocalCluster) -> None:
    url = cluster.router_url
    for levels in (33, 500):
        point = {"id": 10_000 + levels, "vector": [1.0, 0.0, 0.0, 0.0], "payload": nested(levels)}
        status, body, _ = await _call("PUT", f"{url}/v1/collections/docs/points", json={"points": [point]})
        assert status == 400, (levels, body)
        assert body is not None and "nested deeper than" in body["error"]
        status, body, _ = await _call("PUT", f"{url}/collections/docs/points", json={"points": [point]})
        assert status == 400, (levels, body)
    point = {"id": 20_000, "vector": [1.0, 0.0, 0.0, 0.0], "payload": nested(32)}  # at the bound: fine
    status, body, _ = await _call("PUT", f"{url}/v1/collections/docs/points", json={"points": [point]})
    assert status == 200, body
    status, body, _ = await _call(
        "POST", f"{url}/collections/docs/points", json={"ids": [20_000], "with_payload": True}
    )
    assert status == 200, body  # a Qdrant read of the deepest storable payload works
    status, body, _ = await _call("POST", f"{url}/v1/collections/docs/points/delete", json={"ids": [20_000]})
    assert status == 200, body
    deep_json = b'{"x":' * 10_000 + b"1" + b"}" * 10_000
    for path in ("/v1/collections/docs/points/count", "/collections/docs/points/count"):
        status, body, _ = await _call(
            "POST", f"{url}{path}", data=deep_json, headers={"Content-Type": "application/json"}
        )
        assert status == 400, (path, body)
    for levels in (40, 400):  # 40: within the body bound, refused by the filter translation
        qdrant_filter: dict[str, Any] = {"must": [{"key": "n", "match": {"value": 1}}]}
        for _ in range(levels):
            qdrant_filter = {"must": [qdrant_filter]}
        for path in ("/collections/docs/points/count", "/collections/docs/points/delete"):
            status, body, _ = await _call("POST", f"{url}{path}", json={"filter": qdrant_filter})
            assert status == 400, (levels, path, body)
            assert "nested deeper than" in str(body), body
    assert await _count(url) == POINTS


async def test_deep_rpc_frames_are_400(cluster: LocalCluster) -> None:
    """The router's /v1/rpc frames skip HTTP body decoding: they are bounded too."""
    deep: Any = 1
    for _ in range(1_000):  # msgpack decodes it; repr() of it would overflow the stack
        deep = [deep]
    requests = [
        (
            "PUT",
            "/v1/collections/docs/points",
            {"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": {"d": deep}}]},
        ),
        (
            "POST",
            "/v1/collections/docs/points/count",
            {"filter": {"must": [{"key": "n", "match": {"value": deep}}]}},
        ),
        ("POST", "/v1/collections/docs/search", {"vector": [1, 0, 0, 0], "k": deep}),
        ("PUT", "/v1/collections/deep", {"dimension": deep}),
    ]
    ws_url = cluster.router_url.replace("http://", "ws://", 1) + "/v1/rpc"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        for request_id, (method, path, body) in enumerate(requests, start=1):
            await ws.send_bytes(msgpack.packb([request_id, method, path, body]))
            answered_id, status, answer = msgpack.unpackb((await ws.receive()).data)
            assert (answered_id, status) == (request_id, 400), (path, answer)
            assert "nested deeper than" in answer["error"]
    assert await _count(cluster.router_url) == POINTS


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/v1/collections/docs/points/count", {"filter": None}, 200),
        ("POST", "/v1/collections/docs/points/scroll", {"filter": None}, 200),
        ("POST", "/v1/collections/docs/search", {"vector": [1, 0, 0, 0], "filter": None}, 200),
        ("POST", "/v1/collections/docs/points/delete", {"filter": None}, 400),
        ("POST", "/v1/collections/docs/points/payload", {"filter": None, "payload": {"a": 1}}, 400),
        ("POST", "/v1/collections/docs/points/payload/delete", {"filter": None, "keys": ["a"]}, 400),
        ("POST", "/v1/collections/docs/points/delete", {"filter": None, "ids": None}, 400),
    ],
)
async def test_null_filter_is_no_filter_never_500(
    cluster: LocalCluster, method: str, path: str, body: dict[str, Any], expected: int
) -> None:
    status, answer, _ = await _call(method, f"{cluster.router_url}{path}", json=body)
    assert status == expected, answer
    assert await _count(cluster.router_url) == POINTS


async def _points_with_key(url: str, collection: str, key: str) -> list[Any]:
    body = {"limit": 1000, "with_payload": True, "consistency": "strong"}
    status, answer, _ = await _call("POST", f"{url}/v1/collections/{collection}/points/scroll", json=body)
    assert status == 200 and answer is not None
    return [point["id"] for point in answer["points"] if key in (point.get("payload") or {})]


async def test_multi_shard_payload_change_is_all_or_nothing(cluster: LocalCluster) -> None:
    """A merge that overflows one point's payload limit on one shard used to answer 413
    after the other shard had applied it; now every shard is asked first."""
    url = cluster.router_url
    status, body, _ = await _call("PUT", f"{url}/v1/collections/big", json={"dimension": 2})
    assert status == 200, body
    payloads: list[dict[str, Any]] = [{"n": i} for i in range(20)]
    payloads[0]["blob"] = "x" * (60 * 1024)  # near the 64 KiB payload limit
    points = [{"id": i, "vector": [1.0, float(i)], "payload": payloads[i]} for i in range(20)]
    status, body, _ = await _call("PUT", f"{url}/v1/collections/big/points", json={"points": points})
    assert status == 200, body
    status, answer, _ = await _call("GET", f"{url}/v1/status")
    assert status == 200 and answer is not None
    shards_holding = {
        n["shard_id"] for n in answer["nodes"] if n.get("collections", {}).get("big", {}).get("points")
    }
    assert len(shards_holding) == 2, answer  # both shards hold some of the 20 points
    added = {"added": "y" * (8 * 1024)}
    attempts = [
        {"filter": {"must": [{"key": "n", "range": {"gte": 0}}]}, "payload": added},
        {"ids": list(range(20)), "payload": added},
    ]
    for attempt in attempts:
        status, body, _ = await _call("POST", f"{url}/v1/collections/big/points/payload", json=attempt)
        assert status == 413, body
        assert body is not None and body.get("partial") is False, body
        assert await _points_with_key(url, "big", "added") == []
    small = {"ids": list(range(1, 20)), "payload": {"added": "ok"}}  # fits everywhere: applied
    status, body, _ = await _call("POST", f"{url}/v1/collections/big/points/payload", json=small)
    assert status == 200, body
    assert sorted(await _points_with_key(url, "big", "added")) == list(range(1, 20))


async def test_malformed_requests_log_no_traceback(cluster: LocalCluster) -> None:
    """Run last in the module: the router log then also covers every probe above (a 500
    logs a traceback; before, deep bodies and payloads did)."""
    url = cluster.router_url
    bad = [
        ("POST", "/v1/collections/docs/search", b"{not json"),
        ("POST", "/collections/docs/points/search", b'{"vector": "x"}'),
        ("PUT", "/v1/collections/docs/points", b'{"points": [{"id": -1}]}'),
        ("POST", "/v1/collections/nope/points/count", b"{}"),
    ]
    for method, path, data in bad:
        status, _, _ = await _call(
            method, f"{url}{path}", data=data, headers={"Content-Type": "application/json"}
        )
        assert 400 <= status < 500, path
    host, port = url.removeprefix("http://").rsplit(":", 1)
    not_http = [  # not even valid HTTP: aiohttp itself answers 400 (and used to log a traceback)
        b"POST /v1/collections/docs/points/count HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/collections HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /v1/collections HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    ]
    for raw in not_http:
        assert (await _raw_exchange(host, int(port), raw)).startswith(b"HTTP/1.0 400"), raw
    log = await asyncio.to_thread((cluster.data_dir / "logs" / "router-0.log").read_text)
    assert "Traceback" not in log
    assert "Error handling request" not in log and "unhandled" not in log
    # each client error is still one line, for whoever investigates
    assert "answered 400 invalid_request: request body is not valid JSON" in log
    assert "answered 415 unsupported_media_type" in log
    assert log.count("malformed HTTP request: 400") == len(not_http)


async def _raw_exchange(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read(1024)
    finally:
        writer.close()
        await writer.wait_closed()
