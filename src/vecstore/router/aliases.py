"""Collection aliases at the router's edge: a request naming an alias acts on its collection."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest
from vecstore.router.context import SHARDS


async def resolve_alias(
    app: web.Application, method: str, path: str, params: MutableMapping[str, str]
) -> None:
    """Point a request at the collection an alias in its path stands for (collection
    creates and drops keep the name as given: they never act through an alias)."""
    name = params.get("name")
    if name is None:
        return
    if method in ("PUT", "DELETE") and path.rstrip("/") in (
        f"/collections/{name}",
        f"/v1/collections/{name}",
    ):
        return
    params["name"] = await app[SHARDS].resolve(name)


def alias_actions(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Qdrant's ChangeAliasesOperation as (kind, alias, collection or new alias) actions."""
    _only(body, ("actions",), "the aliases request")
    raw = body.get("actions")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("actions must be a non-empty list of create_alias, delete_alias or rename_alias")
    actions: list[tuple[str, str, str]] = []
    for position, action in enumerate(raw):
        if not isinstance(action, dict) or len(action) != 1:
            raise InvalidRequest(
                f"actions[{position}] must be one of create_alias, delete_alias, rename_alias"
            )
        ((kind, fields),) = action.items()
        if not isinstance(fields, dict):
            raise InvalidRequest(f"actions[{position}].{kind} must be an object")
        if kind == "create_alias":
            _only(fields, ("collection_name", "alias_name"), f"actions[{position}].create_alias")
            actions.append(("create", _text(fields, "alias_name"), _text(fields, "collection_name")))
        elif kind == "delete_alias":
            _only(fields, ("alias_name",), f"actions[{position}].delete_alias")
            actions.append(("delete", _text(fields, "alias_name"), ""))
        elif kind == "rename_alias":
            _only(fields, ("old_alias_name", "new_alias_name"), f"actions[{position}].rename_alias")
            actions.append(("rename", _text(fields, "old_alias_name"), _text(fields, "new_alias_name")))
        else:
            raise InvalidRequest(
                f"unknown alias action {kind!r}; expected create_alias, delete_alias, rename_alias"
            )
    return actions


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def _only(fields: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    unknown = {key for key, value in fields.items() if value is not None} - set(allowed)
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)} in {what}; expected {sorted(allowed)}")
