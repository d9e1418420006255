"""The LangChain adapter (`vecstore.integrations.langchain`) against a real 2 x 3 cluster.

Embeddings are LangChain's deterministic fake ones (or a fixed table), so every answer is
checked against brute force over the same vectors: exactly with `exact=True`, and with a
recall bar on the default (HNSW) path. Each test writes its own collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from tests.integration.conftest import started_cluster
from vecstore.client import AsyncClient, Client, CollectionConflict
from vecstore.integrations.document_ids import point_id_of
from vecstore.integrations.langchain import VecStoreVectorStore
from vecstore.launcher.local_cluster import LocalCluster

DIM = 16
N = 240
EMBEDDING = DeterministicFakeEmbedding(size=DIM)
TEXTS = [f"document number {i}" for i in range(N)]
IDS = [f"doc-{i}" for i in range(N)]  # LangChain ids that are not UUIDs
METADATAS: list[dict[str, Any]] = [
    {"n": i, "parity": "even" if i % 2 == 0 else "odd", "tags": [f"t{i % 3}", f"u{i % 5}"]} for i in range(N)
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(tmp_path_factory.mktemp("langchain") / "cluster", shards=2)


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.router_url) as client:
        yield client


@pytest.fixture(scope="module")
def loaded(client: Client) -> VecStoreVectorStore:
    """Collection `lc_docs` (cosine) made by `from_texts` with N documents."""
    return VecStoreVectorStore.from_texts(
        TEXTS, EMBEDDING, METADATAS, ids=IDS, collection_name="lc_docs", client=client, batch_size=100
    )


def unit(vectors: npt.ArrayLike) -> npt.NDArray[np.float64]:
    matrix = np.asarray(vectors, dtype=np.float64)
    normalized: npt.NDArray[np.float64] = matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)
    return normalized


STORED = unit(EMBEDDING.embed_documents(TEXTS))


def brute_force(query: str, k: int, keep: list[int] | None = None) -> list[str]:
    """The ids of the k documents nearest (cosine) to the query, among `keep`."""
    rows = np.arange(N) if keep is None else np.asarray(keep)
    similarities = STORED[rows] @ unit(EMBEDDING.embed_query(query))
    return [IDS[rows[i]] for i in np.argsort(-similarities, kind="stable")[:k]]


QUERIES = [f"a question {q}" for q in range(12)]


def test_from_texts_creates_the_collection_with_the_embedding_dimension(
    client: Client, loaded: VecStoreVectorStore
) -> None:
    info = client.collection("lc_docs")
    assert (info.schema.dimension, info.schema.metric.value) == (DIM, "cosine")
    assert client.count("lc_docs") == N
    stored = client.get("lc_docs", [point_id_of("doc-7")])[0]
    assert stored.payload == {"page_content": TEXTS[7], "metadata": METADATAS[7], "id": "doc-7"}


def test_exact_search_is_brute_force_and_scores_are_cosine_similarities(loaded: VecStoreVectorStore) -> None:
    for query in QUERIES:
        found = loaded.similarity_search_with_score(query, k=6, exact=True)
        assert [document.id for document, _ in found] == brute_force(query, 6)
        rows = [IDS.index(str(document.id)) for document, _ in found]
        expected = STORED[rows] @ unit(EMBEDDING.embed_query(query))
        np.testing.assert_allclose([score for _, score in found], expected, rtol=1e-4, atol=1e-5)


def test_default_search_finds_the_nearest_documents(loaded: VecStoreVectorStore) -> None:
    hits = total = 0
    for query in QUERIES:
        found = [document.id for document in loaded.similarity_search(query, k=10)]
        assert found[0] == brute_force(query, 1)[0]
        hits += len(set(found) & set(brute_force(query, 10)))
        total += 10
    assert hits / total >= 0.9


def test_a_stored_text_finds_its_own_document_first_with_its_metadata(loaded: VecStoreVectorStore) -> None:
    for i in (0, 17, 123, N - 1):
        (document, score), *_ = loaded.similarity_search_with_score(TEXTS[i], k=3)
        assert document == Document(id=IDS[i], page_content=TEXTS[i], metadata=METADATAS[i])
        assert score == pytest.approx(1.0, abs=1e-5)
        by_vector = loaded.similarity_search_by_vector(EMBEDDING.embed_query(TEXTS[i]), k=1)
        assert [d.id for d in by_vector] == [IDS[i]]


@pytest.mark.parametrize(
    ("condition", "keep"),
    [
        ({"parity": "even"}, [i for i in range(N) if i % 2 == 0]),
        ({"n": {"$gte": 100, "$lt": 130}}, list(range(100, 130))),
        ({"tags": ["t1", "u2"]}, [i for i in range(N) if i % 3 == 1 or i % 5 == 2]),
        (
            {"$or": [{"n": {"$lt": 10}}, {"parity": "odd", "tags": "t0"}]},
            [i for i in range(N) if i < 10 or (i % 2 == 1 and i % 3 == 0)],
        ),
        (
            {"parity": {"$ne": "even"}, "n": {"$nin": [1, 3, 5]}},
            [i for i in range(N) if i % 2 and i not in (1, 3, 5)],
        ),
        ({"must": [{"key": "metadata.n", "range": {"gte": 200}}]}, list(range(200, N))),
    ],
)
def test_a_filtered_search_is_brute_force_over_the_matching_documents(
    loaded: VecStoreVectorStore, condition: dict[str, Any], keep: list[int]
) -> None:
    for query in QUERIES[:4]:
        found = loaded.similarity_search(query, k=5, filter=condition)
        assert [document.id for document in found] == brute_force(query, 5, keep)
        assert all(int(document.metadata["n"]) in keep for document in found)


def test_get_by_ids_answers_the_documents_that_exist(loaded: VecStoreVectorStore) -> None:
    documents = loaded.get_by_ids(["doc-3", "no-such-document", "doc-200"])
    assert sorted(documents, key=lambda d: str(d.id)) == [
        Document(id="doc-200", page_content=TEXTS[200], metadata=METADATAS[200]),
        Document(id="doc-3", page_content=TEXTS[3], metadata=METADATAS[3]),
    ]
    assert loaded.get_by_ids([]) == []


def test_mmr_matches_langchain_over_the_nearest_candidates(loaded: VecStoreVectorStore) -> None:
    for query in QUERIES[:4]:
        candidates = brute_force(query, 20)
        embedding = EMBEDDING.embed_query(query)
        chosen = maximal_marginal_relevance(
            np.asarray(embedding), [STORED[IDS.index(i)].tolist() for i in candidates], lambda_mult=0.3, k=5
        )
        found = loaded.max_marginal_relevance_search(query, k=5, fetch_k=20, lambda_mult=0.3, exact=True)
        assert [document.id for document in found] == [candidates[i] for i in chosen]


class TableEmbeddings(Embeddings):
    """Fixed vectors for known texts (the MMR case needs near-duplicates)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[text] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]


