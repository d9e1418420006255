"""How a Qdrant route is served: the `{"result", "status", "time"}` envelope, Qdrant's error
shape, query-string checks (wait, ordering, timeout, consistency), auth scope and OpenAPI.

Handlers declared with `qdrant_route` return Qdrant's `result` and never build responses.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, Timeout
from vecstore.router.app import SPEC, Handler, body_of, scope
from vecstore.router.auth import Scope
from vecstore.router.openapi import Operation
from vecstore.router.qdrant_collection import present
from vecstore.router.qdrant_schemas import Schema, envelope, ref
from vecstore.transport.wire import JSON, encode_body

ResultHandler = Callable[[web.Request], Awaitable[Any]]
UPDATE_COMPLETED = {"status": "completed"}
WRITE_QUERY = ("wait", "ordering", "timeout")
READ_QUERY = ("consistency", "timeout")
ROUTES: list[Handler] = []
"""Every handler declared with `qdrant_route`, in declaration order."""


def qdrant_error(body: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A native error body in Qdrant's shape: `{"status": {"error": ...}, "time": ...}`."""
    message = str(body.get("error", "error"))
    if body.get("code") == "collection_not_found" and "name" in body:
        message = f"Not found: Collection `{body['name']}` doesn't exist!"
    answer: dict[str, Any] = {"status": {"error": message}, "time": seconds}
    details = {k: v for k, v in body.items() if k not in {"status", "error", "code", "name", "leader"}}
    if details:
        answer["result"] = details
    return answer


def qdrant_route(
    method: str,
    path: str,
    summary: str,
    needed: Scope,
    result: Schema,
    request: Schema | None = None,
    *,
    query: Sequence[str] = (),
    body_required: bool = True,
    raw: bool = False,
) -> Callable[[ResultHandler], Handler]:
    """Register a Qdrant handler: envelope, timeout, query checks, scope, docs, error shape."""
    operation = Operation(
        method,
        path,
        summary,
        "qdrant",
        result if raw else envelope(result),
        ref("QdrantError"),
        request,
        body_required,
        tuple(query),
    )

    def wrap(produce: ResultHandler) -> Handler:
        @functools.wraps(produce)
        async def handler(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            deadline = asyncio.timeout(query_options(request, operation.query))
            try:
                async with deadline:
                    answer = await produce(request)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise Timeout(f"the request did not finish within {request.query['timeout']}s") from None
            if not raw:
                answer = {"result": answer, "status": "ok", "time": time.perf_counter() - started}
            return web.Response(body=encode_body(answer, JSON), content_type=JSON)

        handler.__dict__.update(error_shape=qdrant_error, openapi=operation)
        ROUTES.append(scope(needed)(handler))
        return handler

    return wrap


def query_options(request: web.Request, allowed: Sequence[str]) -> float | None:
    """Validate the query string against what the endpoint takes; the timeout, if any."""
    unknown = set(request.query) - set(allowed)
    if unknown:
        takes = ", ".join(allowed) or "no query parameters"
        raise InvalidRequest(f"unknown query parameter(s) {sorted(unknown)}; this endpoint takes {takes}")
    choices = {"wait": ("true", "false"), "ordering": ("weak", "medium", "strong")}
    for name, options in choices.items():
        if name in request.query and request.query[name] not in options:
            raise InvalidRequest(f"query parameter {name} must be one of {', '.join(options)}")
    consistency_of(request)
    if "timeout" not in request.query:
        return None
    value = request.query["timeout"]
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 3600:
        raise InvalidRequest(f"query parameter timeout must be whole seconds in 1..3600, got {value!r}")
    return float(value)


def consistency_of(request: web.Request) -> str:
    """Qdrant's read consistency as ours: 1 is any replica; more, or a quorum, the leader."""
    value = request.query.get("consistency", "1")
    if value == "1":
        return "eventual"
    if value in ("majority", "quorum", "all") or (value.isascii() and value.isdigit() and int(value) > 1):
        return "strong"
    raise InvalidRequest(f"consistency must be a positive integer, majority, quorum or all; got {value!r}")


def max_k(request: web.Request) -> int:
    """The largest limit + offset a search may ask for."""
    return request.app[SPEC].router.max_k


async def body_object(request: web.Request) -> dict[str, Any]:
    """The JSON body, with null fields dropped (Qdrant treats null as absent)."""
    return present(await body_of(request))
