"""Body media types and CORS, against the router's real aiohttp app served in-process.

Every request here is answered before any shard is asked (415, preflights, a schema that
fails validation), so the spec's one node need not run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp.test_utils import TestServer

from vecstore.cluster.spec import ClusterSpec, RouterSpec, SpecError, parse_spec
from vecstore.launcher.processes import free_ports
from vecstore.router.__main__ import router_from_env
from vecstore.router.app import create_app
from vecstore.router.auth import ApiKeys

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
BAD_SCHEMA = b'{"dimension": 0}'
"""A create that fails validation (400) in the handler: proof the body got past the type check."""


def spec_with(origins: tuple[str, ...]) -> ClusterSpec:
    raft, http = free_ports(2)
    shards = [{"id": 0, "nodes": [{"id": "n0", "raft": f"127.0.0.1:{raft}", "http": f"127.0.0.1:{http}"}]}]
    return parse_spec({"shards": shards, "router": {"cors_origins": list(origins)}})


Call = Callable[..., Any]


@asynccontextmanager
async def serving(origins: tuple[str, ...]) -> AsyncIterator[Call]:
    server = TestServer(create_app(spec_with(origins), ApiKeys({})), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:

            async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
                url = f"http://127.0.0.1:{server.port}{path}"
                async with session.request(method, url, **kwargs) as response:
                    body = await response.json() if response.content_type == "application/json" else None
                    return response.status, body, response.headers

            yield call
    finally:
        await server.close()


@pytest.fixture
async def router() -> AsyncIterator[Call]:
    async with serving((ALLOWED,)) as call:
        yield call


@pytest.fixture
async def closed_router() -> AsyncIterator[Call]:
    async with serving(()) as call:
        yield call


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
    ],
)
async def test_bodies_neither_json_nor_msgpack_are_415(router: Call, content_type: str) -> None:
    status, body, _ = await router(
        "PUT", "/v1/collections/docs", data=BAD_SCHEMA, headers={"Content-Type": content_type}
    )
    assert status == 415, body
    assert body["code"] == "unsupported_media_type"
    assert "'application/json'" in body["error"] and "'application/msgpack'" in body["error"]


async def test_a_body_without_content_type_is_415(router: Call) -> None:
    # aiohttp adds no Content-Type to raw bytes: the server reads it as application/octet-stream
    status, body, _ = await router(
        "PUT", "/collections/docs", data=BAD_SCHEMA, skip_auto_headers=["Content-Type"]
    )
    assert status == 415, body  # the Qdrant-compatible routes too (Qdrant's error shape)
    assert "application/json" in str(body)


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/json", BAD_SCHEMA),
        ("application/json; charset=utf-8", BAD_SCHEMA),
        ("Application/JSON", BAD_SCHEMA),
        ("application/msgpack", msgpack.packb({"dimension": 0})),
    ],
)
async def test_json_and_msgpack_bodies_reach_the_handler(
    router: Call, content_type: str, data: bytes
) -> None:
    status, body, _ = await router(
        "PUT", "/v1/collections/docs", data=data, headers={"Content-Type": content_type}
    )
    assert status == 400, body
    assert "dimension" in body["error"]


async def test_requests_without_a_body_need_no_content_type(router: Call) -> None:
    status, body, _ = await router("GET", "/healthz")
    assert status == 200, body
    status, body, _ = await router("DELETE", "/v1/collections/no%20such%20name!")
    assert status == 400 and body["code"] != "unsupported_media_type", body


async def test_preflight_from_a_configured_origin(router: Call) -> None:
    status, _, headers = await router(
        "OPTIONS", "/v1/collections/docs/points/delete", headers={"Origin": ALLOWED, **PREFLIGHT}
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert set(headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET", "POST", "PUT", "DELETE"}
    assert set(headers["Access-Control-Allow-Headers"].split(", ")) >= {
        "content-type",
        "api-key",
        "authorization",
    }
    assert headers["Vary"] == "Origin"


async def test_preflight_from_another_origin_is_403_without_cors_headers(router: Call) -> None:
    status, body, headers = await router(
        "OPTIONS", "/v1/collections/docs/points/delete", headers={"Origin": OTHER, **PREFLIGHT}
    )
    assert status == 403, body
    assert OTHER in body["error"]
    assert not [name for name in headers if name.lower().startswith("access-control-")]


async def test_answers_carry_the_origin_only_when_it_is_configured(router: Call) -> None:
    _, _, allowed = await router("GET", "/healthz", headers={"Origin": ALLOWED})
    assert allowed["Access-Control-Allow-Origin"] == ALLOWED  # the origin itself, never *
    assert allowed["Vary"] == "Origin"
    _, _, other = await router("GET", "/healthz", headers={"Origin": OTHER})
    assert "Access-Control-Allow-Origin" not in other
    _, _, refused = await router(
        "PUT",
        "/v1/collections/docs",
        data=BAD_SCHEMA,
        headers={"Origin": ALLOWED, "Content-Type": "text/plain"},
    )
    assert refused["Access-Control-Allow-Origin"] == ALLOWED  # the page may read why it was refused


async def test_with_no_origins_configured_no_cors_header_is_ever_sent(closed_router: Call) -> None:
    status, _, headers = await closed_router(
        "OPTIONS", "/v1/collections", headers={"Origin": ALLOWED, **PREFLIGHT}
    )
    assert status == 403
    for method, path in (("GET", "/healthz"), ("OPTIONS", "/v1/collections")):
        _, _, headers = await closed_router(method, path, headers={"Origin": ALLOWED})
        assert not [name for name in headers if name.lower().startswith("access-control-")]


def test_origins_come_from_the_spec_or_the_environment() -> None:
    assert RouterSpec().cors_origins == ()
    spec = spec_with((ALLOWED,))
    assert spec.router.cors_origins == (ALLOWED,)
    assert parse_spec(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="list of strings"):
        parse_spec({**spec.to_dict(), "router": {"cors_origins": ALLOWED}})
    environ = {"VECSTORE_CORS_ORIGINS": f" {ALLOWED}, http://localhost:3000,,"}
    assert router_from_env(RouterSpec(), environ).cors_origins == (ALLOWED, "http://localhost:3000")
    assert router_from_env(spec.router, {}).cors_origins == (ALLOWED,)


@pytest.mark.parametrize("origin", ["*", "null", "https://app.example.com/", "app.example.com", "ftp://x"])
def test_origins_that_a_browser_never_sends_are_refused(origin: str) -> None:
    with pytest.raises(SpecError, match="must look like https://host"):
        RouterSpec(cors_origins=(origin,))
    with pytest.raises(SpecError, match="must look like https://host"):
        router_from_env(RouterSpec(), {"VECSTORE_CORS_ORIGINS": f"{ALLOWED},{origin}"})
