"""The LlamaIndex adapter (`vecstore.integrations.llama_index`) against a real 2 x 3 cluster.

Embeddings are a deterministic hash of the text (no model, nothing downloaded), so every
answer is checked against brute force over the same vectors. Each test writes its own
collection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from tests.integration.conftest import started_cluster
from vecstore.client import AsyncClient, Client
from vecstore.integrations.document_ids import point_id_of
from vecstore.integrations.llama_index import VecStoreVectorStore
from vecstore.integrations.llama_index_filters import UnsupportedFilter
from vecstore.launcher.local_cluster import LocalCluster

DIM = 16
N = 120
TEXTS = [f"llama document {i}" for i in range(N)]
METADATAS: list[dict[str, Any]] = [{"n": i, "kind": ("a", "b", "c")[i % 3]} for i in range(N)]


class HashEmbedding(MockEmbedding):
    """A normal vector seeded by the text's SHA-256: deterministic, unrelated texts far apart."""

    def _get_text_embedding(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        vector: list[float] = np.random.default_rng(seed).normal(size=self.embed_dim).tolist()
        return vector

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)


EMBED = HashEmbedding(embed_dim=DIM)


def unit(vectors: npt.ArrayLike) -> npt.NDArray[np.float64]:
    matrix = np.asarray(vectors, dtype=np.float64)
    normalized: npt.NDArray[np.float64] = matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)
    return normalized


STORED = unit([EMBED.get_text_embedding(text) for text in TEXTS])


def brute_force(query: str, k: int, keep: list[int] | None = None) -> list[str]:
    """The document ids of the k documents nearest (cosine) to the query, among `keep`."""
    rows = np.arange(N) if keep is None else np.asarray(keep)
    similarities = STORED[rows] @ unit(EMBED.get_query_embedding(query))
    return [f"doc-{rows[i]}" for i in np.argsort(-similarities, kind="stable")[:k]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(tmp_path_factory.mktemp("llama_index") / "cluster", shards=2)


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.router_url) as client:
        yield client


@pytest.fixture(scope="module")
def index(client: Client) -> VectorStoreIndex:
    """Collection `li_docs` filled by `VectorStoreIndex.from_documents`: one node per document
    (short texts), embedded from the text alone (metadata excluded from embedding)."""
    documents = [
        Document(text=text, metadata=metadata, id_=f"doc-{i}", excluded_embed_metadata_keys=["n", "kind"])
        for i, (text, metadata) in enumerate(zip(TEXTS, METADATAS, strict=True))
    ]
    store = VecStoreVectorStore("li_docs", client=client)
    return VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=EMBED
    )


def store_of(index: VectorStoreIndex) -> VecStoreVectorStore:
    store = index.vector_store
    assert isinstance(store, VecStoreVectorStore)
    return store


def test_from_documents_creates_the_collection_and_stores_each_node(
    client: Client, index: VectorStoreIndex
) -> None:
    assert client.collection("li_docs").schema.dimension == DIM
    assert client.count("li_docs") == N
    nodes = store_of(index).get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="n", value=7)]))
    assert [(node.ref_doc_id, node.get_content(), node.metadata) for node in nodes] == [
        ("doc-7", TEXTS[7], METADATAS[7])
    ]
    point = client.get("li_docs", [point_id_of(nodes[0].node_id)], with_vector=True)[0]
    assert point.payload is not None and point.payload["text"] == TEXTS[7]
    assert isinstance(point.vector, np.ndarray)
    np.testing.assert_allclose(unit(point.vector), STORED[7], rtol=1e-5, atol=1e-6)


def test_the_retriever_answers_the_nearest_documents(index: VectorStoreIndex) -> None:
    retriever = index.as_retriever(similarity_top_k=5)
    hits = total = 0
    for q in range(10):
        query = f"a question {q}"
        found = retriever.retrieve(query)
        ids = [result.node.ref_doc_id for result in found]
        assert ids[0] == brute_force(query, 1)[0]
        hits += len(set(ids) & set(brute_force(query, 5)))
        total += 5
        rows = [int(str(i).removeprefix("doc-")) for i in ids]
        expected = STORED[rows] @ unit(EMBED.get_query_embedding(query))
        np.testing.assert_allclose(
            [float(result.score or 0) for result in found], expected, rtol=1e-4, atol=1e-5
        )
    assert hits / total >= 0.9
    (best, *_) = retriever.retrieve(TEXTS[33])
    assert (best.node.ref_doc_id, best.node.get_content(), best.node.metadata) == (
        "doc-33",
        TEXTS[33],
        METADATAS[33],
    )
    assert best.score == pytest.approx(1.0, abs=1e-5)


def test_an_exact_query_is_brute_force(index: VectorStoreIndex) -> None:
    store = store_of(index)
    for q in range(5):
        query = f"another question {q}"
        found = store.query(
            VectorStoreQuery(query_embedding=EMBED.get_query_embedding(query), similarity_top_k=8), exact=True
        )
        assert found.nodes is not None and found.ids == [node.node_id for node in found.nodes]
        assert [node.ref_doc_id for node in found.nodes] == brute_force(query, 8)


