"""Qdrant's grouped search: /points/search/groups and /points/query/groups.

The router runs the query (any query the Query API takes) for a bounded number of candidates
and groups the hits by a payload key, as qdrant-client's local mode does: groups in the order
of their best hit, at most `group_size` hits each, the first `limit` groups kept; a point with
an array value joins each value's group, and one whose value is not a string or integer joins
none. Candidates grow (x4) until the first `limit` groups are full, the collection is
exhausted or `router.max_k` candidates were read: a group's hits beyond that bound are missed.
With prefetches every prefetch limit is raised to the bound (as local mode raises them to the
collection size), so those queries read the bound at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import InvalidRequest, NotImplementedParameter
from vecstore.router.auth import Scope
from vecstore.router.native_api import name_of
from vecstore.router.qdrant.http import body_object, max_k, qdrant_route
from vecstore.router.qdrant.schemas import ref
from vecstore.router.qdrant.search import SEARCH_QUERY, query_hits
from vecstore.router.qdrant.translate import allow_only, payload_selection

FIRST_CANDIDATES = 64
"""Candidates the first round reads (at least 4 x limit x group_size)."""
GROUP_FIELDS = ("group_by", "group_size", "limit", "with_lookup")
QUERY_GROUP_FIELDS = (
    "query",
    "prefetch",
    "using",
    "filter",
    "params",
    "score_threshold",
    "with_payload",
    "with_vector",
    "lookup_from",
    *GROUP_FIELDS,
)
SEARCH_GROUP_FIELDS = (
    "vector",
    "filter",
    "params",
    "score_threshold",
    "with_payload",
    "with_vector",
    *GROUP_FIELDS,
)
_PART = re.compile(r"^([^\[\]]+)((?:\[\d*\])*)$")

GroupId = int | str


def group_ids(payload: Mapping[str, Any], key: str) -> list[GroupId] | None:
    """The distinct group ids a payload belongs to (payload order), or None when it joins no
    group: the key is absent, or one of its values is not a string or an integer."""
    values = values_at(payload, key)
    if not values or any(type(value) not in (int, str) for value in values):
        return None
    return list(dict.fromkeys(values))


def values_at(payload: Any, key: str) -> list[Any]:
    """The values a key path (`a.b`, `a[]`, `a[0].b`) selects; a selected array is unwrapped."""
    found: list[Any] = []

    def walk(data: Any, steps: Sequence[str | int | None]) -> None:
        if not steps:
            found.extend(data if isinstance(data, list) else [data])
            return
        step, rest = steps[0], steps[1:]
        if isinstance(step, str):
            if isinstance(data, dict) and step in data:
                walk(data[step], rest)
        elif isinstance(data, list):
            for item in data if step is None else data[step : step + 1]:
                walk(item, rest)

    walk(payload, _steps(key))
    return found


def _steps(key: str) -> list[str | int | None]:
    steps: list[str | int | None] = []
    for part in key.split("."):
        matched = _PART.match(part)
        if matched is None:
            raise InvalidRequest(f"group_by {key!r} is not a payload key path (a.b, a[], a[0])")
        steps.append(matched.group(1))
        steps.extend(int(index) if index else None for index in re.findall(r"\[(\d*)\]", matched.group(2)))
    return steps


def group_hits(
    hits: Sequence[Mapping[str, Any]], key: str, group_size: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` groups, and whether they are all full (more hits cannot change them)."""
    groups: dict[GroupId, dict[str, Any]] = {}
    for hit in hits:
        payload = hit.get("payload")
        ids = group_ids(payload, key) if isinstance(payload, dict) else None
        for group_id in ids or ():
            group = groups.setdefault(group_id, {"id": group_id, "hits": []})
            if len(group["hits"]) < group_size:
                group["hits"].append(hit)
    chosen = list(groups.values())[:limit]
    return chosen, len(chosen) == limit and all(len(group["hits"]) == group_size for group in chosen)


