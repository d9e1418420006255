"""`AsyncClient`: VecStore from asyncio code.

One client talks to one router address (any router of a cluster answers every request;
put a load balancer in front of several). Requests travel as msgpack over the router's
`/v1/rpc` WebSocket (plain HTTP when the router or a proxy does not upgrade), vectors as
raw float32 both ways (no Python float per element), and retriable errors (a shard
electing a leader, a timeout, a router restarting) are retried until `retry_seconds`.

Every write answers a read token; the client keeps the merge of them and passes it with
each read, so a read sees this client's acknowledged writes even through another router
(`read_your_writes=False` turns that off).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vecstore.client.models import (
    CollectionInfo,
    Hit,
    Point,
    PointId,
    WriteResult,
    hit_of,
    point_of,
)
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.read_token import merge_tokens
from vecstore.cluster.schema import CollectionSchema
from vecstore.transport.router_client import DEFAULT_ROUTER, RouterClient

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

DEFAULT_BATCH = 1_000
DEFAULT_PARALLEL = 4
Ids = Sequence[PointId | np.integer[Any]] | npt.NDArray[Any]
"""Point ids: a sequence of ints (numpy's too) or UUID strings, or an integer array."""
Filter = dict[str, Any]
"""A filter (docs/filters.md): {"must": [...], "should": [...], "must_not": [...]}, or one
condition such as {"key": "lang", "match": {"value": "en"}}."""


def as_matrix(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Vectors as a C-ordered float32 matrix (one row per vector); a single vector is one row."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2:
        raise InvalidRequest(f"vectors must be a matrix (one row per vector), got shape {matrix.shape}")
    return matrix


def as_ids(ids: Ids) -> list[PointId]:
    """Point ids as Python ints or strings (numpy integers included)."""
    if isinstance(ids, np.ndarray):
        listed: list[PointId] = ids.tolist()
        return listed
    return [i.item() if isinstance(i, np.generic) else i for i in ids]


class AsyncClient:
    """VecStore's asyncio client; use `async with AsyncClient(url) as client:`."""

    def __init__(
        self,
        url: str = DEFAULT_ROUTER,
        *,
        api_key: str | None = None,
        ca_file: str | Path | None = None,
        timeout: float = 60.0,
        retry_seconds: float = 30.0,
        connect_seconds: float = 3.0,
        connections: int = 1,
        rpc: bool = True,
        read_your_writes: bool = True,
    ) -> None:
        """`timeout`: one request; `retry_seconds`: how long retriable errors are retried;
        `connections`: WebSockets to the router, used in turn (each carries many requests
        at once; more help only when the client's own CPU is not the limit); `ca_file`:
        trust this CA for an https router; `rpc=False`: plain HTTP requests."""
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self._routers = [
            RouterClient(
                url,
                api_key=api_key,
                deadline_seconds=retry_seconds,
                request_seconds=timeout,
                connect_seconds=connect_seconds,
                rpc=rpc,
                ca_file=ca_file,
            )
            for _ in range(connections)
        ]
        self._turn = itertools.cycle(self._routers)
        self.url = self._routers[0].url
        self.read_your_writes = read_your_writes
        self.read_token = ""
        """The merge of every write's read token (what reads pass as `after`)."""

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        for router in self._routers:
            await router.close()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await next(self._turn).request(method, path, body)

    def _wrote(self, answer: dict[str, Any], count: int) -> WriteResult:
        token = str(answer.get("read_token", ""))
        self.read_token = merge_tokens(self.read_token, token)
        return WriteResult(count, token)

    def _read_body(self, body: dict[str, Any], consistency: str | None, after: str | None) -> dict[str, Any]:
        if consistency is not None:
            body["consistency"] = consistency
        token = after or ""
        if self.read_your_writes:
            token = merge_tokens(token, self.read_token)
        if token:
            body["after"] = token
        return body

    # ---- cluster and collections -------------------------------------------------------

    async def ready(self) -> bool:
        """True when the router answers that every shard has a leader."""
        return await self._routers[0].ready()

    async def wait_ready(self, seconds: float = 30.0) -> None:
        """Wait until the router is ready, or raise Unavailable after `seconds`."""
        await self._routers[0].wait_ready(seconds)

    async def status(self) -> list[dict[str, Any]]:
        """Every node's status document, shard by shard."""
        answer = await self._request("GET", "/v1/status")
        nodes: list[dict[str, Any]] = answer["nodes"]
        return nodes

    async def collections(self) -> list[CollectionSchema]:
        """Every collection's schema."""
        answer = await self._request("GET", "/v1/collections")
        return [CollectionSchema.from_dict(schema) for schema in answer["collections"]]

    async def create_collection(
        self,
        name: str,
        dimension: int | None = None,
        *,
        metric: str = "cosine",
        dtype: str = "f32",
        hnsw: dict[str, int] | None = None,
        vectors: dict[str, dict[str, Any]] | None = None,
        sparse_vectors: dict[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Create a collection; False if it already exists with the same schema (a different
        one raises CollectionConflict). One unnamed vector: `dimension`, `metric` (cosine,
        l2 or dot), `dtype` (f32, f16, i8), `hnsw` (connectivity, expansion_add,
        expansion_search). Named vectors instead: `vectors` maps each name to those fields
        ({"text": {"dimension": 384}}), `sparse_vectors` each sparse name to its settings
        ({"bm25": {"modifier": "idf"}})."""
        body: dict[str, Any]
        if vectors is not None or sparse_vectors is not None:
            if dimension is not None:
                raise ValueError("give either dimension (one unnamed vector) or vectors (named ones)")
            body = {"vectors": vectors or {}, "sparse_vectors": sparse_vectors or {}}
        elif dimension is None:
            raise ValueError("a collection needs a dimension, or named vectors")
        else:
            body = {"dimension": dimension, "metric": metric, "dtype": dtype}
            if hnsw is not None:
                body["hnsw"] = hnsw
        answer = await self._request("PUT", f"/v1/collections/{name}", body)
        return bool(answer["created"])

    async def collection(self, name: str) -> CollectionInfo:
        """A collection's schema and counts (raises NotFound for an unknown one)."""
        answer = await self._request("GET", f"/v1/collections/{name}")
        return CollectionInfo(
            schema=CollectionSchema.from_dict(answer["schema"]),
            points=int(answer["points"]),
            segments=int(answer["segments"]),
            indexing_lag=int(answer["indexing_lag"]),
            tombstones=int(answer["tombstones"]),
        )

    async def drop_collection(self, name: str) -> bool:
        """Drop a collection and its points; False if it did not exist."""
        answer = await self._request("DELETE", f"/v1/collections/{name}")
        return bool(answer["dropped"])

    # ---- writes ------------------------------------------------------------------------

    async def upsert(
        self,
        collection: str,
        ids: Ids,
        vectors: npt.ArrayLike,
        payloads: Sequence[dict[str, Any] | None] | None = None,
    ) -> WriteResult:
        """Insert or replace points in one request (at most the router's batch limit, 10,000
        by default; `upload` splits any number). Acknowledged when every shard holding one
        of them has it on a majority of its replicas."""
        point_ids = as_ids(ids)
        matrix = as_matrix(vectors)
        body: dict[str, Any] = {"ids": point_ids, "vectors": matrix}
        if payloads is not None:
            body["payloads"] = list(payloads)
        answer = await self._request("PUT", f"/v1/collections/{collection}/points", body)
        return self._wrote(answer, int(answer.get("upserted", len(point_ids))))

    async def upsert_points(self, collection: str, points: Sequence[dict[str, Any]]) -> WriteResult:
        """Insert or replace points given as {"id", "vector", "payload"}: for a collection of
        named vectors, "vector" maps names to dense vectors (lists or arrays) or sparse ones
        ({"indices", "values"}); a point may leave any of them out."""
        body = {"points": [_point_body(point) for point in points]}
        answer = await self._request("PUT", f"/v1/collections/{collection}/points", body)
        return self._wrote(answer, int(answer.get("upserted", len(points))))

    async def update_vectors(self, collection: str, vectors: dict[PointId, dict[str, Any]]) -> WriteResult:
        """Set named vectors of existing points ({id: {name: vector}}); their other vectors
        and payloads stay."""
        points = [_point_body({"id": point_id, "vector": named}) for point_id, named in vectors.items()]
        answer = await self._request(
            "PUT", f"/v1/collections/{collection}/points/vectors", {"points": points}
        )
        return self._wrote(answer, int(answer.get("updated", len(points))))

    async def delete_vectors(
        self, collection: str, names: Sequence[str], ids: Ids | None = None, filter: Filter | None = None
    ) -> WriteResult:
        """Remove named vectors from the points chosen by `ids` or `filter` (they stay)."""
        body: dict[str, Any] = {"vectors": list(names), **_selector(ids, filter)}
        answer = await self._request("POST", f"/v1/collections/{collection}/points/vectors/delete", body)
        return self._wrote(answer, int(answer.get("updated", 0)))

    async def upload(
        self,
        collection: str,
        ids: Ids,
        vectors: npt.ArrayLike,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH,
        parallel: int = DEFAULT_PARALLEL,
        progress: bool = False,
    ) -> WriteResult:
        """Upsert any number of points in batches of `batch_size`, `parallel` at a time,
        with a progress bar (tqdm, on stderr) if asked. A failed batch raises once the
        batches in flight end; every upsert is idempotent, so calling again is safe."""
        point_ids = as_ids(ids)
        matrix = as_matrix(vectors)
        if len(point_ids) != len(matrix) or (payloads is not None and len(payloads) != len(point_ids)):
            raise InvalidRequest("ids, vectors and payloads must have the same length")
        if batch_size < 1 or parallel < 1:
            raise ValueError("batch_size and parallel must be at least 1")
        bar = _progress_bar(len(point_ids), collection) if progress else None
        gate = asyncio.Semaphore(parallel)
        total = 0

        async def send(start: int) -> None:
            nonlocal total
            end = start + batch_size
            async with gate:
                part = None if payloads is None else payloads[start:end]
                written = await self.upsert(collection, point_ids[start:end], matrix[start:end], part)
            total += written.count
            if bar is not None:
                bar.update(end - start if end <= len(point_ids) else len(point_ids) - start)

        try:
            async with asyncio.TaskGroup() as group:
                for start in range(0, len(point_ids), batch_size):
                    group.create_task(send(start))
        except* Exception as failed:
            raise failed.exceptions[0] from None
        finally:
            if bar is not None:
                bar.close()
        return WriteResult(total, self.read_token)

    async def delete(
        self, collection: str, *, ids: Ids | None = None, filter: Filter | None = None
    ) -> WriteResult:
        """Delete points by ids or by filter (exactly one of them)."""
        answer = await self._request(
            "POST", f"/v1/collections/{collection}/points/delete", _selector(ids, filter)
        )
        return self._wrote(answer, int(answer.get("deleted", 0)))

    async def set_payload(
        self,
        collection: str,
        payload: dict[str, Any],
        *,
        ids: Ids | None = None,
        filter: Filter | None = None,
        overwrite: bool = False,
    ) -> WriteResult:
        """Merge `payload`'s keys into the chosen points' payloads (`overwrite=True`: replace
        the payloads)."""
        body = {"payload": payload, **_selector(ids, filter)}
        method = "PUT" if overwrite else "POST"
        answer = await self._request(method, f"/v1/collections/{collection}/points/payload", body)
        return self._wrote(answer, int(answer.get("updated", 0)))

    async def delete_payload_keys(
        self,
        collection: str,
        keys: Sequence[str],
        *,
        ids: Ids | None = None,
        filter: Filter | None = None,
    ) -> WriteResult:
        """Remove payload keys from the chosen points."""
        body = {"keys": list(keys), **_selector(ids, filter)}
        answer = await self._request("POST", f"/v1/collections/{collection}/points/payload/delete", body)
        return self._wrote(answer, int(answer.get("updated", 0)))

    # ---- reads -------------------------------------------------------------------------

    async def get(
        self,
        collection: str,
        ids: Ids,
        *,
        with_payload: bool = True,
        with_vector: bool | list[str] = False,
        consistency: str | None = None,
        after: str | None = None,
    ) -> list[Point]:
        """The points with these ids that exist, in the order asked."""
        body = {
            "ids": as_ids(ids),
            "with_payload": with_payload,
            "with_vector": with_vector,
            "binary_vectors": True,
        }
        answer = await self._request(
            "POST", f"/v1/collections/{collection}/points/get", self._read_body(body, consistency, after)
        )
        return [point_of(raw) for raw in answer["points"]]

    async def scroll(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        limit: int = DEFAULT_BATCH,
        offset: PointId | None = None,
        with_payload: bool = True,
        with_vector: bool | list[str] = False,
        consistency: str | None = None,
        after: str | None = None,
    ) -> tuple[list[Point], PointId | None]:
        """A page of points in id order from `offset`, and the offset of the next page
        (None after the last one)."""
        body: dict[str, Any] = {
            "offset": offset,
            "limit": limit,
            "with_payload": with_payload,
            "with_vector": with_vector,
            "binary_vectors": True,
        }
        if filter is not None:
            body["filter"] = as_filter(filter)
        answer = await self._request(
            "POST", f"/v1/collections/{collection}/points/scroll", self._read_body(body, consistency, after)
        )
        return [point_of(raw) for raw in answer["points"]], answer["next_offset"]

    async def iterate(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        batch_size: int = DEFAULT_BATCH,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> AsyncIterator[Point]:
        """Every (matching) point in id order, fetched a page at a time."""
        offset: PointId | None = None
        while True:
            points, offset = await self.scroll(
                collection,
                filter=filter,
                limit=batch_size,
                offset=offset,
                with_payload=with_payload,
                with_vector=with_vector,
            )
            for point in points:
                yield point
            if offset is None:
                return

    async def count(
        self,
        collection: str,
        filter: Filter | None = None,
        *,
        consistency: str | None = None,
        after: str | None = None,
    ) -> int:
        """How many points (match `filter`)."""
        body: dict[str, Any] = {} if filter is None else {"filter": as_filter(filter)}
        answer = await self._request(
            "POST", f"/v1/collections/{collection}/points/count", self._read_body(body, consistency, after)
        )
        return int(answer["count"])

    async def search(
        self,
        collection: str,
        vector: npt.ArrayLike,
        *,
        k: int = 10,
        filter: Filter | None = None,
        ef: int | None = None,
        exact: bool = False,
        score_threshold: float | None = None,
        with_payload: bool = True,
        with_vector: bool | list[str] = False,
        consistency: str | None = None,
        after: str | None = None,
        using: str | None = None,
    ) -> list[Hit]:
        """The `k` nearest points to `vector`, best first (`using`: which named vector;
        `with_vector`: true, false, or the names of the named vectors to return)."""
        found = await self.search_batch(
            collection,
            as_matrix(vector),
            k=k,
            filter=filter,
            ef=ef,
            exact=exact,
            score_threshold=score_threshold,
            with_payload=with_payload,
            with_vector=with_vector,
            consistency=consistency,
            after=after,
            using=using,
        )
        return found[0]

    async def query(
        self,
        collection: str,
        query: Any,
        *,
        prefetch: list[dict[str, Any]] | None = None,
        using: str | None = None,
        filter: Filter | None = None,
        limit: int = 10,
        offset: int = 0,
        exact: bool = False,
        score_threshold: float | None = None,
        with_payload: bool = True,
        with_vector: bool | list[str] = False,
        consistency: str | None = None,
        after: str | None = None,
    ) -> list[Hit]:
        """A multi-stage query (docs/api.md, "Sparse vectors and multi-stage queries"):
        `query` is a dense vector, {"indices", "values"}, a BM25 document {"text", "model":
        "qdrant/bm25"}, a point id, {"nearest": ..., "mmr": {...}}, or with `prefetch` (a
        list of {"query", "using", "filter", "limit", "prefetch"}) {"fusion": "rrf" | "dbsf"}."""
        body: dict[str, Any] = {
            "query": query.tolist() if isinstance(query, np.ndarray) else query,
            "limit": limit,
            "offset": offset,
            "with_payload": with_payload,
            "with_vector": with_vector,
            "binary_vectors": True,
        }
        optional = {
            "prefetch": prefetch,
            "using": using,
            "filter": None if filter is None else as_filter(filter),
            "score_threshold": score_threshold,
            "params": {"exact": True} if exact else None,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        answer = await self._request(
            "POST", f"/v1/collections/{collection}/query", self._read_body(body, consistency, after)
        )
        return [hit_of(raw) for raw in answer["result"]]

    async def search_batch(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        *,
        k: int = 10,
        filter: Filter | None = None,
        ef: int | None = None,
        exact: bool = False,
        score_threshold: float | None = None,
        with_payload: bool = True,
        with_vector: bool | list[str] = False,
        consistency: str | None = None,
        after: str | None = None,
        using: str | None = None,
    ) -> list[list[Hit]]:
        """The `k` nearest points to each row of `vectors` (one scatter-gather for all)."""
        body: dict[str, Any] = {
            "vectors": as_matrix(vectors),
            "k": k,
            "exact": exact,
            "with_payload": with_payload,
            "with_vector": with_vector,
            "binary_vectors": True,
        }
        optional = {
            "filter": None if filter is None else as_filter(filter),
            "ef": ef,
            "score_threshold": score_threshold,
            "using": using,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        answer = await self._request(
            "POST", f"/v1/collections/{collection}/search", self._read_body(body, consistency, after)
        )
        return [[hit_of(raw) for raw in hits] for hits in answer["results"]]

    # ---- DataFrames (the `dataframes` extra: pandas, polars) ---------------------------

    async def _columns(
        self, collection: str, filter: Filter | None, with_vectors: bool, batch_size: int
    ) -> list[Point]:
        return [
            point
            async for point in self.iterate(
                collection, filter=filter, batch_size=batch_size, with_vector=with_vectors
            )
        ]

    async def to_pandas(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        with_vectors: bool = True,
        batch_size: int = DEFAULT_BATCH,
    ) -> pd.DataFrame:
        """The (matching) points as a pandas DataFrame: `id`, `vector` (float32 arrays) and
        one column per top-level payload key."""
        from vecstore.client.frames import points_to_pandas

        return points_to_pandas(await self._columns(collection, filter, with_vectors, batch_size))

    async def to_polars(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        with_vectors: bool = True,
        batch_size: int = DEFAULT_BATCH,
    ) -> pl.DataFrame:
        """The (matching) points as a polars DataFrame: `id`, `vector` (Array of Float32) and
        one column per top-level payload key."""
        from vecstore.client.frames import points_to_polars

        return points_to_polars(await self._columns(collection, filter, with_vectors, batch_size))

    async def from_pandas(
        self,
        collection: str,
        frame: pd.DataFrame,
        *,
        id_column: str = "id",
        vector_column: str = "vector",
        payload_columns: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH,
        parallel: int = DEFAULT_PARALLEL,
        progress: bool = False,
    ) -> WriteResult:
        """Upsert a pandas DataFrame's rows: ids from `id_column`, vectors from
        `vector_column` (arrays or lists), payloads from `payload_columns` (default: every
        other column; missing values are left out of the payload)."""
        from vecstore.client.frames import pandas_columns

        ids, matrix, payloads = pandas_columns(frame, id_column, vector_column, payload_columns)
        return await self.upload(
            collection, ids, matrix, payloads, batch_size=batch_size, parallel=parallel, progress=progress
        )

    async def from_polars(
        self,
        collection: str,
        frame: pl.DataFrame,
        *,
        id_column: str = "id",
        vector_column: str = "vector",
        payload_columns: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH,
        parallel: int = DEFAULT_PARALLEL,
        progress: bool = False,
    ) -> WriteResult:
        """Upsert a polars DataFrame's rows (as `from_pandas`; `vector_column` may be an
        Array or List column)."""
        from vecstore.client.frames import polars_columns

        ids, matrix, payloads = polars_columns(frame, id_column, vector_column, payload_columns)
        return await self.upload(
            collection, ids, matrix, payloads, batch_size=batch_size, parallel=parallel, progress=progress
        )


CLAUSES = frozenset({"must", "should", "must_not"})


def as_filter(condition: Filter) -> Filter:
    """A filter: `{"must": [...], "should": [...], "must_not": [...]}` as it is, a single
    condition (`{"key": "lang", "match": {"value": "en"}}`) as `{"must": [condition]}`."""
    return condition if CLAUSES & condition.keys() else {"must": [condition]}


def _point_body(point: dict[str, Any]) -> dict[str, Any]:
    """A point for the wire: dense vectors as lists (named ones too), sparse ones as given."""
    unknown = set(point) - {"id", "vector", "payload"}
    if "id" not in point or "vector" not in point or unknown:
        raise InvalidRequest("a point is {'id', 'vector', 'payload' (optional)}")
    vector = point["vector"]
    if isinstance(vector, dict):
        vector = {
            name: value if isinstance(value, dict) else np.asarray(value, dtype=np.float32).tolist()
            for name, value in vector.items()
        }
    else:
        vector = np.asarray(vector, dtype=np.float32).tolist()
    body = {"id": point["id"], "vector": vector}
    if point.get("payload") is not None:
        body["payload"] = point["payload"]
    return body


def _selector(ids: Ids | None, filter: Filter | None) -> dict[str, Any]:
    if (ids is None) == (filter is None):
        raise InvalidRequest("choose points by ids or by filter: exactly one of them")
    return {"ids": as_ids(ids)} if ids is not None else {"filter": as_filter(filter)}  # type: ignore[arg-type]


def _progress_bar(total: int, collection: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="points", desc=f"upload to {collection}", unit_scale=True)