FILTER_CASES = [
    (MetadataFilters(filters=[MetadataFilter(key="kind", value="b")]), [i for i in range(N) if i % 3 == 1]),
    (
        MetadataFilters(
            filters=[
                MetadataFilter(key="n", value=20, operator=FilterOperator.GTE),
                MetadataFilter(key="n", value=40, operator=FilterOperator.LT),
            ]
        ),
        list(range(20, 40)),
    ),
    (
        MetadataFilters(
            filters=[
                MetadataFilter(key="n", value=5, operator=FilterOperator.LTE),
                MetadataFilter(key="n", value=110, operator=FilterOperator.GT),
            ],
            condition=FilterCondition.OR,
        ),
        [*range(6), *range(111, N)],
    ),
    (
        MetadataFilters(
            filters=[
                MetadataFilter(key="kind", value=["a", "c"], operator=FilterOperator.IN),
                MetadataFilter(key="n", value=[0, 3, 6], operator=FilterOperator.NIN),
                MetadataFilter(key="kind", value="c", operator=FilterOperator.NE),
            ]
        ),
        [i for i in range(N) if i % 3 == 0 and i not in (0, 3, 6)],
    ),
]


@pytest.mark.parametrize(("filters", "keep"), FILTER_CASES)
def test_a_filtered_query_is_brute_force_over_the_matching_nodes(
    index: VectorStoreIndex, filters: MetadataFilters, keep: list[int]
) -> None:
    retriever = index.as_retriever(similarity_top_k=5, filters=filters)
    for q in range(3):
        query = f"filtered question {q}"
        assert [result.node.ref_doc_id for result in retriever.retrieve(query)] == brute_force(query, 5, keep)


def test_doc_ids_and_node_ids_restrict_a_query(index: VectorStoreIndex) -> None:
    store = store_of(index)
    embedding = EMBED.get_query_embedding("restricted")
    wanted = ["doc-1", "doc-50", "doc-99"]
    by_document = store.query(
        VectorStoreQuery(query_embedding=embedding, similarity_top_k=10, doc_ids=wanted)
    )
    assert by_document.nodes is not None
    assert [node.ref_doc_id for node in by_document.nodes] == brute_force("restricted", 10, [1, 50, 99])
    node_ids = [node.node_id for node in by_document.nodes[:2]]
    by_node = store.query(VectorStoreQuery(query_embedding=embedding, similarity_top_k=10, node_ids=node_ids))
    assert by_node.ids == node_ids


def test_delete_ref_doc_removes_every_node_of_the_document(client: Client) -> None:
    store = VecStoreVectorStore("li_delete", client=client)
    long_text = " ".join(f"Sentence number {i} says something about llamas." for i in range(40))
    documents = [Document(text=long_text, id_="long"), Document(text="short one", id_="short")]
    index = VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=EMBED,
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0)],  # tiktoken, offline
    )
    of_long = {"must": [{"key": "ref_doc_id", "match": {"value": "long"}}]}
    chunks = client.count("li_delete", of_long)
    assert chunks > 3
    assert client.count("li_delete") == chunks + 1
    index.delete_ref_doc("long")
    assert client.count("li_delete", of_long) == 0
    assert [r.node.ref_doc_id for r in index.as_retriever(similarity_top_k=5).retrieve("llamas")] == ["short"]
    store.delete("no-such-document")  # nothing to delete is no error
    assert client.count("li_delete") == 1


def test_delete_nodes_get_nodes_and_clear(client: Client) -> None:
    store = VecStoreVectorStore("li_nodes", client=client)
    nodes = [
        TextNode(
            id_=f"node-{i}",
            text=f"node text {i}",
            metadata={"i": i},
            embedding=EMBED.get_text_embedding(str(i)),
        )
        for i in range(10)
    ]
    assert store.add(nodes) == [f"node-{i}" for i in range(10)]
    got = store.get_nodes(node_ids=["node-2", "node-missing", "node-5"])
    assert [(node.node_id, node.get_content()) for node in got] == [
        ("node-2", "node text 2"),
        ("node-5", "node text 5"),
    ]
    store.delete_nodes(node_ids=["node-0", "node-1"])
    store.delete_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="i", value=8, operator=FilterOperator.GTE)])
    )
    remaining = store.get_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="i", value=0, operator=FilterOperator.GTE)])
    )
    assert sorted(node.node_id for node in remaining) == [f"node-{i}" for i in range(2, 8)]
    client.upsert("li_nodes", [7_000], [EMBED.get_text_embedding("native")], [{"text": "written natively"}])
    store.clear()
    assert client.count("li_nodes") == 1  # the point that is no LlamaIndex node stays
    found = store.query(
        VectorStoreQuery(query_embedding=EMBED.get_text_embedding("native"), similarity_top_k=3)
    )
    assert found.nodes is not None and [node.get_content() for node in found.nodes] == ["written natively"]