def test_mmr_trades_a_near_duplicate_for_a_different_document(client: Client) -> None:
    table = {
        "query": [1.0, 0.0, 0.0, 0.0],
        "fox one": [1.0, 0.05, 0.0, 0.0],
        "fox two": [1.0, 0.06, 0.0, 0.0],  # nearly the same as "fox one"
        "dog": [0.6, 0.0, 0.8, 0.0],  # less relevant, but different
        "far": [0.0, 0.0, 0.0, 1.0],
    }
    texts = [t for t in table if t != "query"]
    store = VecStoreVectorStore.from_texts(
        texts, TableEmbeddings(table), ids=texts, collection_name="lc_mmr", client=client
    )
    assert [d.id for d in store.similarity_search("query", k=2)] == ["fox one", "fox two"]
    found = store.max_marginal_relevance_search("query", k=2, fetch_k=3, lambda_mult=0.3)
    assert [d.id for d in found] == ["fox one", "dog"]


def test_add_with_the_same_id_replaces_and_delete_removes(client: Client) -> None:
    store = VecStoreVectorStore.from_texts(
        ["alpha", "beta", "gamma"],
        EMBEDDING,
        [{"v": 1}, {"v": 2}, {"v": 3}],
        ids=["a", "b", "c"],
        collection_name="lc_edit",
        client=client,
    )
    assert store.add_texts(["beta, rewritten"], [{"v": 20}], ids=["b"]) == ["b"]
    assert client.count("lc_edit") == 3
    assert store.get_by_ids(["b"]) == [Document(id="b", page_content="beta, rewritten", metadata={"v": 20})]
    new_ids = store.add_documents([Document(page_content="delta"), Document(page_content="eps", id="e")])
    assert new_ids[1] == "e" and len(new_ids[0]) == 36  # a new UUID where the document had no id
    assert client.count("lc_edit") == 5

    assert store.delete(["a", "no-such-document"]) is True
    assert store.get_by_ids(["a", "b"]) == [
        Document(id="b", page_content="beta, rewritten", metadata={"v": 20})
    ]
    assert "a" not in [d.id for d in store.similarity_search("alpha", k=5)]
    assert store.delete(filter={"v": {"$gte": 3, "$lt": 10}}) is True  # "c" (3), not "b" (20)
    assert sorted(str(d.id) for d in store.similarity_search("alpha", k=5)) == sorted(["b", *new_ids])
    with pytest.raises(ValueError, match="pass ids= or filter="):
        store.delete()
    assert client.count("lc_edit") == 3


