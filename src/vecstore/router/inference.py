"""Server-side inference: Qdrant's `Document` objects turned into vectors by the router.

`{"text": "...", "model": "qdrant/bm25"}` (model names are case-insensitive, as Qdrant's)
becomes a BM25 sparse vector (`vecstore.cluster.bm25`): a document's term weights when
points are written, a query's (1 per distinct term) when searching; the collection's
sparse vector should use the `idf` modifier for the IDF half of BM25. `options` may set
`k`, `b`, `avg_len` and `language` (English only). Other models need an embedding service
VecStore does not run: they are refused with 501, naming the model.

Vectors are computed before the command is built, so the Raft log and every replica hold
the sparse vector itself: inference never runs twice and never differs between replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vecstore.cluster import bm25
from vecstore.cluster.errors import InvalidRequest, NotImplementedParameter

OPTION_BOUNDS = {"k": (0.0, 100.0), "b": (0.0, 1.0), "avg_len": (1.0, 1e9)}


def is_document(raw: object) -> bool:
    """Whether a vector given in a request is a Document to infer from."""
    return isinstance(raw, dict) and isinstance(raw.get("model"), str) and "text" in raw


def sparse_of(raw: Mapping[str, Any], where: str, query: bool) -> dict[str, list[Any]]:
    """The sparse vector ({"indices", "values"}) of a Document, for a point or a query."""
    unknown = set(raw) - {"text", "model", "options"}
    if unknown:
        raise InvalidRequest(f"{where}: a document takes text, model and options; unknown: {sorted(unknown)}")
    model, text = raw["model"], raw["text"]
    if model.lower() != bm25.MODEL_NAME:
        raise NotImplementedParameter(
            f"{where}: model {model!r} needs an embedding service; VecStore infers only "
            f"{bm25.MODEL_NAME!r} (BM25) itself: send other vectors precomputed"
        )
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}: a document's text must be a string")
    options = dict(raw.get("options") or {})
    language = options.pop("language", "english")
    for name, value in options.items():
        if name not in OPTION_BOUNDS:
            raise InvalidRequest(f"{where}: unknown BM25 option {name!r}; expected k, b, avg_len, language")
        low, high = OPTION_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise InvalidRequest(f"{where}: BM25 option {name} must be a number in {low}..{high}")
    if not isinstance(language, str):
        raise InvalidRequest(f"{where}: BM25 option language must be a string")
    if query:
        indices, values = bm25.query_vector(text, language=language)
    else:
        indices, values = bm25.document_vector(text, language=language, **options)
    return {"indices": indices.tolist(), "values": values.tolist()}


def infer_named(vectors: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A point's named vectors with every Document replaced by its sparse vector."""
    return {
        name: sparse_of(vector, f"{where}, vector {name!r}", query=False) if is_document(vector) else vector
        for name, vector in vectors.items()
    }
