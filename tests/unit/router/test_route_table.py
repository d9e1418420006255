"""The router's route table: every route is registered through `add_route` with a RouteInfo
that declares its scope, and the Qdrant routes are the explicit `qdrant.routes.ROUTES`."""

from __future__ import annotations

from aiohttp import web

from vecstore.cluster.spec import ClusterSpec, NodeSpec, RouterSpec, ShardSpec
from vecstore.router.app import create_app
from vecstore.router.auth import ApiKeys, Scope
from vecstore.router.context import ROUTE_TABLE
from vecstore.router.native_api import ROUTES as NATIVE_ROUTES
from vecstore.router.qdrant import routes as qdrant_routes
from vecstore.router.qdrant.http import qdrant_error


def app_under_test() -> web.Application:
    nodes = tuple(NodeSpec(f"s0-n{i}", f"127.0.0.1:{7000 + i}", f"127.0.0.1:{8000 + i}") for i in range(3))
    return create_app(ClusterSpec(shards=(ShardSpec(0, nodes),), router=RouterSpec()), ApiKeys({}))


def test_every_registered_route_has_a_route_info_matching_it() -> None:
    app = app_under_test()
    table = app[ROUTE_TABLE]
    routes = [route for route in app.router.routes() if route.resource is not None]
    assert routes
    for route in routes:
        info = table[route]
        assert route.resource is not None
        assert (info.method, info.path) == (route.method, route.resource.canonical)
    assert len(table) == len(routes)


def test_qdrant_routes_are_the_explicit_table_in_order_with_qdrant_errors() -> None:
    app = app_under_test()
    qdrant = [info for info in app[ROUTE_TABLE].values() if info.error_shape is qdrant_error]
    expected = [(r.operation.method, r.operation.path) for r in qdrant_routes.ROUTES]
    assert [(info.method, info.path) for info in qdrant] == expected
    assert len(set(expected)) == len(expected), "a Qdrant route is declared twice"
    assert all(info.operation is not None for info in qdrant)


def test_scopes_come_from_the_declarations() -> None:
    app = app_under_test()
    scopes = {(info.method, info.path): info.scope for info in app[ROUTE_TABLE].values()}
    for route in NATIVE_ROUTES:
        assert scopes[(route.method, route.path)] is route.scope
    assert scopes[("PUT", "/collections/{name}")] is Scope.ADMIN
    assert scopes[("PUT", "/collections/{name}/points")] is Scope.WRITE
    assert scopes[("POST", "/collections/{name}/points/search")] is Scope.READ
    assert scopes[("GET", "/v1/rpc")] is Scope.READ


def test_importing_the_route_modules_twice_registers_nothing_twice() -> None:
    first, second = app_under_test(), app_under_test()
    assert len(first[ROUTE_TABLE]) == len(second[ROUTE_TABLE])
