"""Qdrant compatibility details (issue 15): Cosine vectors answered normalised, the tuning
settings Qdrant reports (optimizers, WAL, full_scan_threshold) accepted on create and
reported on get, so a config read from one Qdrant can create the collection on another."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client._pydantic_compat import to_dict

from vecstore.cluster.errors import InvalidSchema, NotImplementedParameter
from vecstore.cluster.schema import CollectionSchema, HnswConfig, Metric, StorageDtype
from vecstore.router.qdrant.collection import ClusterShape, collection_info, schema_from_qdrant
from vecstore.router.qdrant.query import scored_points, search_request
from vecstore.router.qdrant.translate import PayloadSelection, cosine_vectors, records

SHAPE = ClusterShape(shards=2, replicas=3)
VECTORS = {"size": 3, "distance": "Cosine"}

# ---- Cosine vectors --------------------------------------------------------------------


def test_cosine_vectors_are_unit_length_and_zero_stays_zero() -> None:
    answered = cosine_vectors([[3.0, 4.0], None, [0.0, 0.0], [1e-9, 0.0], [-2.0, 0.0, 0.0]])
    assert answered[0] == pytest.approx([0.6, 0.8])
    assert answered[0] == np.array([0.6, 0.8], dtype=np.float32).tolist()  # float32, as Qdrant stores it
    assert answered[1] is None
    assert answered[2] == [0.0, 0.0]
    assert answered[3] == pytest.approx([1e-9, 0.0])  # below float32's epsilon: as stored
    assert answered[4] == [-1.0, 0.0, 0.0]  # another dimension in the same page


def test_cosine_vectors_agree_with_qdrant_client_local_mode() -> None:
    data = np.random.default_rng(7).normal(scale=5.0, size=(40, 6)).astype(np.float32)
    data[3] = 0.0
    local = QdrantClient(":memory:")
    local.create_collection("c", vectors_config=models.VectorParams(size=6, distance=models.Distance.COSINE))
    local.upsert("c", models.Batch(ids=list(range(40)), vectors=data.tolist()))
    expected = {p.id: p.vector for p in local.retrieve("c", list(range(40)), with_vectors=True)}
    local.close()
    answered = cosine_vectors(data.tolist())
    for position, vector in enumerate(answered):
        assert np.allclose(vector, expected[position], rtol=1e-6, atol=1e-7), position  # type: ignore[arg-type]


def test_records_normalise_only_cosine_vectors_that_were_asked_for() -> None:
    points: list[dict[str, Any]] = [
        {"id": 1, "payload": {"a": 1}, "vector": [3.0, 4.0]},
        {"id": 2, "payload": None, "vector": None},
    ]
    everything = PayloadSelection(True)
    assert records(points, everything, with_vector=True, cosine=True) == [
        {"id": 1, "payload": {"a": 1}, "vector": pytest.approx([0.6, 0.8])},
        {"id": 2, "payload": None, "vector": None},
    ]
    assert records(points, everything, with_vector=True, cosine=False)[0]["vector"] == [3.0, 4.0]
    assert records(points, everything, with_vector=False, cosine=True)[0]["vector"] is None


def test_scored_points_normalise_cosine_vectors() -> None:
    query = search_request({"vector": [1.0, 0.0], "limit": 2, "with_vector": True}, max_k=10)
    hits = [{"id": 1, "score": 0.6, "vector": [3.0, 4.0]}, {"id": 2, "score": 0.0, "vector": [0.0, 0.0]}]
    cosine = scored_points(hits, query, cosine=True)
    assert [hit["vector"] for hit in cosine] == [pytest.approx([0.6, 0.8]), [0.0, 0.0]]
    assert scored_points(hits, query)[0]["vector"] == [3.0, 4.0]  # Dot and Euclid: as stored
    without = search_request({"vector": [1.0, 0.0], "limit": 2}, max_k=10)
    assert all(hit["vector"] is None for hit in scored_points(hits, without, cosine=True))


# ---- tuning settings on create ---------------------------------------------------------

LOCAL_MODE_SETTINGS: dict[str, Any] = {  # what qdrant-client's local mode reports, as migrate sends it
    "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0},
    "optimizers_config": {
        "deleted_threshold": 0.2,
        "vacuum_min_vector_number": 1000,
        "default_segment_number": 0,
        "max_segment_size": None,
        "memmap_threshold": None,
        "indexing_threshold": 20000,
        "flush_interval_sec": 5,
        "max_optimization_threads": 1,
        "prevent_unoptimized": None,
    },
    "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1},
}


def test_tuning_settings_are_accepted_and_ignored() -> None:
    schema = schema_from_qdrant("docs", {"vectors": VECTORS, **LOCAL_MODE_SETTINGS}, SHAPE)
    assert schema == CollectionSchema(
        "docs", 3, Metric.COSINE, hnsw=HnswConfig(connectivity=16, expansion_add=100)
    )
    more = {
        "vectors": {**VECTORS, "hnsw_config": {"full_scan_threshold": 0, "max_indexing_threads": 8}},
        "optimizers_config": {"max_optimization_threads": "auto", "prevent_unoptimized": True},
        "wal_config": {},
    }
    assert schema_from_qdrant("docs", more, SHAPE) == CollectionSchema("docs", 3)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"optimizers_config": {"deleted_threshold": 1.5}}, "optimizers_config.deleted_threshold"),
        ({"optimizers_config": {"deleted_threshold": True}}, "optimizers_config.deleted_threshold"),
        ({"optimizers_config": {"max_optimization_threads": "many"}}, "max_optimization_threads"),
        ({"optimizers_config": {"prevent_unoptimized": "yes"}}, "prevent_unoptimized"),
        ({"optimizers_config": {"flush_interval_sec": 2.5}}, "flush_interval_sec"),
        ({"optimizers_config": {"indexing_threshold": 2**64}}, "indexing_threshold"),
        ({"optimizers_config": {"vacuum": 1}}, r"unknown optimizers_config field\(s\) \['vacuum'\]"),
        ({"optimizers_config": [1]}, "optimizers_config must be an object"),
        ({"wal_config": {"wal_capacity_mb": 0}}, "wal_config.wal_capacity_mb"),
        ({"wal_config": {"wal_segments_ahead": -1}}, "wal_config.wal_segments_ahead"),
        ({"wal_config": {"segments": 1}}, "unknown wal_config field"),
        ({"hnsw_config": {"full_scan_threshold": "big"}}, "hnsw_config.full_scan_threshold"),
        ({"hnsw_config": {"max_indexing_threads": False}}, "hnsw_config.max_indexing_threads"),
        (
            {"vectors": {**VECTORS, "hnsw_config": {"full_scan_threshold": -5}}},
            "vectors.hnsw_config.full_scan_threshold",
        ),
    ],
)
def test_invalid_tuning_settings_are_refused(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidSchema, match=named):
        schema_from_qdrant("docs", {"vectors": VECTORS, **extra}, SHAPE)


def test_settings_vecstore_cannot_take_are_still_501() -> None:
    for extra in (
        {"hnsw_config": {"on_disk": True}},
        {"hnsw_config": {"payload_m": 4}},
        {"on_disk_payload": True},
    ):
        with pytest.raises(NotImplementedParameter):
            schema_from_qdrant("docs", {"vectors": VECTORS, **extra}, SHAPE)


# ---- collection info, read back as migrate reads it ------------------------------------


def test_collection_info_reports_wal_config_and_recreates_the_same_collection() -> None:
    schema = CollectionSchema(
        "docs", 4, Metric.DOT, StorageDtype.F16, HnswConfig(connectivity=8, expansion_add=50)
    )
    info = models.CollectionInfo.model_validate(collection_info(schema, {"points": 1}, SHAPE))
    config = info.config
    assert config.wal_config is not None
    assert (config.wal_config.wal_capacity_mb, config.wal_config.wal_segments_ahead) == (32, 0)
    # what QdrantClient.migrate sends to create the collection on the destination
    create = models.CreateCollection(
        vectors=config.params.vectors,
        shard_number=config.params.shard_number,
        replication_factor=config.params.replication_factor,
        write_consistency_factor=config.params.write_consistency_factor,
        hnsw_config=models.HnswConfigDiff(**to_dict(config.hnsw_config)),
        optimizers_config=models.OptimizersConfigDiff(**to_dict(config.optimizer_config)),
        wal_config=models.WalConfigDiff(**to_dict(config.wal_config)),
        quantization_config=config.quantization_config,
    )
    body = create.model_dump(mode="json", exclude_none=True)
    assert schema_from_qdrant("docs", body, SHAPE) == schema
