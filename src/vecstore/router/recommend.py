"""Recommend, discover and context queries: their examples and their scores, run by the router.

`average_vector` recommendation is one nearest search of a combined vector. The other kinds
(`best_score`, `sum_scores`, `discover`, `context`) score each candidate against several
example vectors; the router does that here, exactly, over candidates the shards return with
their vectors (see `HybridQuery._examples_query`). The formulas are qdrant-client's local
mode's (qdrant_client/local/distances.py). Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import Metric

EPSILON = float(np.finfo(np.float32).eps)
STRATEGIES = ("average_vector", "best_score", "sum_scores")
MAX_EXAMPLES = 16
"""Examples (positive, negative, target and context vectors) one query may name in all."""

Example = list[float] | PointId
"""A dense vector, or a stored point whose vector (of `using`) is the example."""


@dataclass(frozen=True)
class Recommend:
    """Points like the positive examples and unlike the negative ones."""

    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    strategy: str = "average_vector"

    def examples(self) -> tuple[Example, ...]:
        """Every example, in order."""
        return (*self.positive, *self.negative)


@dataclass(frozen=True)
class Discover:
    """Discovery (`target` given) or context search (`target` None) over context pairs."""

    target: Example | None
    pairs: tuple[tuple[Example, Example], ...]

    def examples(self) -> tuple[Example, ...]:
        """Every example, in order."""
        flat = [vector for pair in self.pairs for vector in pair]
        return tuple(flat) if self.target is None else (self.target, *flat)


def check_recommend(query: Recommend) -> None:
    """Qdrant's rules on examples, before any search."""
    if query.strategy not in STRATEGIES:
        raise InvalidRequest(
            f"recommend.strategy must be one of {', '.join(STRATEGIES)}, got {query.strategy!r}"
        )
    if query.strategy == "average_vector" and not query.positive:
        raise InvalidRequest("recommend with strategy average_vector needs at least one positive example")
    if not query.positive and not query.negative:
        raise InvalidRequest("recommend needs at least one positive or negative example")
    if len(query.examples()) > MAX_EXAMPLES:
        raise InvalidRequest(f"a query names at most {MAX_EXAMPLES} examples")


def check_discover(query: Discover) -> None:
    """A discover query needs a target; a context query pairs; neither more than MAX_EXAMPLES."""
    if query.target is None and not query.pairs:
        raise InvalidRequest("a context query needs at least one context pair")
    if len(query.examples()) > MAX_EXAMPLES:
        raise InvalidRequest(f"a query names at most {MAX_EXAMPLES} examples")


def average_vector(positive: Sequence[Sequence[float]], negative: Sequence[Sequence[float]]) -> list[float]:
    """mean(positive) + (mean(positive) - mean(negative)), or mean(positive) without negatives."""
    mean = np.mean(np.asarray(positive, dtype=np.float64), axis=0)
    if negative:
        mean = mean + mean - np.mean(np.asarray(negative, dtype=np.float64), axis=0)
    combined: list[float] = mean.tolist()
    return combined


def similarities(example: Sequence[float], vectors: np.ndarray, metric: Metric) -> np.ndarray:
    """The core's similarity of each row of `vectors` to `example` (bigger is better): cosine,
    dot, or minus the squared euclidean distance."""
    query = np.asarray(example, dtype=np.float64)
    if metric is Metric.L2:
        found: np.ndarray = -np.square(vectors - query, dtype=np.float32).sum(axis=1, dtype=np.float32)
        return found
    if metric is Metric.COSINE:
        norms = np.linalg.norm(vectors, axis=-1)[:, np.newaxis]
        vectors = vectors / np.where(norms != 0.0, norms, EPSILON)
        norm = np.linalg.norm(query)
        query = query / (norm if norm != 0.0 else EPSILON)
    dot: np.ndarray = np.dot(vectors, query)
    return dot


def _scaled_sigmoid(values: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (_sigmoid(values) + 1.0), dtype=np.float32)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32)
    return np.asarray(values / (np.float32(1.0) + np.abs(values)), dtype=np.float32)


def recommend_scores(
    positive: Sequence[Sequence[float]],
    negative: Sequence[Sequence[float]],
    strategy: str,
    vectors: np.ndarray,
    metric: Metric,
) -> np.ndarray:
    """best_score: sigmoid of the best positive similarity if it beats the best negative one,
    else minus the sigmoid of the best negative; sum_scores: sum of positives minus negatives."""
    count = vectors.shape[0]
    pos = [similarities(example, vectors, metric) for example in positive]
    neg = [similarities(example, vectors, metric) for example in negative]
    if strategy == "sum_scores":
        pos_sum = np.array(pos or [np.zeros(count)], dtype=np.float32).sum(axis=0)
        neg_sum = np.array(neg or [np.zeros(count)], dtype=np.float32).sum(axis=0)
        return np.asarray(pos_sum - neg_sum, dtype=np.float32)
    best_pos = np.array(pos or [np.full(count, -np.inf)], dtype=np.float32).max(axis=0)
    best_neg = np.array(neg or [np.full(count, -np.inf)], dtype=np.float32).max(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(best_pos > best_neg, _scaled_sigmoid(best_pos), -_scaled_sigmoid(best_neg))


def discover_scores(
    target: Sequence[float] | None,
    pairs: Sequence[tuple[Sequence[float], Sequence[float]]],
    vectors: np.ndarray,
    metric: Metric,
) -> np.ndarray:
    """discover: (pairs where the point is nearer the positive) - (nearer the negative) plus the
    scaled sigmoid of its similarity to the target; context (no target): the sum over pairs of
    sigmoid(min(0, positive - negative - epsilon))."""
    count = vectors.shape[0]
    if target is None:
        total = np.zeros(count, dtype=np.float32)
        for positive, negative in pairs:
            difference = similarities(positive, vectors, metric) - similarities(negative, vectors, metric)
            total += _sigmoid(np.minimum(difference - EPSILON, 0.0))
        return total
    ranks = np.zeros(count, dtype=np.int32)
    for positive, negative in pairs:
        pos = similarities(positive, vectors, metric)
        neg = similarities(negative, vectors, metric)
        ranks += np.where(pos > neg, 1, np.where(pos == neg, 0, -1)).astype(np.int32)
    return np.asarray(ranks + _scaled_sigmoid(similarities(target, vectors, metric)), dtype=np.float64)


def ranked(scores: np.ndarray) -> list[int]:
    """Positions best first; ties as qdrant-client's local mode breaks them (the later first)."""
    order: list[int] = np.argsort(scores, kind="stable")[::-1].tolist()
    return order
