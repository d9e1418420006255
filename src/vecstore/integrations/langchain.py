"""LangChain's `VectorStore` on a VecStore collection (the `langchain` extra).

One document is one point: its embedding, and the payload `{"page_content": text,
"metadata": {...}, "id": LangChain's id}` (key names configurable). The point id is
`point_id_of(id)`, a UUID, so any string id works. Only `from_texts` creates a collection
(if missing); nothing here drops one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from vecstore.client import AsyncClient, Client, Hit, Point
from vecstore.client.aio import DEFAULT_BATCH
from vecstore.integrations.document_ids import point_id_of
from vecstore.integrations.langchain_filters import native_filter

SEARCH_OPTIONS = frozenset({"filter", "ef", "exact"})
"""What the search methods take besides LangChain's own arguments."""


class VecStoreVectorStore(VectorStore):
    """A VecStore collection as a LangChain vector store.

    Give `client=` (a `Client`, used by the blocking methods), `async_client=` (an
    `AsyncClient`, used by the `a*` methods; without it they run the blocking ones in a
    thread), both, or `url=` (and `api_key=`) to have a `Client` made and owned (`close()`).
    Search methods take `filter=` (see `langchain_filters`), `ef=` and `exact=True`.
    """

    def __init__(
        self,
        collection_name: str,
        embedding: Embeddings,
        *,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        url: str | None = None,
        api_key: str | None = None,
        content_key: str = "page_content",
        metadata_key: str = "metadata",
        id_key: str = "id",
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        if url is not None and client is not None:
            raise ValueError("pass client= or url=, not both")
        if url is None and client is None and async_client is None:
            raise ValueError("pass client= (a vecstore.client.Client), async_client= or url=")
        if len({content_key, metadata_key, id_key}) != 3 or not all((content_key, metadata_key, id_key)):
            raise ValueError("content_key, metadata_key and id_key must be three different non-empty keys")
        self._owned_client = Client(url, api_key=api_key) if url is not None else None
        self._client = client if client is not None else self._owned_client
        self._async_client = async_client
        self.collection_name = collection_name
        self.embedding = embedding
        self.content_key = content_key
        self.metadata_key = metadata_key
        self.id_key = id_key
        self.batch_size = batch_size
        self._metric: str | None = None

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    def close(self) -> None:
        """Close the client this store made from `url=` (clients passed in stay open)."""
        if self._owned_client is not None:
            self._owned_client.close()

    def _blocking(self) -> Client:
        if self._client is None:
            raise RuntimeError(
                "this store has only an AsyncClient: use the async methods (aadd_texts, "
                "asimilarity_search, ...) or pass client= too"
            )
        return self._client

    # ---- writes ------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts; the ids are LangChain's (new UUID strings where missing).
        Takes `batch_size=` (points per request)."""
        listed = list(texts)
        batch_size = _batch_size(kwargs, self.batch_size)
        if not listed:
            return []
        vectors = self.embedding.embed_documents(listed)
        document_ids, point_ids, payloads = self._points(listed, metadatas, ids)
        self._blocking().upload(
            self.collection_name, point_ids, _matrix(vectors), payloads, batch_size=batch_size
        )
        return document_ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        if self._async_client is None:
            return await super().aadd_texts(texts, metadatas, ids=ids, **kwargs)
        listed = list(texts)
        batch_size = _batch_size(kwargs, self.batch_size)
        if not listed:
            return []
        vectors = await self.embedding.aembed_documents(listed)
        document_ids, point_ids, payloads = self._points(listed, metadatas, ids)
        await self._async_client.upload(
            self.collection_name, point_ids, _matrix(vectors), payloads, batch_size=batch_size
        )
        return document_ids

    def _points(
        self, texts: list[str], metadatas: list[dict[str, Any]] | None, ids: Sequence[str | None] | None
    ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """The documents' ids, their point ids and their payloads."""
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"got {len(metadatas)} metadatas for {len(texts)} texts; expected one per text")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts; expected one per text")
        given: Sequence[str | None] = ids if ids is not None else [None] * len(texts)
        document_ids = [document_id or str(uuid.uuid4()) for document_id in given]
        payloads = [
            {self.content_key: text, self.metadata_key: dict(metadata or {}), self.id_key: document_id}
            for text, metadata, document_id in zip(
                texts, metadatas if metadatas is not None else [None] * len(texts), document_ids, strict=True
            )
        ]
        return document_ids, [point_id_of(i) for i in document_ids], payloads

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete the documents with these ids, or those matching `filter=`; with neither,
        raise rather than delete everything."""
        selector = self._delete_selector(ids, kwargs)
        if selector:
            self._blocking().delete(self.collection_name, **selector)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if self._async_client is None:
            return await super().adelete(ids, **kwargs)
        selector = self._delete_selector(ids, kwargs)
        if selector:
            await self._async_client.delete(self.collection_name, **selector)
        return True

    def _delete_selector(self, ids: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """`delete`'s arguments for the client; empty when there is nothing to delete."""
        _check_options(kwargs, {"filter"}, "delete")
        condition = native_filter(kwargs.get("filter"), self.metadata_key)
        if (ids is None) == (condition is None):
            raise ValueError(
                "pass ids= or filter= (exactly one); deleting every document needs an explicit filter"
            )
        if ids is not None:
            return {"ids": [point_id_of(i) for i in ids]} if ids else {}
        return {"filter": condition}

    # ---- reads -------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids that exist (in the order asked)."""
        if not ids:
            return []
        points = self._blocking().get(self.collection_name, [point_id_of(i) for i in ids])
        return [self._document(point) for point in points]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if self._async_client is None:
            return await super().aget_by_ids(ids)
        if not ids:
            return []
        points = await self._async_client.get(self.collection_name, [point_id_of(i) for i in ids])
        return [self._document(point) for point in points]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [document for document, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [document for document, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and their scores, best first: the cosine similarity or dot product
        (higher is closer), or the euclidean distance for an l2 collection (lower is closer)."""
        return self.similarity_search_with_score_by_vector(self.embedding.embed_query(query), k, **kwargs)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if self._async_client is None:
            return await super().asimilarity_search_with_score(query, k, **kwargs)
        embedding = await self.embedding.aembed_query(query)
        return await self.asimilarity_search_with_score_by_vector(embedding, k, **kwargs)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        return [
            document for document, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)
        ]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        found = await self.asimilarity_search_with_score_by_vector(embedding, k, **kwargs)
        return [document for document, _ in found]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """`similarity_search_with_score` for an embedding."""
        options = self._search_options(kwargs)
        hits = self._blocking().search(self.collection_name, embedding, k=k, **options)
        return [(self._document(hit), hit.score) for hit in hits]

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """`similarity_search_with_score` for an embedding, asynchronously."""
        if self._async_client is None:
            return await run_in_executor(
                None, self.similarity_search_with_score_by_vector, embedding, k, **kwargs
            )
        options = self._search_options(kwargs)
        hits = await self._async_client.search(self.collection_name, embedding, k=k, **options)
        return [(self._document(hit), hit.score) for hit in hits]

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """`k` of the `fetch_k` nearest documents, chosen for relevance and diversity (LangChain's
        `maximal_marginal_relevance` over the stored vectors)."""
        embedding = self.embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(embedding, k, fetch_k, lambda_mult, **kwargs)

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        embedding = await self.embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(
            embedding, k, fetch_k, lambda_mult, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        options = self._search_options(kwargs)
        hits = self._blocking().search(
            self.collection_name, embedding, k=fetch_k, with_vector=True, **options
        )
        return self._most_marginal(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        if self._async_client is None:
            return await super().amax_marginal_relevance_search_by_vector(
                embedding, k, fetch_k, lambda_mult, **kwargs
            )
        options = self._search_options(kwargs)
        hits = await self._async_client.search(
            self.collection_name, embedding, k=fetch_k, with_vector=True, **options
        )
        return self._most_marginal(embedding, hits, k, lambda_mult)

    def _most_marginal(
        self, embedding: list[float], hits: list[Hit], k: int, lambda_mult: float
    ) -> list[Document]:
        vectors = [hit.vector.tolist() for hit in hits if isinstance(hit.vector, np.ndarray)]
        if len(vectors) != len(hits):
            raise RuntimeError("the router answered hits without the vectors asked for")
        query = np.asarray(embedding, dtype=np.float32)
        chosen = maximal_marginal_relevance(query, vectors, lambda_mult=lambda_mult, k=k)
        return [self._document(hits[i]) for i in chosen]

    def _search_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        _check_options(kwargs, SEARCH_OPTIONS, "search")
        options: dict[str, Any] = {name: kwargs[name] for name in ("ef", "exact") if name in kwargs}
        options["filter"] = native_filter(kwargs.get("filter"), self.metadata_key)
        return options

    def _document(self, point: Point | Hit) -> Document:
        payload = point.payload or {}
        metadata = payload.get(self.metadata_key)
        return Document(
            id=str(payload.get(self.id_key, point.id)),
            page_content=str(payload.get(self.content_key, "")),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
        )

    # ---- relevance scores --------------------------------------------------------------

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Scores as LangChain's relevance, 0 to 1 (1 is closest): a similarity as it is, an
        l2 distance through LangChain's euclidean function (meant for unit vectors); both
        clipped to [0, 1] (LangChain warns outside it, and a self-match can be 1.0000001)."""
        if self._metric is None:
            self._metric = self._blocking().collection(self.collection_name).schema.metric.value
        if self._metric == "l2":
            return _euclidean_relevance
        return _similarity_relevance

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if self._metric is None and self._async_client is not None:
            info = await self._async_client.collection(self.collection_name)
            self._metric = info.schema.metric.value
        return await super()._asimilarity_search_with_relevance_scores(query, k, **kwargs)

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = "langchain",
        metric: str = "cosine",
        **kwargs: Any,
    ) -> Self:
        """A store over `collection_name`, created if missing (the embedding's dimension,
        `metric` cosine, l2 or dot), with the texts added. Takes the constructor's
        keyword arguments (`client=` or `url=`, ...)."""
        store = cls(collection_name, embedding, **kwargs)
        vectors = embedding.embed_documents(texts) if texts else [embedding.embed_query("")]
        store._blocking().create_collection(collection_name, len(vectors[0]), metric=metric)
        if texts:
            _, point_ids, payloads = store._points(texts, metadatas, ids)
            store._blocking().upload(
                collection_name, point_ids, _matrix(vectors), payloads, batch_size=store.batch_size
            )
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = "langchain",
        metric: str = "cosine",
        **kwargs: Any,
    ) -> Self:
        """`from_texts` through `async_client=` (without one, in a thread)."""
        async_client = kwargs.get("async_client")
        if async_client is None:
            return await super().afrom_texts(
                texts, embedding, metadatas, ids=ids, collection_name=collection_name, metric=metric, **kwargs
            )
        store = cls(collection_name, embedding, **kwargs)
        vectors = await embedding.aembed_documents(texts) if texts else [await embedding.aembed_query("")]
        await async_client.create_collection(collection_name, len(vectors[0]), metric=metric)
        if texts:
            await store.aadd_texts(texts, metadatas, ids=ids)
        return store


def _similarity_relevance(score: float) -> float:
    return min(1.0, max(0.0, score))


def _euclidean_relevance(distance: float) -> float:
    return min(1.0, max(0.0, VectorStore._euclidean_relevance_score_fn(distance)))


def _matrix(vectors: list[list[float]]) -> npt.NDArray[np.float32]:
    return np.asarray(vectors, dtype=np.float32)


def _batch_size(kwargs: dict[str, Any], default: int) -> int:
    _check_options(kwargs, {"batch_size"}, "add_texts")
    size = kwargs.get("batch_size", default)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {size!r}")
    return size


def _check_options(kwargs: dict[str, Any], allowed: frozenset[str] | set[str], method: str) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{method} got unexpected arguments {unknown}; it takes {sorted(allowed)}")
