"""The one error hierarchy of VecStore: every failure a user can see is one of these.

Each class carries the HTTP status it maps to and whether retrying the same request
can succeed, so callers branch on flags (`err.retriable`) rather than on isinstance chains.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VecStoreError(Exception):
    """Base of all errors VecStore raises on purpose."""

    http_status: ClassVar[int] = 500
    retriable: ClassVar[bool] = False
    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = {}
        """Extra fields for the response body (for example, which points failed)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON body every adapter returns for this error."""
        return {"status": "error", "error": self.message, "code": self.code, **self.details}


class InvalidRequest(VecStoreError):
    """The request is malformed or violates a constraint; retrying it cannot help."""

    http_status = 400
    code = "invalid_request"


class InvalidVector(InvalidRequest):
    """Wrong dimension, non-finite values, or an unusable shape."""

    code = "invalid_vector"


class InvalidFilter(InvalidRequest):
    """A filter that does not parse or names an unknown operator."""

    code = "invalid_filter"


class InvalidPointId(InvalidRequest):
    """A point id that is neither an unsigned 64-bit integer nor a UUID."""

    code = "invalid_point_id"


class InvalidSchema(InvalidRequest):
    """A collection schema with a bad name, dimension, metric, dtype or HNSW setting."""

    code = "invalid_schema"


class MalformedCommand(InvalidRequest):
    """Bytes that do not decode to a command."""

    code = "malformed_command"


class UnsupportedVersion(MalformedCommand):
    """A command encoded with a codec version this build does not know."""

    code = "unsupported_version"


class PayloadTooLarge(VecStoreError):
    """A payload, command or body above its configured bound."""

    http_status = 413
    code = "payload_too_large"


class UnsupportedMediaType(VecStoreError):
    """A request body in a format the API does not read (JSON and msgpack only)."""

    http_status = 415
    code = "unsupported_media_type"


class RateLimited(VecStoreError):
    """The caller (API key or client address) sent more than its configured rate."""

    http_status = 429
    code = "rate_limited"
    retriable = True

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(VecStoreError):
    """No credentials, or credentials that are not recognised."""

    http_status = 401
    code = "unauthorized"


class Forbidden(VecStoreError):
    """Valid credentials whose scope does not allow the operation."""

    http_status = 403
    code = "forbidden"


class NotFound(VecStoreError):
    """Base for a named thing that does not exist."""

    http_status = 404
    code = "not_found"


class CollectionNotFound(NotFound):
    """The collection does not exist."""

    code = "collection_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"collection {name!r} does not exist")
        self.name = name

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["name"] = self.name
        return body


class Conflict(VecStoreError):
    """The request conflicts with existing state."""

    http_status = 409
    code = "conflict"


class CollectionConflict(Conflict):
    """A create that names an existing collection with a different schema."""

    code = "collection_conflict"


class NotImplementedParameter(VecStoreError):
    """A parameter of a compatible API that VecStore does not support (never ignored)."""

    http_status = 501
    code = "not_implemented"


class NotLeader(VecStoreError):
    """This node is not its shard's leader; `leader` names the one it knows, if any."""

    http_status = 421
    retriable = True
    code = "not_leader"

    def __init__(self, leader: str | None) -> None:
        known = f"the leader is {leader}" if leader else "no leader is known yet"
        super().__init__(f"this node is not the leader: {known}")
        self.leader = leader

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["leader"] = self.leader
        return body


class Unavailable(VecStoreError):
    """A shard, quorum or dependency cannot serve the request right now."""

    http_status = 503
    retriable = True
    code = "unavailable"


class Unreachable(Unavailable):
    """No connection could be opened (refused, no route): the server is down or its address
    is wrong, unlike one that answers "unavailable"."""

    code = "unreachable"


class WrongShard(VecStoreError):
    """This shard does not own the point at its topology epoch: the caller routed by a stale
    topology. `details["topology"]` is the shard's, so the caller can refresh and retry."""

    http_status = 409
    code = "wrong_shard"

    def __init__(self, message: str, topology: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        if topology is not None:
            self.details["topology"] = topology

    @property
    def topology(self) -> dict[str, Any] | None:
        """The refusing shard's topology (plain data, `Topology.from_dict`)."""
        found = self.details.get("topology")
        return found if isinstance(found, dict) else None


class Migrating(Unavailable):
    """The point is being moved to another shard: writes to it wait for the short fence
    before the cutover (retriable; it then lives at its new owner)."""

    code = "migrating"


class Timeout(VecStoreError):
    """The operation did not complete in time; it may or may not have been applied."""

    http_status = 504
    retriable = True
    code = "timeout"


ERROR_CLASSES: dict[str, type[VecStoreError]] = {
    cls.code: cls
    for cls in (
        VecStoreError,
        InvalidRequest,
        InvalidVector,
        InvalidFilter,
        InvalidPointId,
        InvalidSchema,
        MalformedCommand,
        UnsupportedVersion,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        CollectionConflict,
        NotImplementedParameter,
        Unavailable,
        Unreachable,
        Timeout,
        WrongShard,
        Migrating,
    )
}


def error_from_dict(body: dict[str, Any]) -> VecStoreError:
    """Rebuild an error sent over the wire by `VecStoreError.to_dict` (clients use this)."""
    code = str(body.get("code", "internal"))
    message = str(body.get("error", "unknown error"))
    if code == "not_leader":
        leader = body.get("leader")
        return NotLeader(str(leader) if leader else None)
    if code == "collection_not_found":
        name = body.get("name")
        if isinstance(name, str):
            return CollectionNotFound(name)
        err: VecStoreError = NotFound(message)
        return err
    rebuilt = ERROR_CLASSES.get(code, VecStoreError)(message)
    rebuilt.details = {k: v for k, v in body.items() if k not in {"status", "error", "code"}}
    return rebuilt
