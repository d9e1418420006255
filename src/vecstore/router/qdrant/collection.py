"""Qdrant collection configs translated to our schemas and back.

A create request becomes a CollectionSchema (Cosine -> cosine, Euclid -> l2, Dot -> dot;
m -> connectivity, ef_construct -> expansion_add), with one unnamed vector or named vectors.
Parameters we cannot honour are refused by name, except the tuning settings Qdrant's own
collection info reports (optimizers, WAL, hnsw full_scan_threshold and
max_indexing_threads): VecStore has no equivalent, so their types and ranges are checked and
they are then ignored (docs/qdrant.md gives the reason for each), which lets a config read
from one Qdrant create the collection on another (`QdrantClient.migrate`). Collection info
is rendered in the shape qdrant-client parses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vecstore.cluster.errors import InvalidSchema, NotImplementedParameter
from vecstore.cluster.schema import (
    DEFAULT_VECTOR,
    MAX_DIMENSION,
    CollectionSchema,
    HnswConfig,
    Metric,
    SparseModifier,
    SparseSpec,
    StorageDtype,
    VectorSpec,
    validate_vector_name,
)
from vecstore.cluster.spec import ClusterSpec

DISTANCES = {"Cosine": Metric.COSINE, "Euclid": Metric.L2, "Dot": Metric.DOT}
DATATYPES = {"float32": StorageDtype.F32, "float16": StorageDtype.F16}
HNSW_NAMES = {"m": "connectivity", "ef_construct": "expansion_add"}
UNSUPPORTED_CREATE = {
    "quantization_config": "quantization_config (VecStore has f32/f16 storage; i8 via the native API)",
    "on_disk_payload": "on_disk_payload",
    "strict_mode_config": "strict_mode_config",
    "metadata": "collection metadata",
    "payload": "payload storage params",
    "id_tracker": "id_tracker params",
    "init_from": "init_from",
}
UNSUPPORTED_VECTOR = {
    "quantization_config": "vectors.quantization_config",
    "on_disk": "vectors.on_disk (sealed segments are always memory-mapped from disk)",
    "memory": "vectors.memory",
}
UNSUPPORTED_HNSW = ("on_disk", "memory", "payload_m", "inline_storage")
MAX_UINT64 = 2**64 - 1


@dataclass(frozen=True)
class Tolerated:
    """A Qdrant setting with no VecStore equivalent: its type and range are checked, then it is
    ignored."""

    expected: str
    """What a valid value is, for the error message."""
    valid: Callable[[object], bool]


def _integer(low: int) -> Tolerated:
    def valid(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_UINT64

    return Tolerated(f"an integer in {low}..{MAX_UINT64}", valid)


COUNT = _integer(0)


def _fraction(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _threads(value: object) -> bool:
    return value == "auto" or COUNT.valid(value)


TOLERATED_HNSW = {"full_scan_threshold": COUNT, "max_indexing_threads": COUNT}
TOLERATED_OPTIMIZERS = {
    "deleted_threshold": Tolerated("a number in 0..1", _fraction),
    "vacuum_min_vector_number": COUNT,
    "default_segment_number": COUNT,
    "max_segment_size": COUNT,
    "memmap_threshold": COUNT,
    "indexing_threshold": COUNT,
    "flush_interval_sec": COUNT,
    "max_optimization_threads": Tolerated(f'"auto" or an integer in 0..{MAX_UINT64}', _threads),
    "prevent_unoptimized": Tolerated("true or false", lambda value: isinstance(value, bool)),
}
TOLERATED_WAL = {"wal_capacity_mb": _integer(1), "wal_segments_ahead": COUNT, "wal_retain_closed": COUNT}
TOLERATED_SECTIONS = {"optimizers_config": TOLERATED_OPTIMIZERS, "wal_config": TOLERATED_WAL}

# Required by qdrant-client's CollectionInfo model (and read back by QdrantClient.migrate);
# VecStore has no such settings, so these are Qdrant's defaults, reported so that the info
# parses and can create a collection elsewhere. They mean nothing here (docs/qdrant.md).
FULL_SCAN_THRESHOLD_KB = 10_000
OPTIMIZER_CONFIG = {"default_segment_number": 0, "flush_interval_sec": 5}
WAL_CONFIG = {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1}


@dataclass(frozen=True)
class ClusterShape:
    """What every collection inherits from the cluster: its shard and replica counts."""

    shards: int
    replicas: int

    @classmethod
    def of(cls, spec: ClusterSpec) -> ClusterShape:
        """The shape of a cluster spec (replicas of its smallest shard)."""
        return cls(len(spec.shards), min(len(shard.nodes) for shard in spec.shards))

    @property
    def write_quorum(self) -> int:
        """Replicas that must apply a write before it is acknowledged (a Raft majority)."""
        return self.replicas // 2 + 1


def present(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that are set: Qdrant treats null as absent."""
    return {key: value for key, value in data.items() if value is not None}