def _count(fields: Mapping[str, Any], name: str, default: int | None, high: int) -> int:
    value = fields.get(name, default)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise InvalidRequest(f"{name} must be an integer in 1..{high}, got {value!r}")
    return value


def _widened(prefetch: Any, limit: int) -> Any:
    """Prefetches (one or a list, nested) with every limit set to `limit`."""
    if isinstance(prefetch, list):
        return [_widened(item, limit) for item in prefetch]
    if not isinstance(prefetch, dict):
        return prefetch
    widened = {**prefetch, "limit": limit}
    if prefetch.get("prefetch") is not None:
        widened["prefetch"] = _widened(prefetch["prefetch"], limit)
    return widened


async def grouped(
    request: web.Request,
    name: str,
    query: dict[str, Any],
    fields: Mapping[str, Any],
    default_size: int | None,
) -> dict[str, Any]:
    """Run `query` (a query request without limit and payload) and group its hits."""
    if fields.get("with_lookup") is not None:
        raise NotImplementedParameter("with_lookup is not supported in grouped queries")
    key = fields.get("group_by")
    if not isinstance(key, str) or not key:
        raise InvalidRequest("group_by must be a payload key")
    _steps(key)
    bound = max_k(request)
    group_size = _count(fields, "group_size", default_size, bound)
    limit = _count(fields, "limit", 10 if default_size is not None else None, bound)
    selection = payload_selection(fields.get("with_payload"), default=False)
    size = (
        bound
        if query.get("prefetch") is not None
        else min(bound, max(FIRST_CANDIDATES, 4 * limit * group_size))
    )
    while True:
        asked = {**query, "limit": size, "with_payload": True}
        if query.get("prefetch") is not None:
            asked["prefetch"] = _widened(query["prefetch"], size)
        hits = await query_hits(request, name, asked)
        groups, complete = group_hits(hits, key, group_size, limit)
        if complete or len(hits) < size or size >= bound:
            break
        size = min(bound, size * 4)
    return {
        "groups": [
            {
                "id": group["id"],
                "hits": [{**hit, "payload": selection.apply(hit["payload"])} for hit in group["hits"]],
            }
            for group in groups
        ]
    }


@qdrant_route(
    "POST",
    "/collections/{name}/points/query/groups",
    "A query's hits grouped by a payload key",
    Scope.READ,
    ref("QdrantGroupsResult"),
    ref("QdrantQueryGroupsRequest"),
    query=SEARCH_QUERY,
)
async def query_groups(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/query/groups."""
    fields = await body_object(request)  # an object (body_of), nulls dropped
    allow_only(fields, QUERY_GROUP_FIELDS, "the query groups request")
    query = {
        name: value for name, value in fields.items() if name not in GROUP_FIELDS and name != "with_payload"
    }
    return await grouped(request, name_of(request), query, fields, 3)


@qdrant_route(
    "POST",
    "/collections/{name}/points/search/groups",
    "A search's hits grouped by a payload key",
    Scope.READ,
    ref("QdrantGroupsResult"),
    ref("QdrantSearchGroupsRequest"),
    query=SEARCH_QUERY,
)
async def search_groups(request: web.Request) -> dict[str, Any]:
    """POST /collections/{name}/points/search/groups (group_size and limit required)."""
    fields = await body_object(request)  # an object (body_of), nulls dropped
    allow_only(fields, SEARCH_GROUP_FIELDS, "the search groups request")
    if "vector" not in fields:
        raise InvalidRequest("vector is required")
    vector = fields["vector"]
    query: dict[str, Any] = {
        name: value
        for name, value in fields.items()
        if name in ("filter", "params", "score_threshold", "with_vector")
    }
    if isinstance(vector, dict) and "name" in vector and "vector" in vector:  # a named (sparse) vector
        allow_only(vector, ("name", "vector"), "vector")
        query.update(query=vector["vector"], using=vector["name"])
    else:
        query["query"] = vector
    return await grouped(request, name_of(request), query, fields, None)


ROUTES = (search_groups, query_groups)
"""The grouped search endpoints."""
