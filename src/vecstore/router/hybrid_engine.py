"""The hybrid query engine (`vecstore.router.hybrid`) wired to this router's shards: its
nearest searches (dense, of a named vector, or sparse) and its point fetches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vecstore.cluster.errors import CollectionNotFound, InvalidVector, NotFound
from vecstore.cluster.filters import Filter
from vecstore.cluster.schema import CollectionSchema, VectorSpec
from vecstore.router.hybrid import HybridQuery, MultiQuery, SparseQuery, hits_of
from vecstore.router.shards import ShardSet


def hybrid_engine(
    shards: ShardSet,
    name: str,
    schema: CollectionSchema,
    consistency: str,
    after: Mapping[int, int] | None = None,
) -> HybridQuery:
    """The engine for one collection and request (reads at `consistency`, after `after`)."""
    token = {"after": after} if after else {}

    async def search(
        target: Any,
        using: str | None,
        condition: Filter | None,
        k: int,
        payload: bool,
        vectors: bool | tuple[str, ...],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        common = {"with_payload": payload, "with_vector": vectors, **options, **token}
        if isinstance(target, MultiQuery):
            return await shards.search_multi(name, target, using, k, condition, consistency, **common)
        if isinstance(target, SparseQuery):
            return await shards.search_sparse(name, target, using, k, condition, consistency, **common)
        dimension = searched(schema, using).dimension
        if len(target) != dimension:
            raise InvalidVector(
                f"Wrong input: Vector dimension error: expected dim: {dimension}, got {len(target)}"
            )
        named: dict[str, Any] = {"using": using} if using is not None else {}
        found, _ = await shards.search(
            name, [target], k, condition, consistency=consistency, **common, **named
        )
        return hits_of(found[0])

    async def fetch_from(other: str, ids: list[Any], vectors: bool | tuple[str, ...]) -> list[dict[str, Any]]:
        """Vectors of points of another collection (`lookup_from`), an alias resolved."""
        real = await shards.resolve(other)
        try:
            await shards.schema(real)
        except CollectionNotFound:
            raise NotFound(f"Not found: Collection `{other}` doesn't exist!") from None
        return hits_of(await shards.get(real, ids, consistency, with_payload=False, with_vector=vectors))

    async def fetch(ids: list[Any], payload: bool, vectors: bool | tuple[str, ...]) -> list[dict[str, Any]]:
        found = await shards.get(name, ids, consistency, after, with_payload=payload, with_vector=vectors)
        return hits_of(found)

    return HybridQuery(schema, search, fetch, fetch_from)


def searched(schema: CollectionSchema, using: str | None) -> VectorSpec:
    """What a dense query searches: the collection's one vector, or its named vector `using`."""
    return schema.searched(using)