def schema_from_qdrant(name: str, body: Mapping[str, Any], shape: ClusterShape) -> CollectionSchema:
    """The schema a Qdrant create-collection request asks for, or a clear error."""
    fields = present(body)
    for key, what in UNSUPPORTED_CREATE.items():
        if key in fields:
            raise NotImplementedParameter(f"{what} is not supported by VecStore (parameter '{key}')")
    _check_cluster_wide(fields, shape)
    for key, tolerated in TOLERATED_SECTIONS.items():
        _tolerated(fields.get(key), key, tolerated)
    unknown = set(fields) - {
        "vectors",
        "sparse_vectors",
        "hnsw_config",
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
        "sharding_method",
        *TOLERATED_SECTIONS,
    }
    if unknown:
        raise InvalidSchema(f"unknown create-collection field(s) {sorted(unknown)}")
    vectors = fields.get("vectors", {})
    if not isinstance(vectors, dict):
        raise InvalidSchema(
            "'vectors' must be an object: {size, distance}, or vector name -> {size, distance}"
        )
    hnsw = _hnsw(fields.get("hnsw_config"), "hnsw_config", {})
    sparse = _sparse_params(fields.get("sparse_vectors"))
    if "size" in vectors or "distance" in vectors:
        spec = _vector_params(vectors, "vectors", hnsw)
        if sparse or spec.multivector:  # Qdrant's default vector, kept as the named vector ""
            return CollectionSchema.with_named(name, {DEFAULT_VECTOR: spec}, sparse)
        schema = CollectionSchema(name, spec.dimension, spec.metric, spec.dtype, spec.hnsw)
        schema.validate()
        return schema
    named: dict[str, VectorSpec] = {}
    for vector_name, params in vectors.items():
        where = f"vectors.{vector_name}"
        validate_vector_name(vector_name)
        if not isinstance(params, dict):
            raise InvalidSchema(f"{where} must be an object with 'size' and 'distance'")
        named[vector_name] = _vector_params(params, where, hnsw)
    return CollectionSchema.with_named(name, named, sparse)


SPARSE_MODIFIERS = {"none": SparseModifier.NONE, "idf": SparseModifier.IDF}
TOLERATED_SPARSE_INDEX = {
    "full_scan_threshold": COUNT,
    "on_disk": Tolerated("true or false", lambda value: isinstance(value, bool)),
    "datatype": Tolerated('"float32"', lambda value: value == "float32"),
}


def _sparse_params(raw: object) -> dict[str, SparseSpec]:
    """Qdrant's sparse_vectors: name -> {modifier, index}; the index settings are checked
    and ignored (every shard keeps an exact inverted index in memory)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidSchema("sparse_vectors must be an object: vector name -> {modifier}")
    found: dict[str, SparseSpec] = {}
    for vector_name, params in raw.items():
        where = f"sparse_vectors.{vector_name}"
        validate_vector_name(vector_name)
        fields = present(params) if isinstance(params, dict) else None
        if fields is None:
            raise InvalidSchema(f"{where} must be an object")
        unknown = set(fields) - {"modifier", "index"}
        if unknown:
            raise InvalidSchema(f"unknown {where} field(s) {sorted(unknown)}")
        _tolerated(fields.get("index"), f"{where}.index", TOLERATED_SPARSE_INDEX)
        modifier = fields.get("modifier", "none")
        if modifier not in SPARSE_MODIFIERS:
            raise InvalidSchema(f"{where}.modifier must be none or idf, got {modifier!r}")
        found[vector_name] = SparseSpec(SPARSE_MODIFIERS[modifier])
    return found


def _vector_params(raw: Mapping[str, Any], where: str, hnsw_base: dict[str, int]) -> VectorSpec:
    """Qdrant's VectorParams (one unnamed vector, or one named vector)."""
    params = present(raw)
    for key, what in UNSUPPORTED_VECTOR.items():
        if key in params:
            raise NotImplementedParameter(f"{what} is not supported by VecStore (parameter '{where}.{key}')")
    unknown = set(params) - {"size", "distance", "hnsw_config", "datatype", "multivector_config"}
    if unknown:
        raise InvalidSchema(f"unknown {where} field(s) {sorted(unknown)}")
    multivector = _multivector(params.get("multivector_config"), where)
    hnsw = _hnsw(params.get("hnsw_config"), f"{where}.hnsw_config", hnsw_base)
    size = params.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_DIMENSION:
        raise InvalidSchema(f"{where}.size must be an integer in 1..{MAX_DIMENSION}, got {size!r}")
    return VectorSpec(
        dimension=size,
        metric=_distance(params.get("distance"), where),
        dtype=_datatype(params.get("datatype", "float32"), where),
        hnsw=HnswConfig(**hnsw),
        multivector=multivector,
    )


