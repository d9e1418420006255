"""The node's operations as a route table shared by its HTTP API and its RPC endpoint.

An operation is `op(service, params, body) -> answer`: `params` are the path parameters,
`body` the decoded request (bytes for `raw_body` routes), the answer a msgpack/JSON-able
document. Errors are raised as VecStoreError and mapped to statuses by each transport.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vecstore.node.service import NodeService

Params = Mapping[str, str]
Body = dict[str, Any]
Op = Callable[["NodeService", Params, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One operation: HTTP method, aiohttp path template, the operation."""

    method: str
    path: str
    op: Op
    raw_body: bool = False


def max_body_bytes(service: NodeService) -> int:
    """The largest request body a node reads (a command at the limit, plus headroom)."""
    return service.config.max_command_bytes + (1 << 20)
