"""`GET /openapi.json`: the OpenAPI document of what the router serves."""

from __future__ import annotations

from aiohttp import web


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3 document."""
    return web.json_response(
        {"openapi": "3.0.3", "info": {"title": "VecStore", "version": "0.1.0"}, "paths": {}}
    )


def add_routes(app: web.Application) -> None:
    """Register /openapi.json."""
    app.router.add_get("/openapi.json", openapi_document)