def test_the_retriever_searches_by_similarity_threshold_and_mmr(loaded: VecStoreVectorStore) -> None:
    retriever = loaded.as_retriever(search_kwargs={"k": 3, "filter": {"parity": "odd"}})
    found = retriever.invoke(TEXTS[41])
    assert [d.id for d in found] == brute_force(TEXTS[41], 3, list(range(1, N, 2)))
    assert found[0].id == "doc-41"

    threshold = loaded.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"k": 5, "score_threshold": 0.999}
    )
    assert [d.id for d in threshold.invoke(TEXTS[8])] == ["doc-8"]  # only itself is that close

    mmr = loaded.as_retriever(search_type="mmr", search_kwargs={"k": 4, "fetch_k": 12})
    assert len({d.id for d in mmr.invoke(TEXTS[5])}) == 4


def test_l2_scores_are_distances_and_relevance_is_langchains_euclidean(client: Client) -> None:
    texts = ["one", "two", "three", "four"]
    store = VecStoreVectorStore.from_texts(
        texts, EMBEDDING, collection_name="lc_l2", client=client, metric="l2"
    )
    assert client.collection("lc_l2").schema.metric.value == "l2"
    vectors = np.asarray(EMBEDDING.embed_documents(texts))
    query = np.asarray(EMBEDDING.embed_query("five"))
    distances = np.linalg.norm(vectors - query, axis=1)
    found = store.similarity_search_with_score("five", k=4)
    np.testing.assert_allclose([score for _, score in found], np.sort(distances), rtol=1e-4)
    relevance = store.similarity_search_with_relevance_scores("two", k=1)
    assert relevance[0][0].page_content == "two"
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-3)  # distance 0


def test_mistakes_are_clear_errors_that_change_nothing(client: Client, loaded: VecStoreVectorStore) -> None:
    with pytest.raises(TypeError, match=r"unexpected arguments \['fliter'\]"):
        loaded.similarity_search("x", k=2, fliter={"parity": "odd"})
    with pytest.raises(ValueError, match="compares numbers only"):
        loaded.similarity_search("x", filter={"n": {"$gt": "3"}})
    with pytest.raises(ValueError, match="got 1 ids for 2 texts"):
        loaded.add_texts(["x", "y"], ids=["only-one"])
    with pytest.raises(CollectionConflict):  # the collection exists with another dimension
        VecStoreVectorStore.from_texts(
            ["x"], DeterministicFakeEmbedding(size=8), collection_name="lc_docs", client=client
        )
    assert client.count("lc_docs") == N
    with pytest.raises(ValueError, match="pass client="):
        VecStoreVectorStore("lc_docs", EMBEDDING)


def test_a_store_made_from_a_url_owns_its_client(cluster: LocalCluster, loaded: VecStoreVectorStore) -> None:
    store = VecStoreVectorStore("lc_docs", EMBEDDING, url=cluster.router_url)
    try:
        assert [d.id for d in store.similarity_search(TEXTS[9], k=1)] == ["doc-9"]
    finally:
        store.close()


async def test_async_methods_use_the_async_client(cluster: LocalCluster, loaded: VecStoreVectorStore) -> None:
    async with AsyncClient(cluster.router_url) as async_client:
        store = await VecStoreVectorStore.afrom_texts(
            TEXTS[:50],
            EMBEDDING,
            METADATAS[:50],
            ids=IDS[:50],
            collection_name="lc_async",
            async_client=async_client,
        )
        assert await async_client.count("lc_async") == 50
        found = await store.asimilarity_search_with_score(TEXTS[20], k=2, filter={"parity": "even"})
        assert found[0][0].id == "doc-20" and found[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [d.id for d in await store.asimilarity_search("q", k=5, exact=True)] == brute_force(
            "q", 5, list(range(50))
        )
        assert [d.id for d in await store.aget_by_ids(["doc-4"])] == ["doc-4"]
        assert await store.aadd_texts(["extra"], ids=["extra"]) == ["extra"]
        assert await store.adelete(["doc-4", "extra"]) is True
        assert await store.aget_by_ids(["doc-4", "extra"]) == []
        assert len(await store.amax_marginal_relevance_search("q", k=3, fetch_k=10)) == 3
        relevance = await store.asimilarity_search_with_relevance_scores(TEXTS[30], k=1)
        assert relevance[0][0].id == "doc-30" and relevance[0][1] == pytest.approx(1.0, abs=1e-5)
        retrieved = await store.as_retriever(search_kwargs={"k": 1}).ainvoke(TEXTS[31])
        assert [d.id for d in retrieved] == ["doc-31"]
        assert await async_client.count("lc_async") == 49
        with pytest.raises(RuntimeError, match="only an AsyncClient"):
            store.similarity_search("q")


async def test_async_methods_without_an_async_client_run_the_blocking_ones(
    loaded: VecStoreVectorStore,
) -> None:
    found = await loaded.asimilarity_search(TEXTS[12], k=1)
    assert [d.id for d in found] == ["doc-12"]
    assert [d.id for d in await loaded.aget_by_ids(["doc-13"])] == ["doc-13"]
    found_by_vector = await loaded.asimilarity_search_by_vector(EMBEDDING.embed_query(TEXTS[14]), k=1)
    assert [d.id for d in found_by_vector] == ["doc-14"]
