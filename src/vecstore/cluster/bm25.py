"""Text to BM25 sparse vectors, as the `qdrant/bm25` model (fastembed's Bm25) makes them.

Lowercase, split on non-word characters, drop English stopwords and tokens over 40
characters, Snowball-stem, id = |MurmurHash3 x86_32 (seed 0) of the stem|. Documents weigh
each id tf*(k+1)/(tf+k*(1-b+b*len/avg_len)); queries weigh 1.0 per distinct id; the IDF half
of BM25 is the collection's `idf` modifier. Pure functions: no model files, no network.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from py_rust_stemmers import SnowballStemmer  # type: ignore[import-untyped]

from vecstore.cluster.errors import InvalidRequest

SparseArrays = tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]

MODEL_NAME = "qdrant/bm25"
TOKEN_MAX_LENGTH = 40
DEFAULT_K = 1.2
DEFAULT_B = 0.75
DEFAULT_AVG_LEN = 256.0

# NLTK's English stopword list (179 words), taken to be the `Qdrant/bm25` model's english.txt
# (fastembed downloads it from the model hub at run time; it could not be read here). Entries
# with an apostrophe can never match a token (the tokenizer splits on it).
_ENGLISH_STOPWORDS_TEXT = """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be
    been being have has had having do does did doing a an the and but if or because as until
    while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why
    how all any both each few more most other some such no nor not only own same so than too
    very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
    couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't
    ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't
    weren weren't won won't wouldn wouldn't
"""
ENGLISH_STOPWORDS = frozenset(_ENGLISH_STOPWORDS_TEXT.split())

_NON_WORD = re.compile(r"[^\w]")


def murmurhash3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32 of `data`, as an unsigned 32-bit integer."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    length = len(data)
    tail_start = length - length % 4
    for start in range(0, tail_start, 4):
        block = int.from_bytes(data[start : start + 4], "little")
        block = (block * c1) & mask
        block = ((block << 15) | (block >> 17)) & mask
        h ^= (block * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[tail_start:]
    if tail:
        block = int.from_bytes(tail, "little")
        block = (block * c1) & mask
        block = ((block << 15) | (block >> 17)) & mask
        h ^= (block * c2) & mask
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def token_id(token: str) -> int:
    """abs() of the signed 32-bit MurmurHash3 of the UTF-8 token: what fastembed uses as index."""
    unsigned = murmurhash3_32(token.encode("utf-8", "surrogatepass"))
    return abs(unsigned - 2**32 if unsigned >= 2**31 else unsigned)


@lru_cache(maxsize=1)
def _english_stemmer() -> SnowballStemmer:
    return SnowballStemmer("english")


def tokens(text: str, language: str = "english") -> list[str]:
    """The stems BM25 counts in `text`, in order (repeats kept)."""
    if language != "english":
        raise InvalidRequest(f"BM25 language {language!r} is not supported; expected 'english'")
    if not isinstance(text, str):
        raise InvalidRequest(f"BM25 text must be a string, got {type(text).__name__}")
    stemmer = _english_stemmer()
    stems: list[str] = []
    for token in _NON_WORD.sub(" ", text.lower()).split():
        if token in ENGLISH_STOPWORDS or len(token) > TOKEN_MAX_LENGTH:
            continue
        stem: str = stemmer.stem_word(token)
        if stem:
            stems.append(stem)
    return stems


def _as_arrays(weights: dict[int, float]) -> SparseArrays:
    indices = np.fromiter(weights, dtype=np.uint32, count=len(weights))
    values = np.fromiter(weights.values(), dtype=np.float32, count=len(weights))
    order = np.argsort(indices)
    return indices[order], values[order]


def document_vector(
    text: str,
    language: str = "english",
    k: float = DEFAULT_K,
    b: float = DEFAULT_B,
    avg_len: float = DEFAULT_AVG_LEN,
) -> SparseArrays:
    """The document side: (indices ascending, values) with BM25's term-frequency weights."""
    if not (k >= 0 and 0 <= b <= 1 and avg_len > 0):
        raise InvalidRequest(
            f"BM25 needs k >= 0, 0 <= b <= 1 and avg_len > 0; got k={k}, b={b}, avg_len={avg_len}"
        )
    stems = tokens(text, language)
    length_norm = k * (1 - b + b * len(stems) / avg_len)
    weights: dict[int, float] = {}
    for stem, count in Counter(stems).items():
        # two stems hashing to one id: the later overwrites, as in fastembed
        weights[token_id(stem)] = count * (k + 1) / (count + length_norm)
    return _as_arrays(weights)


def query_vector(text: str, language: str = "english") -> SparseArrays:
    """The query side: 1.0 for each distinct id (use with the `idf` modifier)."""
    return _as_arrays(dict.fromkeys((token_id(stem) for stem in tokens(text, language)), 1.0))
