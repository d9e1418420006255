"""Pure logic of grouped queries and example-based scoring, against qdrant-client's local
mode functions where they exist (qdrant_client.local.distances)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.local import distances

from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.schema import Metric
from vecstore.router.qdrant.groups import group_hits, group_ids, values_at
from vecstore.router.qdrant.prefetch import examples_query
from vecstore.router.recommend import (
    Discover,
    Recommend,
    average_vector,
    discover_scores,
    recommend_scores,
)

DISTANCES = {
    Metric.COSINE: models.Distance.COSINE,
    Metric.L2: models.Distance.EUCLID,
    Metric.DOT: models.Distance.DOT,
}


def test_values_at_key_paths() -> None:
    payload = {"a": {"b": [1, 2]}, "c": [{"d": "x"}, {"d": "y"}], "e": 3}
    assert values_at(payload, "a.b") == [1, 2]
    assert values_at(payload, "c[].d") == ["x", "y"]
    assert values_at(payload, "c[1].d") == ["y"]
    assert values_at(payload, "missing") == []
    assert group_ids({"k": [1, "1", 1]}, "k") == [1, "1"]
    assert group_ids({"k": [1, True]}, "k") is None  # a bool anywhere: no group at all
    assert group_ids({"k": 1.5}, "k") is None
    with pytest.raises(InvalidRequest, match="key path"):
        values_at(payload, "a..b")


def test_group_hits_order_size_and_completeness() -> None:
    hits: list[dict[str, Any]] = [
        {"id": 1, "payload": {"g": "a"}},
        {"id": 2, "payload": {"g": ["b", "a"]}},
        {"id": 3, "payload": {"g": "a"}},
        {"id": 4, "payload": {}},
        {"id": 5, "payload": {"g": "c"}},
    ]
    groups, complete = group_hits(hits, "g", 2, 2)
    assert [(g["id"], [h["id"] for h in g["hits"]]) for g in groups] == [("a", [1, 2]), ("b", [2])]
    assert not complete
    groups, complete = group_hits(hits, "g", 1, 3)
    assert [g["id"] for g in groups] == ["a", "b", "c"] and complete


@pytest.mark.parametrize("metric", list(DISTANCES))
@pytest.mark.parametrize(
    "strategy", [models.RecommendStrategy.BEST_SCORE, models.RecommendStrategy.SUM_SCORES]
)
def test_recommend_scores_match_local_mode(metric: Metric, strategy: models.RecommendStrategy) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 6)).astype(np.float32)
    positive, negative = rng.normal(size=(2, 6)).tolist(), rng.normal(size=(1, 6)).tolist()
    stored = vectors.copy()
    if metric is Metric.COSINE:
        stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    query = distances.RecoQuery(positive=positive, negative=negative, strategy=strategy)
    local = (
        distances.calculate_recommend_best_scores
        if strategy is models.RecommendStrategy.BEST_SCORE
        else distances.calculate_recommend_sum_scores
    )(query, stored.copy(), DISTANCES[metric])
    mine = recommend_scores(positive, negative, strategy.value, vectors, metric)
    np.testing.assert_allclose(mine, local, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", list(DISTANCES))
def test_discover_and_context_scores_match_local_mode(metric: Metric) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(30, 4)).astype(np.float32)
    target = rng.normal(size=4).tolist()
    pairs = [(rng.normal(size=4).tolist(), rng.normal(size=4).tolist()) for _ in range(2)]
    context = [distances.ContextPair(p, n) for p, n in pairs]
    local_discover = distances.calculate_discovery_scores(
        distances.DiscoveryQuery(target, context), vectors.copy(), DISTANCES[metric]
    )
    np.testing.assert_allclose(discover_scores(target, pairs, vectors, metric), local_discover, rtol=1e-5)
    local_context = distances.calculate_context_scores(
        distances.ContextQuery(context), vectors.copy(), DISTANCES[metric]
    )
    np.testing.assert_allclose(discover_scores(None, pairs, vectors, metric), local_context, rtol=1e-5)


def test_average_vector() -> None:
    assert average_vector([[1.0, 3.0], [3.0, 5.0]], []) == [2.0, 4.0]
    assert average_vector([[2.0, 4.0]], [[1.0, 1.0]]) == [3.0, 7.0]


def test_examples_query_parsing() -> None:
    assert examples_query("recommend", {"positive": [1, [0.5]], "strategy": "best_score"}, "q") == Recommend(
        (1, [0.5]), (), "best_score"
    )
    pair = {"positive": 1, "negative": 2}
    assert examples_query("context", pair, "q") == Discover(None, ((1, 2),))
    assert examples_query("discover", {"target": 3, "context": [pair]}, "q") == Discover(3, ((1, 2),))
    for kind, raw, message in [
        ("recommend", {"negative": [1]}, "positive"),
        ("recommend", {"positive": [1], "strategy": "best"}, "strategy"),
        ("discover", {"context": [pair]}, "target"),
        ("context", [], "context pair"),
        ("context", [{"positive": 1}], "positive and negative"),
        ("recommend", {"positive": list(range(17))}, "at most"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            examples_query(kind, raw, "q")
