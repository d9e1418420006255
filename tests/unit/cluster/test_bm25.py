"""BM25 text -> sparse vectors: MurmurHash3 against published test vectors, known document
and query vectors (computed with fastembed's pipeline: mmh3 + py_rust_stemmers), determinism,
empty text and unicode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vecstore.cluster.bm25 import (
    ENGLISH_STOPWORDS,
    document_vector,
    murmurhash3_32,
    query_vector,
    token_id,
    tokens,
)
from vecstore.cluster.errors import InvalidRequest


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\0\0\0\0", 0, 0x2362F9DE),
        (b"aaaa", 0x9747B28C, 0x5A97808A),
        (b"a", 0x9747B28C, 0x7FA09EA6),
        (b"ab", 0x9747B28C, 0x74875592),
        (b"abc", 0x9747B28C, 0xC84A62DD),
        (b"abcd", 0x9747B28C, 0xF0478627),
        (b"abc", 0, 0xB3DD93FA),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    ],
)
def test_murmurhash3_published_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmurhash3_32(data, seed) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    # abs(mmh3.hash(token)) from the mmh3 package (negative hashes included)
    [("hello", 613153351), ("run", 243905464), ("generous", 1068447005), ("fox", 1621867415),
     ("日本語", 1515949417), ("naïve", 992511445), ("x" * 40, 1309653151)],
)  # fmt: skip
def test_token_ids_are_abs_of_signed_mmh3(token: str, expected: int) -> None:
    assert token_id(token) == expected


def test_known_document_vectors() -> None:
    indices, values = document_vector("The quick brown fox jumps over the lazy dog.")
    assert indices.tolist() == [226376294, 741580288, 771291085, 1312749093, 1621867415, 1913189942]
    assert values.dtype == np.float32
    # six stems of one occurrence each: 2.2 / (1 + 1.2 * (0.25 + 0.75 * 6 / 256))
    assert values.tolist() == pytest.approx([2.2 / (1 + 1.2 * (0.25 + 0.75 * 6 / 256))] * 6, rel=1e-6)
    indices, values = document_vector("running runs ran RUN")
    assert indices.tolist() == [243905464, 567658162]  # "run" x3, "ran" x1
    norm = 1.2 * (0.25 + 0.75 * 4 / 256)
    assert values.tolist() == pytest.approx([3 * 2.2 / (3 + norm), 2.2 / (1 + norm)], rel=1e-6)


def test_parameters_change_the_weights() -> None:
    text = "cats chase cats and dogs"
    _, default = document_vector(text)
    _, flat = document_vector(text, k=1.2, b=0.0)
    indices, tuned = document_vector(text, k=2.0, b=0.5, avg_len=3.0)
    assert not np.array_equal(default, flat)
    position = indices.tolist().index(token_id("cat"))
    assert tuned[position] == pytest.approx(2 * 3.0 / (2 + 2.0 * (0.5 + 0.5 * 4 / 3.0)), rel=1e-6)
    with pytest.raises(InvalidRequest, match="avg_len > 0"):
        document_vector(text, avg_len=0)
    with pytest.raises(InvalidRequest, match="0 <= b <= 1"):
        document_vector(text, b=1.5)


def test_query_vectors_weigh_each_distinct_stem_once() -> None:
    indices, values = query_vector("Running runs, the runner RAN!")
    assert indices.tolist() == sorted({token_id("run"), token_id("runner"), token_id("ran")})
    assert values.tolist() == [1.0, 1.0, 1.0]
    assert indices.tolist() == sorted(indices.tolist())


def test_empty_stopword_only_and_punctuation_only_text() -> None:
    for text in ("", "   \n\t", "the and of a an", "!!! ... ,;:"):
        indices, values = document_vector(text)
        assert indices.dtype == np.uint32
        assert len(indices) == len(values) == 0
        assert len(query_vector(text)[0]) == 0


def test_tokens_lowercase_split_drop_stopwords_and_long_tokens() -> None:
    assert tokens("Hello, World! e-mail U.S.A.") == [
        "hello",
        "world",
        "e",
        "mail",
        "u",
    ]  # "s", "a": stopwords
    assert tokens("x" * 41 + " keep") == ["keep"]
    assert tokens("don't isn't") == []  # "don", "t", "isn" are stopwords
    assert tokens("snake_case 42") == ["snake_cas", "42"]
    assert "the" in ENGLISH_STOPWORDS
    assert len(ENGLISH_STOPWORDS) == 179


def test_unicode_text() -> None:
    assert tokens("Naïve CAFÉ déjà-vu") == ["naïv", "café", "déjà", "vu"]
    assert tokens("日本語のテキスト") == ["日本語のテキスト"]
    indices, values = document_vector("naïve café déjà-vu 日本語のテキスト")
    assert indices.tolist() == [605818632, 686458043, 756638508, 801888270, 1598227991]
    assert all(math.isclose(v, values[0]) for v in values.tolist())
    assert len(document_vector("lone surrogate \ud800 here")[0]) == 2  # "here": a stopword


def test_deterministic() -> None:
    text = "Determinism: the same text gives the same vector, every time and in every process."
    first, second = document_vector(text), document_vector(text)
    assert first[0].tolist() == second[0].tolist()
    assert first[1].tobytes() == second[1].tobytes()


def test_bad_input() -> None:
    with pytest.raises(InvalidRequest, match="language 'german' is not supported"):
        document_vector("Hallo Welt", language="german")
    with pytest.raises(InvalidRequest, match="must be a string"):
        query_vector(42)  # type: ignore[arg-type]