def _multivector(raw: object, where: str) -> bool:
    """Whether a vector is a multivector (`multivector_config: {"comparator": "max_sim"}`)."""
    if raw is None:
        return False
    if not isinstance(raw, dict) or present(raw) != {"comparator": "max_sim"}:
        raise InvalidSchema(f'{where}.multivector_config must be {{"comparator": "max_sim"}}, got {raw!r}')
    return True


def _check_cluster_wide(fields: Mapping[str, Any], shape: ClusterShape) -> None:
    """Sharding and replication belong to the cluster: accept them only when they agree."""
    actual = {
        "shard_number": shape.shards,
        "replication_factor": shape.replicas,
        "write_consistency_factor": shape.write_quorum,
    }
    for key, value in actual.items():
        if key in fields and fields[key] != value:
            raise InvalidSchema(
                f"{key}={fields[key]!r}: every VecStore collection uses the cluster's {key} of {value} "
                "(set by the cluster spec, not per collection)"
            )
    method = fields.get("sharding_method", "auto")
    if method != "auto":
        raise NotImplementedParameter(f"sharding_method {method!r} is not supported; only 'auto'")


def _hnsw(raw: object, where: str, base: dict[str, int]) -> dict[str, int]:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise InvalidSchema(f"{where} must be an object")
    config = present(raw)
    for key in UNSUPPORTED_HNSW:
        if key in config:
            raise NotImplementedParameter(f"{where}.{key} is not supported by VecStore")
    unknown = set(config) - set(HNSW_NAMES) - set(TOLERATED_HNSW)
    if unknown:
        raise InvalidSchema(f"unknown {where} field(s) {sorted(unknown)}")
    _tolerated({key: config[key] for key in TOLERATED_HNSW if key in config}, where, TOLERATED_HNSW)
    merged = dict(base)
    for qdrant_name, our_name in HNSW_NAMES.items():
        if qdrant_name in config:
            merged[our_name] = config[qdrant_name]
    low_high = {"connectivity": (2, 256), "expansion_add": (1, 10_000)}
    for qdrant_name, our_name in HNSW_NAMES.items():
        value = merged.get(our_name)
        low, high = low_high[our_name]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            raise InvalidSchema(f"{where}.{qdrant_name} must be an integer in {low}..{high}, got {value!r}")
    return merged


