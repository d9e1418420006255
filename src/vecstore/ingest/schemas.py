"""The collection schemas records are validated against, fetched from a node and cached.

Every shard holds every collection's schema (creates are fanned out), so any node's
`GET /v1/collections` answers. The cache is refreshed when a record names a collection
it does not know, at most once per `min_refresh_seconds`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from vecstore.cluster.errors import InvalidSchema
from vecstore.cluster.schema import CollectionSchema
from vecstore.transport.node_client import NodeClient

log = logging.getLogger(__name__)


class SchemaCache:
    """Collection name -> schema, as the cluster last reported it."""

    def __init__(self, client: NodeClient, min_refresh_seconds: float = 1.0) -> None:
        self.client = client
        self.min_refresh_seconds = min_refresh_seconds
        self.schemas: dict[str, CollectionSchema] = {}
        self._refreshed_at: float | None = None

    async def refresh(self) -> Mapping[str, CollectionSchema]:
        """Fetch every schema from one node (any replica of any shard)."""
        answer = await self.client.request("any", "GET", "/v1/collections")
        schemas: dict[str, CollectionSchema] = {}
        for entry in answer.get("collections", []):
            try:
                schema = CollectionSchema.from_dict(entry["schema"])
            except (InvalidSchema, KeyError, TypeError) as err:
                log.warning("skipping a schema the node reported", extra={"error": str(err)})
                continue
            schemas[schema.name] = schema
        self.schemas = schemas
        self._refreshed_at = time.monotonic()
        return schemas

    async def refresh_for(self, missing: frozenset[str]) -> bool:
        """Refresh because records named `missing`; True if any of them is now known.

        Rate-limited so a stream of records for a collection that does not exist costs one
        request per interval, not one per batch. A node error propagates (VecStoreError):
        an unreachable cluster must delay records, never send them to the dead-letter topic.
        """
        if not missing:
            return False
        now = time.monotonic()
        if self._refreshed_at is not None and now - self._refreshed_at < self.min_refresh_seconds:
            return False
        await self.refresh()
        return any(name in self.schemas for name in missing)
