"""Which browsers may call the router, and in which body formats anything may.

A web page can send a "simple" cross-origin request (a `text/plain` POST) without asking
first; the router used to parse any body as JSON, so any page a user visited could write
to a router without API keys. Now a body must be declared JSON or msgpack (415 otherwise:
neither is a "simple" type, so a browser must ask first), and preflights are answered
only for the configured origins (`router.cors_origins`; none by default).
"""

from __future__ import annotations

from aiohttp import web

from vecstore.cluster.errors import Forbidden, UnsupportedMediaType
from vecstore.transport.wire import JSON, MSGPACK

BODY_TYPES = frozenset({JSON, MSGPACK})
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "content-type, api-key, authorization, accept"
PREFLIGHT_MAX_AGE = "600"


def check_body_type(request: web.Request) -> None:
    """UnsupportedMediaType when the request has a body that is not JSON or msgpack."""
    if request.body_exists and request.content_type not in BODY_TYPES:
        declared = request.headers.get("Content-Type") or "none"
        raise UnsupportedMediaType(
            f"request bodies must be '{JSON}' or '{MSGPACK}' (Content-Type header); got {declared!r}"
        )


def is_preflight(request: web.Request) -> bool:
    """A browser's CORS preflight: OPTIONS with an Origin and the method it wants."""
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight(request: web.Request, origins: tuple[str, ...]) -> web.Response:
    """The answer to a preflight: allowed for a configured origin, else Forbidden."""
    origin = request.headers["Origin"]
    if origin not in origins:
        raise Forbidden(f"origin {origin!r} is not in router.cors_origins")
    response = web.Response(status=204)
    response.headers.update(
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            "Vary": "Origin",
        }
    )
    return response


def allow_origin(request: web.Request, response: web.StreamResponse, origins: tuple[str, ...]) -> None:
    """Let the page of a configured origin read the answer (nothing for any other)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin in origins and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