def _tolerated(raw: object, where: str, settings: Mapping[str, Tolerated]) -> None:
    """Check settings VecStore accepts and ignores: an object of known fields, valid values."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise InvalidSchema(f"{where} must be an object")
    config = present(raw)
    unknown = set(config) - set(settings)
    if unknown:
        raise InvalidSchema(f"unknown {where} field(s) {sorted(unknown)}; expected {sorted(settings)}")
    for key, value in config.items():
        if not settings[key].valid(value):
            raise InvalidSchema(f"{where}.{key} must be {settings[key].expected}, got {value!r}")


def _distance(value: object, where: str) -> Metric:
    if value == "Manhattan":
        raise NotImplementedParameter("distance 'Manhattan' is not supported; use Cosine, Euclid or Dot")
    if not isinstance(value, str) or value not in DISTANCES:
        raise InvalidSchema(f"{where}.distance must be one of Cosine, Euclid, Dot; got {value!r}")
    return DISTANCES[value]


def _datatype(value: object, where: str) -> StorageDtype:
    if value == "uint8":
        raise NotImplementedParameter(f"{where}.datatype 'uint8' is not supported; use float32 or float16")
    if not isinstance(value, str) or value not in DATATYPES:
        raise InvalidSchema(f"{where}.datatype must be float32 or float16, got {value!r}")
    return DATATYPES[value]


def collection_info(
    schema: CollectionSchema, totals: Mapping[str, Any], shape: ClusterShape
) -> dict[str, Any]:
    """Qdrant's CollectionInfo for one of our collections and its summed counts."""
    unnamed = VectorSpec(schema.dimension, schema.metric, schema.dtype, schema.hnsw)
    vectors: dict[str, Any] = _vector_info(unnamed, None)
    hnsw = schema.hnsw
    quantized = schema.dtype is StorageDtype.I8
    if schema.named:
        hnsw = HnswConfig()
        vectors = {vector_name: _vector_info(spec, hnsw) for vector_name, spec in schema.vectors}
        quantized = False
        if list(vectors) == [DEFAULT_VECTOR]:  # one unnamed dense vector beside sparse ones
            vectors = vectors[DEFAULT_VECTOR]
    config: dict[str, Any] = {
        "params": {
            "vectors": vectors,
            "shard_number": shape.shards,
            "replication_factor": shape.replicas,
            "write_consistency_factor": shape.write_quorum,
        },
        "hnsw_config": {
            "m": hnsw.connectivity,
            "ef_construct": hnsw.expansion_add,
            "full_scan_threshold": FULL_SCAN_THRESHOLD_KB,
            "max_indexing_threads": 0,
        },
        "optimizer_config": dict(OPTIMIZER_CONFIG),
        "wal_config": dict(WAL_CONFIG),
    }
    if schema.sparse_vectors:
        config["params"]["sparse_vectors"] = {
            vector_name: {"modifier": "idf"} if spec.modifier is SparseModifier.IDF else {}
            for vector_name, spec in schema.sparse_vectors
        }
    if quantized:
        # i8 index storage re-scored with full-precision vectors: Qdrant's scalar quantization.
        config["quantization_config"] = {"scalar": {"type": "int8"}}
    points = int(totals.get("points", 0))
    lag = int(totals.get("indexing_lag", 0))
    return {
        "status": "green" if lag == 0 else "yellow",
        "optimizer_status": "ok",
        "points_count": points,
        "indexed_vectors_count": max(points - lag, 0),
        "segments_count": int(totals.get("segments", 0)),
        "config": config,
        "payload_schema": {
            key: _payload_index_info(field["schema"], int(field["points"]))
            for key, field in sorted(totals.get("payload_fields", {}).items())
        },
    }


def _payload_index_info(schema: Mapping[str, Any], points: int) -> dict[str, Any]:
    """Qdrant's PayloadIndexInfo: the type, its parameters when any were given, the points."""
    info: dict[str, Any] = {"data_type": schema["type"], "points": points}
    if len(schema) > 1:
        info["params"] = dict(schema)
    return info


def _vector_info(spec: VectorSpec, collection_hnsw: HnswConfig | None) -> dict[str, Any]:
    """Qdrant's VectorParams of one vector: a named vector's own HNSW settings only when they
    differ from the collection's, float32 (the default) left out as Qdrant leaves out what
    was not set."""
    distance = {metric: name for name, metric in DISTANCES.items()}[spec.metric]
    info: dict[str, Any] = {"size": spec.dimension, "distance": distance}
    if spec.dtype is StorageDtype.F16:
        info["datatype"] = "float16"
    elif spec.dtype is StorageDtype.F32 and collection_hnsw is None:
        info["datatype"] = "float32"
    elif spec.dtype is StorageDtype.I8 and collection_hnsw is not None:
        info["quantization_config"] = {"scalar": {"type": "int8"}}
    if spec.multivector:
        info["multivector_config"] = {"comparator": "max_sim"}
    if collection_hnsw is not None and spec.hnsw != collection_hnsw:
        info["hnsw_config"] = {"m": spec.hnsw.connectivity, "ef_construct": spec.hnsw.expansion_add}
    return info