def test_mmr_trades_a_near_duplicate_for_a_different_node(client: Client) -> None:
    store = VecStoreVectorStore("li_mmr", client=client)
    vectors = {
        "fox one": [1.0, 0.05, 0.0, 0.0],
        "fox two": [1.0, 0.06, 0.0, 0.0],
        "dog": [0.6, 0.0, 0.8, 0.0],
        "far": [0.0, 0.0, 0.0, 1.0],
    }
    store.add([TextNode(id_=name, text=name, embedding=vector) for name, vector in vectors.items()])
    query = [1.0, 0.0, 0.0, 0.0]
    plain = store.query(VectorStoreQuery(query_embedding=query, similarity_top_k=2))
    assert plain.ids == ["fox one", "fox two"]
    mmr = store.query(
        VectorStoreQuery(
            query_embedding=query, similarity_top_k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.3
        ),
        mmr_prefetch_k=3,
    )
    assert mmr.ids == ["fox one", "dog"]


def test_l2_similarity_is_higher_for_closer_nodes(client: Client) -> None:
    store = VecStoreVectorStore("li_l2", client=client, metric="l2")
    store.add([TextNode(id_=f"p{i}", text=str(i), embedding=[float(i), 0.0]) for i in range(4)])
    assert client.collection("li_l2").schema.metric.value == "l2"
    found = store.query(VectorStoreQuery(query_embedding=[0.0, 0.0], similarity_top_k=3))
    assert found.ids == ["p0", "p1", "p2"]
    assert found.similarities == pytest.approx([1.0, 1 / 2, 1 / 3], rel=1e-5)


def test_mistakes_are_clear_errors(client: Client, index: VectorStoreIndex) -> None:
    store = store_of(index)
    embedding = EMBED.get_query_embedding("x")
    with pytest.raises(ValueError, match="query mode 'hybrid' is not supported"):
        store.query(VectorStoreQuery(query_embedding=embedding, mode=VectorStoreQueryMode.HYBRID))
    with pytest.raises(ValueError, match="need query_embedding"):
        store.query(VectorStoreQuery(query_str="x"))
    with pytest.raises(UnsupportedFilter, match="TEXT_MATCH_INSENSITIVE"):
        insensitive = MetadataFilter(key="kind", value="A", operator=FilterOperator.TEXT_MATCH_INSENSITIVE)
        store.query(
            VectorStoreQuery(query_embedding=embedding, filters=MetadataFilters(filters=[insensitive]))
        )
    with pytest.raises(TypeError, match=r"unexpected arguments \['top_k'\]"):
        store.query(VectorStoreQuery(query_embedding=embedding), top_k=3)
    with pytest.raises(ValueError, match="embedding not set"):
        store.add([TextNode(text="no embedding")])
    assert client.count("li_docs") == N
    empty = VecStoreVectorStore("li_never_written", client=client)
    assert empty.query(VectorStoreQuery(query_embedding=embedding)).ids == []


async def test_async_methods_use_the_async_client(cluster: LocalCluster) -> None:
    async with AsyncClient(cluster.router_url) as async_client:
        store = VecStoreVectorStore("li_async", async_client=async_client)
        nodes = [
            TextNode(
                id_=f"n{i}",
                text=TEXTS[i],
                metadata=METADATAS[i],
                embedding=EMBED.get_text_embedding(TEXTS[i]),
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"group-{i % 2}")},
            )
            for i in range(30)
        ]
        assert await store.async_add(nodes) == [f"n{i}" for i in range(30)]
        assert await async_client.count("li_async") == 30
        found = await store.aquery(
            VectorStoreQuery(query_embedding=EMBED.get_query_embedding("q"), similarity_top_k=4), exact=True
        )
        assert found.nodes is not None
        assert [node.get_content() for node in found.nodes] == [
            TEXTS[int(i.removeprefix("doc-"))] for i in brute_force("q", 4, list(range(30)))
        ]
        index = VectorStoreIndex.from_vector_store(store, embed_model=EMBED)
        results = await index.as_retriever(similarity_top_k=1).aretrieve(TEXTS[12])
        assert [result.node.node_id for result in results] == ["n12"]
        await store.adelete("group-1")
        assert await async_client.count("li_async") == 15
        remaining = await store.aquery(
            VectorStoreQuery(query_embedding=EMBED.get_query_embedding("q"), similarity_top_k=30)
        )
        assert sorted(str(i) for i in remaining.ids or []) == sorted(f"n{i}" for i in range(0, 30, 2))
        with pytest.raises(RuntimeError, match="only an AsyncClient"):
            store.query(VectorStoreQuery(query_embedding=EMBED.get_query_embedding("q")))


async def test_async_methods_without_an_async_client_run_the_blocking_ones(index: VectorStoreIndex) -> None:
    query = VectorStoreQuery(query_embedding=EMBED.get_query_embedding(TEXTS[3]), similarity_top_k=1)
    found = await store_of(index).aquery(query)
    assert found.nodes is not None and [node.ref_doc_id for node in found.nodes] == ["doc-3"]
    results = await index.as_retriever(similarity_top_k=1).aretrieve(TEXTS[4])
    assert [result.node.ref_doc_id for result in results] == ["doc-4"]
