"""/openapi.json describes exactly the routes the router registers, and is valid OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from aiohttp import web
from schemathesis.core.result import Ok

from vecstore.cluster.spec import ClusterSpec, NodeSpec, RouterSpec, ShardSpec
from vecstore.router.app import create_app
from vecstore.router.auth import ApiKeys
from vecstore.router.openapi import document


def app_under_test() -> web.Application:
    nodes = tuple(NodeSpec(f"s0-n{i}", f"127.0.0.1:{7000 + i}", f"127.0.0.1:{8000 + i}") for i in range(3))
    spec = ClusterSpec(shards=(ShardSpec(0, nodes),), router=RouterSpec())
    return create_app(spec, ApiKeys({}))


def registered(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    app = app_under_test()
    spec = document(app)
    documented = {(method, path) for path, operations in spec["paths"].items() for method in operations}
    assert documented == registered(app)
    assert ("post", "/collections/{name}/points/search") in documented
    assert ("get", "/v1/status") in documented
    assert {
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    } <= documented


def test_an_undocumented_route_fails_loudly() -> None:
    app = app_under_test()

    async def surprise(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/surprise", surprise)
    with pytest.raises(LookupError, match="GET /surprise"):
        document(app)


def test_document_is_valid_openapi_and_references_resolve() -> None:
    spec = document(app_under_test())
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.validate()  # against the OpenAPI 3.1 meta-schema
    for result in loaded.get_all_operations():
        assert isinstance(result, Ok), result.err()
    schemas = spec["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for reference in refs(spec):
        assert reference.removeprefix("#/components/schemas/") in schemas, reference
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_unsupported_qdrant_endpoints_are_marked() -> None:
    spec = document(app_under_test())
    snapshots = spec["paths"]["/collections/{name}/snapshots"]["post"]
    assert snapshots["x-vecstore-unsupported"] is True
    assert "200" not in snapshots["responses"]
    assert "x-vecstore-unsupported" not in spec["paths"]["/collections/{name}/points/query"]["post"]
    assert "x-vecstore-unsupported" not in spec["paths"]["/collections/{name}/index"]["put"]
