"""LlamaIndex's vector store on a VecStore collection (the `llamaindex` extra).

One node is one point: its embedding, and LlamaIndex's own payload for it
(`node_to_metadata_dict`: the node's metadata at the top level, `_node_content`,
`ref_doc_id`, ...) plus its text under `text`. The point id is `point_id_of(node_id)`.
The first `add` creates the collection if missing; nothing here drops one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from vecstore.client import AsyncClient, Client, Hit, NotFound, Point
from vecstore.client.aio import DEFAULT_BATCH
from vecstore.integrations.document_ids import point_id_of
from vecstore.integrations.llama_index_filters import Filter, native_filter

QUERY_OPTIONS = frozenset({"ef", "exact", "mmr_threshold", "mmr_prefetch_k"})
"""What `query` takes as keyword arguments (a retriever's `vector_store_kwargs`)."""

MMR_PREFETCH_FACTOR = 4
"""An MMR query looks at this many times `similarity_top_k` nearest nodes by default."""


class VecStoreVectorStore(BasePydanticVectorStore):
    """A VecStore collection as a LlamaIndex vector store (it keeps the nodes' text).

    Give `client=` (a `Client`, for the blocking methods), `async_client=` (an `AsyncClient`,
    for the async ones; without it they run the blocking ones in a thread), both, or `url=` (and
    `api_key=`) to have a `Client` made and owned (`close()`). `metric` is used only when
    `add` creates the collection. Similarities are the cosine similarity or dot product,
    or 1 / (1 + euclidean distance) for an l2 collection: higher is closer for all.
    """

    stores_text: bool = True
    flat_metadata: bool = False
    collection_name: str
    metric: str = "cosine"
    batch_size: int = DEFAULT_BATCH
    text_key: str = "text"

    _client: Client | None = PrivateAttr(default=None)
    _async_client: AsyncClient | None = PrivateAttr(default=None)
    _owned_client: Client | None = PrivateAttr(default=None)
    _collection_metric: str | None = PrivateAttr(default=None)

    def __init__(
        self,
        collection_name: str,
        *,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        url: str | None = None,
        api_key: str | None = None,
        metric: str = "cosine",
        batch_size: int = DEFAULT_BATCH,
        flat_metadata: bool = False,
        text_key: str = "text",
    ) -> None:
        if url is not None and client is not None:
            raise ValueError("pass client= or url=, not both")
        if url is None and client is None and async_client is None:
            raise ValueError("pass client= (a vecstore.client.Client), async_client= or url=")
        fields: dict[str, Any] = {  # pydantic fields (mypy sees only the base's)
            "collection_name": collection_name,
            "metric": metric,
            "batch_size": batch_size,
            "flat_metadata": flat_metadata,
            "text_key": text_key,
        }
        super().__init__(**fields)
        self._owned_client = Client(url, api_key=api_key) if url is not None else None
        self._client = client if client is not None else self._owned_client
        self._async_client = async_client

    @classmethod
    def class_name(cls) -> str:
        return "VecStoreVectorStore"

    @property
    def client(self) -> Client | AsyncClient | None:
        return self._client if self._client is not None else self._async_client

    def close(self) -> None:
        """Close the client this store made from `url=` (clients passed in stay open)."""
        if self._owned_client is not None:
            self._owned_client.close()

    def _blocking(self) -> Client:
        if self._client is None:
            raise RuntimeError(
                "this store has only an AsyncClient: use the async methods (async_add, aquery, ...) "
                "or pass client= too"
            )
        return self._client

    # ---- writes ------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert nodes (each with its embedding); the node ids."""
        _check_options(add_kwargs, frozenset(), "add")
        if not nodes:
            return []
        node_ids, point_ids, vectors, payloads = self._points(nodes)
        client = self._blocking()
        if self._collection_metric is None:
            try:
                self._collection_metric = client.collection(self.collection_name).schema.metric.value
            except NotFound:
                client.create_collection(self.collection_name, vectors.shape[1], metric=self.metric)
                self._collection_metric = self.metric
        client.upload(self.collection_name, point_ids, vectors, payloads, batch_size=self.batch_size)
        return node_ids

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        if self._async_client is None:
            return await asyncio.to_thread(self.add, nodes, **kwargs)
        _check_options(kwargs, frozenset(), "async_add")
        if not nodes:
            return []
        node_ids, point_ids, vectors, payloads = self._points(nodes)
        client = self._async_client
        if self._collection_metric is None:
            try:
                self._collection_metric = (await client.collection(self.collection_name)).schema.metric.value
            except NotFound:
                await client.create_collection(self.collection_name, vectors.shape[1], metric=self.metric)
                self._collection_metric = self.metric
        await client.upload(self.collection_name, point_ids, vectors, payloads, batch_size=self.batch_size)
        return node_ids

    def _points(
        self, nodes: Sequence[BaseNode]
    ) -> tuple[list[str], list[str], npt.NDArray[np.float32], list[dict[str, Any]]]:
        """The nodes' ids, point ids, embeddings and payloads."""
        payloads = []
        for node in nodes:
            payload = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            payload[self.text_key] = node.get_content(metadata_mode=MetadataMode.NONE)
            payloads.append(payload)
        vectors = np.asarray([node.get_embedding() for node in nodes], dtype=np.float32)
        node_ids = [node.node_id for node in nodes]
        return node_ids, [point_id_of(i) for i in node_ids], vectors, payloads

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document `ref_doc_id`."""
        _check_options(delete_kwargs, frozenset(), "delete")
        try:
            self._blocking().delete(self.collection_name, filter=_of_document(ref_doc_id))
        except NotFound:
            return  # no collection yet: nothing to delete

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        if self._async_client is None:
            await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)
            return
        _check_options(delete_kwargs, frozenset(), "adelete")
        try:
            await self._async_client.delete(self.collection_name, filter=_of_document(ref_doc_id))
        except NotFound:
            return

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete the nodes with these ids and/or matching `filters` (both: those that do both)."""
        _check_options(delete_kwargs, frozenset(), "delete_nodes")
        selector = _selection(node_ids, filters)
        if selector is None:
            raise ValueError("pass node_ids= or filters=; deleting every node is clear()")
        try:
            self._blocking().delete(self.collection_name, filter=selector)
        except NotFound:
            return

    def clear(self) -> None:
        """Delete every node this adapter wrote (points without LlamaIndex's payload stay)."""
        try:
            self._blocking().delete(self.collection_name, filter=ANY_NODE)
        except NotFound:
            return

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """The nodes with these ids and/or matching `filters`."""
        if node_ids is not None and filters is None:
            points = self._blocking().get(self.collection_name, [point_id_of(i) for i in node_ids])
            return [self._node(point) for point in points]
        selector = _selection(node_ids, filters)
        if selector is None:
            raise ValueError("pass node_ids= or filters=")
        return [
            self._node(point) for point in self._blocking().iterate(self.collection_name, filter=selector)
        ]

    # ---- queries -----------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The `similarity_top_k` nodes nearest to `query_embedding` (mode default), or that
        many chosen by maximal marginal relevance among the nearest (mode mmr)."""
        embedding, options = self._search(query, kwargs)
        client = self._blocking()
        try:
            if self._collection_metric is None:
                self._collection_metric = client.collection(self.collection_name).schema.metric.value
            hits = client.search(self.collection_name, embedding, **options)
        except NotFound:  # nothing added yet
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return self._result(query, embedding, hits, kwargs)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if self._async_client is None:
            return await asyncio.to_thread(self.query, query, **kwargs)
        embedding, options = self._search(query, kwargs)
        client = self._async_client
        try:
            if self._collection_metric is None:
                self._collection_metric = (await client.collection(self.collection_name)).schema.metric.value
            hits = await client.search(self.collection_name, embedding, **options)
        except NotFound:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return self._result(query, embedding, hits, kwargs)

    def _search(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        """The query's embedding and the client's search arguments."""
        _check_options(kwargs, QUERY_OPTIONS, "query")
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise ValueError(
                f"query mode {query.mode.value!r} is not supported by VecStore; use default or mmr"
            )
        if query.query_embedding is None:
            raise ValueError("VecStore queries need query_embedding (an embedding model on the index)")
        k = query.similarity_top_k
        if query.mode is VectorStoreQueryMode.MMR:
            k = int(kwargs.get("mmr_prefetch_k", k * MMR_PREFETCH_FACTOR))
        # empty node_ids and doc_ids restrict nothing (an index whose nodes live in the vector
        # store gives its retrievers node_ids=[], as for other stores)
        conditions = [
            condition
            for condition in (
                native_filter(query.filters),
                _selection(query.node_ids or None, None),
                {"key": "ref_doc_id", "match": {"any": query.doc_ids}} if query.doc_ids else None,
            )
            if condition is not None
        ]
        options: dict[str, Any] = {name: kwargs[name] for name in ("ef", "exact") if name in kwargs}
        options.update(
            k=k,
            filter={"must": conditions} if conditions else None,
            with_vector=query.mode is VectorStoreQueryMode.MMR,
        )
        return query.query_embedding, options

    def _result(
        self, query: VectorStoreQuery, embedding: list[float], hits: list[Hit], kwargs: dict[str, Any]
    ) -> VectorStoreQueryResult:
        if query.mode is VectorStoreQueryMode.MMR and hits:
            threshold = kwargs.get("mmr_threshold", query.mmr_threshold)
            similarities, chosen = get_top_k_mmr_embeddings(
                embedding,
                [hit.vector.tolist() for hit in hits if isinstance(hit.vector, np.ndarray)],
                similarity_top_k=query.similarity_top_k,
                embedding_ids=list(range(len(hits))),
                mmr_threshold=threshold,
            )
            picked = [hits[i] for i in chosen]
        else:
            picked = hits
            similarities = [self._similarity(hit.score) for hit in hits]
        nodes = [self._node(hit) for hit in picked]
        return VectorStoreQueryResult(
            nodes=nodes, similarities=list(similarities), ids=[node.node_id for node in nodes]
        )

    def _similarity(self, score: float) -> float:
        return 1.0 / (1.0 + score) if self._collection_metric == "l2" else score

    def _node(self, point: Point | Hit) -> BaseNode:
        """The stored node; a point written without LlamaIndex's payload becomes a TextNode."""
        payload = dict(point.payload or {})
        text = payload.get(self.text_key)
        if "_node_content" not in payload:
            return TextNode(id_=str(point.id), text=str(text or ""), metadata=payload)
        return metadata_dict_to_node(payload, text=None if text is None else str(text))


ANY_NODE: Filter = {"must_not": [{"is_empty": {"key": "_node_content"}}]}
"""Every point that holds a LlamaIndex node."""


def _of_document(ref_doc_id: str) -> Filter:
    return {"must": [{"key": "ref_doc_id", "match": {"value": ref_doc_id}}]}


def _selection(node_ids: list[str] | None, filters: MetadataFilters | None) -> Filter | None:
    """A native filter for nodes by id and/or metadata filters (None: no selection)."""
    conditions: list[Filter] = []
    if node_ids is not None:
        conditions.append({"has_id": [point_id_of(i) for i in node_ids]})
    condition = native_filter(filters)
    if condition is not None:
        conditions.append(condition)
    return {"must": conditions} if conditions else None


def _check_options(kwargs: dict[str, Any], allowed: frozenset[str], method: str) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{method} got unexpected arguments {unknown}; it takes {sorted(allowed) or 'none'}")
