"""How a Qdrant route is served: the `{"result", "status", "time"}` envelope, Qdrant's error
shape, query-string checks (wait, ordering, timeout, consistency), auth scope and OpenAPI.

A Qdrant endpoint is a `QdrantRoute`: data (its `Operation`, the scope it needs, the
function producing Qdrant's `result`), declared with `@qdrant_route(...)` and listed
explicitly in `qdrant.routes.ROUTES`. Nothing is registered at import time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, Timeout
from vecstore.router.auth import Scope
from vecstore.router.context import SPEC, RouteInfo
from vecstore.router.operation import Operation
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.schemas import Schema, envelope, ref
from vecstore.transport.server import Handler, body_of
from vecstore.transport.wire import JSON, encode_body

ResultHandler = Callable[[web.Request], Awaitable[Any]]
UPDATE_COMPLETED = {"status": "completed"}
WRITE_QUERY = ("wait", "ordering", "timeout")
READ_QUERY = ("consistency", "timeout")
PROFILE_KEY = "vecstore_profile"
"""A search's profile, left on the request by the handler (`?profile=true`) for the envelope."""


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


@dataclass(frozen=True)
class QdrantRoute:
    """One Qdrant endpoint: how it is documented, the scope it needs, what produces it."""

    operation: Operation
    scope: Scope
    produce: ResultHandler
    """`produce(request) -> result` (Qdrant's `result` field)."""
    raw: bool = False
    """Answer `produce`'s value as is, without the `{"result", "status", "time"}` envelope."""

    @property
    def info(self) -> RouteInfo:
        """Its entry in the router's route table (Qdrant's error shape)."""
        operation = self.operation
        return RouteInfo(operation.method, operation.path, self.scope, operation, qdrant_error)

    def handler(self) -> Handler:
        """The aiohttp handler: query checks, timeout, envelope."""
        operation, produce, raw = self.operation, self.produce, self.raw

        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            # an endpoint VecStore refuses answers 501 whatever its query string says
            seconds = None if operation.unsupported else query_options(request, operation.query)
            deadline = asyncio.timeout(seconds)
            try:
                async with deadline:
                    answer = await produce(request)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise Timeout(f"the request did not finish within {request.query['timeout']}s") from None
            if not raw:
                answer = {"result": answer, "status": "ok", "time": time.perf_counter() - started}
                if PROFILE_KEY in request:
                    answer["profile"] = request[PROFILE_KEY]
            return web.Response(body=encode_body(answer, JSON), content_type=JSON)

        return handle


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
) -> Callable[[ResultHandler], QdrantRoute]:
    """Declare a Qdrant endpoint: the decorated function becomes a `QdrantRoute`."""
    operation = Operation(
        method,
        path,
        summary,
        "qdrant",
        result if raw else envelope(result, profiled="profile" in query),
        ref("QdrantError"),
        request,
        body_required,
        tuple(query),
    )

    def declare(produce: ResultHandler) -> QdrantRoute:
        return QdrantRoute(operation, needed, produce, raw)

    return declare


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
