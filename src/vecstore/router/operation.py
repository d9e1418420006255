"""`Operation`: the OpenAPI description of one route, carried by the route table
(`router.context.RouteInfo`) and rendered by `router.openapi`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vecstore.router.qdrant import schemas as qdrant_schemas
from vecstore.router.qdrant.schemas import Schema, ref

NAME_PARAMETER = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}


@dataclass(frozen=True)
class Operation:
    """One documented route: what it does, what it takes and what it answers."""

    method: str
    path: str
    summary: str
    tag: str
    response: Schema
    """Schema of the 200 body."""
    error: Schema
    """Schema of every error body (4xx and 5xx)."""
    request: Schema | None = None
    body_required: bool = True
    query: tuple[str, ...] = ()
    """Names from `qdrant_schemas.QUERY_PARAMETERS`."""
    content_type: str = "application/json"
    extra_statuses: tuple[tuple[int, Schema], ...] = ()
    unsupported: bool = False
    """A Qdrant endpoint VecStore does not implement: it always answers 501."""

    def render(self) -> dict[str, Any]:
        """The OpenAPI operation object."""
        operation: dict[str, Any] = {
            "summary": self.summary,
            "operationId": _operation_id(self.method, self.path),
            "tags": [self.tag],
            "responses": {
                **{
                    str(status): _content(schema, self.content_type) for status, schema in self.extra_statuses
                },
                "default": {"description": "error", "content": {"application/json": {"schema": self.error}}},
            },
        }
        if not self.unsupported:
            operation["responses"]["200"] = _content(self.response, self.content_type)
        else:
            operation["x-vecstore-unsupported"] = True
        parameters = [_path_parameter(name) for name in re.findall(r"{(\w+)}", self.path)]
        for name in self.query:
            schema, description = qdrant_schemas.QUERY_PARAMETERS[name]
            parameters.append(
                {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
            )
        if parameters:
            operation["parameters"] = parameters
        if self.request is not None:
            operation["requestBody"] = {
                "required": self.body_required,
                "content": {"application/json": {"schema": self.request}},
            }
        return operation


def _content(schema: Schema, content_type: str) -> dict[str, Any]:
    return {"description": "success", "content": {content_type: {"schema": schema}}}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path).replace("/", "_").replace(".", "_").strip("_") or "root"
    return f"{method.lower()}_{words}"


def _path_parameter(name: str) -> dict[str, Any]:
    schema = ref("QdrantPointId") if name == "id" else NAME_PARAMETER
    return {"name": name, "in": "path", "required": True, "schema": schema}
