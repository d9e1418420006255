"""Qdrant's `POST /collections/{name}/points/batch`: a list of point writes applied in order.

Every operation is parsed before the first is sent, so a malformed one refuses the whole
batch with nothing applied. The batch is not atomic across operations: each is sent through
the same ShardSet call as its single endpoint and acknowledged before the next starts; an
operation that fails stops the rest, and the error says how many were applied before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, VecStoreError
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS
from vecstore.router.native_api import name_of
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.http import UPDATE_COMPLETED, WRITE_QUERY, body_object, qdrant_route
from vecstore.router.qdrant.points import (
    Write,
    clear_payload_write,
    delete_payload_write,
    delete_vectors_write,
    delete_write,
    payload_write,
    update_vectors_write,
    upsert_write,
)
from vecstore.router.qdrant.schemas import array, ref

MAX_OPERATIONS = 1_000
"""Operations one batch may carry."""

PARSERS: dict[str, Callable[[web.Request, Mapping[str, Any]], Write]] = {
    "upsert": upsert_write,
    "delete": delete_write,
    "set_payload": payload_write(overwrite=False),
    "overwrite_payload": payload_write(overwrite=True),
    "delete_payload": delete_payload_write,
    "clear_payload": clear_payload_write,
    "update_vectors": update_vectors_write,
    "delete_vectors": delete_vectors_write,
}
"""Each operation Qdrant's batch takes, by its key, with the parser its endpoint uses."""


def parse_operations(request: web.Request, body: Mapping[str, Any]) -> list[tuple[str, Write]]:
    """Every operation of the batch, parsed (nothing is sent yet): (kind, write), in order."""
    unknown = set(body) - {"operations"}
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)} in the batch request; it takes operations")
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise InvalidRequest("operations must be a list of update operations")
    if len(operations) > MAX_OPERATIONS:
        raise InvalidRequest(f"a batch takes at most {MAX_OPERATIONS} operations, got {len(operations)}")
    parsed = []
    for position, operation in enumerate(operations):
        fields = present(operation) if isinstance(operation, dict) else None
        if fields is None or len(fields) != 1 or next(iter(fields)) not in PARSERS:
            raise InvalidRequest(
                f"operations[{position}] must be an object with exactly one of {', '.join(PARSERS)}"
            )
        kind, argument = next(iter(fields.items()))
        if not isinstance(argument, dict):
            raise InvalidRequest(f"operations[{position}].{kind} must be an object")
        try:
            parsed.append((kind, PARSERS[kind](request, present(argument))))
        except VecStoreError as err:
            err.message = f"operations[{position}] ({kind}): {err.message}"
            err.args = (err.message,)
            raise
    return parsed


@qdrant_route(
    "POST",
    "/collections/{name}/points/batch",
    "Apply point writes in order (not atomic: an error stops the rest and names how many ran)",
    Scope.WRITE,
    array(ref("QdrantUpdateResult")),
    ref("QdrantUpdateOperations"),
    query=WRITE_QUERY,
)
async def batch_update(request: web.Request) -> list[dict[str, Any]]:
    """POST /collections/{name}/points/batch."""
    name = name_of(request)
    writes = parse_operations(request, await body_object(request))
    shards = request.app[SHARDS]
    await shards.schema(name)  # a missing collection is a 404 before anything is sent
    for position, (kind, write) in enumerate(writes):
        try:
            await write(shards, name)
        except VecStoreError as err:
            err.message = (
                f"operations[{position}] ({kind}) failed: {err.message}; "
                f"the {position} operation(s) before it were applied, none after it"
            )
            err.args = (err.message,)
            err.details["operations_applied"] = position
            raise
    return [dict(UPDATE_COMPLETED) for _ in writes]


ROUTES = (batch_update,)
"""The batch endpoint."""
