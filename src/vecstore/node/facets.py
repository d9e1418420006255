"""The node's value reads for Qdrant's facet and order_by: thin adapters over
`shard.ordering`, run in the read executor under the collection's read lock. They never
write and never wait on the log beyond the read's consistency level."""

from __future__ import annotations

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.filters import parse_filter
from vecstore.node.routes import Body, Params, Route
from vecstore.node.service import NodeService, parse_consistency
from vecstore.shard import ordering
from vecstore.shard.reads import MAX_SCROLL_LIMIT
from vecstore.transport.wire import field_int


async def facet_counts(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/facet: `{key, filter?}` -> `{"hits": [[value, count], ...]}`
    over this shard's points (unordered, every value)."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    collection = service.shard.collection(params["name"])
    key = ordering.check_key(body.get("key"), "key")
    raw = body.get("filter")
    condition = service.shard.resolve(params["name"], None if raw is None else parse_filter(raw))
    hits = await service.run_read(lambda: ordering.facet_counts(collection, key, condition))
    return {"status": "ok", "hits": [[value, count] for value, count in hits], "epoch": service.shard.epoch}


async def ordered_points(service: NodeService, params: Params, body: Body) -> Body:
    """POST /v1/collections/{name}/points/ordered: `{order_by, limit, filter?}` -> this shard's
    first `limit` `[value, id]` pairs in order_by order."""
    await service.catch_up(body)
    await service.check_consistency(parse_consistency(body.get("consistency")))
    collection = service.shard.collection(params["name"])
    order = ordering.OrderBy.from_dict(body.get("order_by"))
    limit = field_int(body, "limit", 10, 1, MAX_SCROLL_LIMIT)
    if limit is None:
        raise InvalidRequest(f"limit must be an integer in 1..{MAX_SCROLL_LIMIT}")
    raw = body.get("filter")
    condition = service.shard.resolve(params["name"], None if raw is None else parse_filter(raw))
    pairs = await service.run_read(lambda: ordering.ordered_points(collection, order, condition, limit))
    return {
        "status": "ok",
        "points": [[value, point] for value, point in pairs],
        "epoch": service.shard.epoch,
    }


ROUTES = (
    Route("POST", "/v1/collections/{name}/facet", facet_counts),
    Route("POST", "/v1/collections/{name}/points/ordered", ordered_points),
)
"""The value-read routes, added to the node's route table."""
