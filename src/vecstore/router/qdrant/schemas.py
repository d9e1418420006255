"""JSON schemas (OpenAPI 3.1 components) of the Qdrant-compatible subset, exactly as served.

Request schemas list only what VecStore accepts (additionalProperties false), so a request
valid against them never hits a 501; the handlers in `qdrant_api` are described with them.
"""

from __future__ import annotations

from typing import Any

from vecstore.cluster.commands import PAYLOAD_INDEX_TYPES

Schema = dict[str, Any]
MAX_POINT_ID = 2**64 - 1
MAX_K = 1_000
MAX_BATCH = 10_000


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def strict(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """An object with exactly these properties."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def envelope(result: Schema, profiled: bool = False) -> Schema:
    """Qdrant's success body: `{"result": ..., "status": "ok", "time": seconds}` (and with
    `profiled`, VecStore's `profile` when `?profile=true` asked for it)."""
    properties = {"result": result, "status": {"type": "string", "enum": ["ok"]}, "time": {"type": "number"}}
    if profiled:
        properties["profile"] = ref("QueryProfile")
    return strict(properties, ("result", "status", "time"))


def ignored(schema: Schema) -> Schema:
    """A Qdrant tuning setting VecStore has no equivalent for: validated, then ignored."""
    return {**schema, "description": "accepted and ignored (docs/qdrant.md)"}


def array(items: Schema, **extra: Any) -> Schema:
    """A JSON array of `items`."""
    return {"type": "array", "items": items, **extra}


INTEGER = {"type": "integer"}
UINT64 = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}
NUMBER = {"type": "number"}
FLOAT32 = {"type": "number", "minimum": -3.4e38, "maximum": 3.4e38}
BOOLEAN = {"type": "boolean"}
STRING = {"type": "string"}
KEY = {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$", "maxLength": 64}
TOP_KEY = {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+$", "maxLength": 64}
FILTER_KEY = {
    "type": "string",
    "pattern": r'^([A-Za-z0-9_\-]+|"[^"]+")(\[[0-9]*\])*(\.([A-Za-z0-9_\-]+|"[^"]+")(\[[0-9]*\])*)*$',
    "maxLength": 64,
    "description": 'a payload path: a.b, a[].b, a[0].b, "dotted.name"',
}
SCALAR = {"anyOf": [STRING, INTEGER, BOOLEAN]}
WAIT = {"type": "boolean"}
ORDERING = {"type": "string", "enum": ["weak", "medium", "strong"]}
TIMEOUT = {"type": "integer", "minimum": 1, "maximum": 3600}
CONSISTENCY = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["majority", "quorum", "all"]}]
}
QUERY_PARAMETERS: dict[str, tuple[Schema, str]] = {
    "wait": (WAIT, "Accepted; every write is answered only after it is committed, so both values wait."),
    "ordering": (ORDERING, "Accepted; every write goes through its shard's Raft leader (strong ordering)."),
    "timeout": (TIMEOUT, "Seconds before the request fails with 504 (it may still be applied)."),
    "consistency": (
        CONSISTENCY,
        "1 (default): any replica; majority, quorum, all or >1: the leader, linearizable.",
    ),
    "profile": (
        {"type": "string", "enum": ["true", "false"]},
        "VecStore's: true adds the search's stage breakdown as `profile` (docs/slow-queries.md).",
    ),
}

QUERY_PROFILE = strict(
    {
        "total_ms": {"type": "number", "minimum": 0},
        "where": STRING,
        "stages": array(
            strict(
                {"name": STRING, "where": STRING, "start_ms": {"type": "number"}, "ms": {"type": "number"}},
                ("name", "where", "start_ms", "ms"),
            )
        ),
    },
    ("total_ms", "stages"),
)
"""A search's stages (`vecstore.cluster.profile.Profile.to_dict`), native and Qdrant APIs alike."""

TEXT = {"type": "string", "maxLength": 4_096}
DATETIME = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$",
    "maxLength": 40,
}
GEO_CONDITIONS: list[Schema] = [
    strict(
        {
            "key": FILTER_KEY,
            "geo_radius": strict(
                {"center": ref("QdrantGeoPoint"), "radius": {"type": "number", "minimum": 0}},
                ("center", "radius"),
            ),
        },
        ("key", "geo_radius"),
    ),
    strict(
        {
            "key": FILTER_KEY,
            "geo_bounding_box": strict(
                {"top_left": ref("QdrantGeoPoint"), "bottom_right": ref("QdrantGeoPoint")},
                ("top_left", "bottom_right"),
            ),
        },
        ("key", "geo_bounding_box"),
    ),
    strict(
        {
            "key": FILTER_KEY,
            "geo_polygon": strict(
                {"exterior": ref("QdrantGeoRing"), "interiors": array(ref("QdrantGeoRing"), maxItems=8)},
                ("exterior",),
            ),
        },
        ("key", "geo_polygon"),
    ),
]
"""Geo conditions, native and Qdrant alike (rings must also be closed: checked, not schema)."""

SEARCH_VECTOR: Schema = {
    "anyOf": [
        ref("QdrantVector"),
        strict(
            {
                "name": ref("QdrantVectorName"),
                "vector": {"anyOf": [ref("QdrantVector"), ref("QdrantSparseVector")]},
            },
            ("name", "vector"),
        ),
    ]
}
"""The legacy search's vector: a plain one, or {name, vector} (dense or sparse)."""
LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_K}
PAGE: dict[str, Schema] = {"limit": LIMIT, "offset": {"type": "integer", "minimum": 0, "maximum": MAX_K - 1}}
"""limit and offset of a search that pages."""
HITS: dict[str, Schema] = {
    "filter": ref("QdrantFilter"),
    "params": ref("QdrantSearchParams"),
    "with_payload": ref("QdrantWithPayload"),
    "with_vector": ref("QdrantWithVector"),
}
"""What every search request takes to choose and shape its hits."""
QUERY_STAGES: dict[str, Schema] = {
    "query": ref("QdrantQueryInterface"),
    "prefetch": {"anyOf": [ref("QdrantPrefetch"), array(ref("QdrantPrefetch"), maxItems=4)]},
    "using": ref("QdrantVectorName"),
}
"""A Query API request's query, its prefetches and the vector it uses."""
GROUPING: dict[str, Schema] = {
    "group_by": FILTER_KEY,
    "group_size": {"type": "integer", "minimum": 1, "maximum": MAX_K},
    "limit": LIMIT,
}
"""The group fields of `query/groups` and `search/groups`."""

COMPONENTS: dict[str, Schema] = {
    "QueryProfile": QUERY_PROFILE,
    "QdrantError": strict(
        {
            "status": strict({"error": STRING}, ("error",)),
            "time": NUMBER,
            "result": {"type": "object"},
        },
        ("status", "time"),
    ),
    "QdrantPointId": {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": MAX_POINT_ID},
            {"type": "string", "format": "uuid"},
        ]
    },
    "QdrantPayload": {"type": "object"},
    "QdrantVector": array(FLOAT32, minItems=1, maxItems=65_536),
    "QdrantVectorName": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
    "QdrantSparseVector": strict(
        {
            "indices": array({"type": "integer", "minimum": 0, "maximum": 2**32 - 1}, maxItems=4_096),
            "values": array(FLOAT32, maxItems=4_096),
        },
        ("indices", "values"),
    ),
    "QdrantNamedVectors": {
        "type": "object",
        "propertyNames": ref("QdrantVectorName"),
        "additionalProperties": {
            "anyOf": [ref("QdrantVector"), ref("QdrantSparseVector"), ref("QdrantMultiVector")]
        },
        "maxProperties": 16,
    },
    "QdrantMultiVector": array(ref("QdrantVector"), minItems=1, maxItems=1_024),
    "QdrantNearest": {
        "anyOf": [
            ref("QdrantVector"),
            ref("QdrantPointId"),
            ref("QdrantSparseVector"),
            ref("QdrantMultiVector"),
        ]
    },
    "QdrantQueryInterface": {
        "anyOf": [
            ref("QdrantNearest"),
            strict(
                {
                    "nearest": ref("QdrantNearest"),
                    "mmr": strict(
                        {
                            "diversity": {"type": "number", "minimum": 0, "maximum": 1},
                            "candidates_limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
                        }
                    ),
                },
                ("nearest",),
            ),
            strict({"fusion": {"type": "string", "enum": ["rrf", "dbsf"]}}, ("fusion",)),
            strict({"recommend": ref("QdrantRecommendInput")}, ("recommend",)),
            strict({"discover": ref("QdrantDiscoverInput")}, ("discover",)),
            strict({"context": ref("QdrantContextInput")}, ("context",)),
            strict(
                {
                    "rrf": strict(
                        {
                            "k": {"type": "integer", "minimum": 1},
                            "weights": array({"type": "number", "minimum": 0}, maxItems=8),
                        }
                    )
                },
                ("rrf",),
            ),
        ]
    },
    "QdrantExample": {"anyOf": [ref("QdrantPointId"), ref("QdrantVector")]},
    "QdrantRecommendInput": strict(
        {
            "positive": array(ref("QdrantExample"), maxItems=8),
            "negative": array(ref("QdrantExample"), maxItems=8),
            "strategy": {"type": "string", "enum": ["average_vector", "best_score", "sum_scores"]},
        }
    ),
    "QdrantContextPair": strict(
        {"positive": ref("QdrantExample"), "negative": ref("QdrantExample")}, ("positive", "negative")
    ),
    "QdrantContextInput": {
        "anyOf": [ref("QdrantContextPair"), array(ref("QdrantContextPair"), minItems=1, maxItems=7)]
    },
    "QdrantDiscoverInput": strict(
        {
            "target": ref("QdrantExample"),
            "context": nullable(
                {"anyOf": [ref("QdrantContextPair"), array(ref("QdrantContextPair"), maxItems=7)]}
            ),
        },
        ("target",),
    ),
    "QdrantPrefetchLeaf": strict(
        {
            "query": ref("QdrantQueryInterface"),
            "using": ref("QdrantVectorName"),
            "filter": ref("QdrantFilter"),
            "params": ref("QdrantSearchParams"),
            "score_threshold": NUMBER,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_K},
        },
        ("query",),
    ),
    "QdrantPrefetch": strict(
        {
            "prefetch": {"anyOf": [ref("QdrantPrefetchLeaf"), array(ref("QdrantPrefetchLeaf"), maxItems=4)]},
            "query": ref("QdrantQueryInterface"),
            "using": ref("QdrantVectorName"),
            "filter": ref("QdrantFilter"),
            "params": ref("QdrantSearchParams"),
            "score_threshold": NUMBER,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_K},
        },
        ("query",),
    ),
    "QdrantVectorStruct": {"anyOf": [ref("QdrantVector"), ref("QdrantNamedVectors")]},
    "QdrantWithVector": {"anyOf": [BOOLEAN, array(ref("QdrantVectorName"))]},
    "QdrantFilter": strict(
        {
            **{clause: ref("QdrantConditions") for clause in ("must", "should", "must_not")},
            "min_should": strict(
                {
                    "conditions": array(ref("QdrantCondition"), maxItems=8),
                    "min_count": {"type": "integer", "minimum": 0, "maximum": 8},
                },
                ("conditions", "min_count"),
            ),
        },
        description="must: all hold; should: at least one holds; must_not: none holds; "
        "min_should: at least min_count of its conditions hold",
    ),
    "QdrantValuesCount": strict(
        {bound: {"type": "integer", "minimum": 0, "maximum": 1_000} for bound in ("gt", "gte", "lt", "lte")},
        minProperties=1,
    ),
    "QdrantConditions": {"anyOf": [ref("QdrantCondition"), array(ref("QdrantCondition"), maxItems=8)]},
    "QdrantCondition": {
        "anyOf": [
            strict({"key": FILTER_KEY, "match": ref("QdrantMatch")}, ("key", "match")),
            strict({"key": FILTER_KEY, "range": ref("QdrantRange")}, ("key", "range")),
            strict({"key": FILTER_KEY, "is_empty": BOOLEAN}, ("key", "is_empty")),
            strict({"is_empty": strict({"key": FILTER_KEY}, ("key",))}, ("is_empty",)),
            strict({"key": FILTER_KEY, "is_null": BOOLEAN}, ("key", "is_null")),
            strict({"is_null": strict({"key": FILTER_KEY}, ("key",))}, ("is_null",)),
            strict({"key": FILTER_KEY, "values_count": ref("QdrantValuesCount")}, ("key", "values_count")),
            *GEO_CONDITIONS,
            strict(
                {"nested": strict({"key": KEY, "filter": ref("QdrantFilter")}, ("key", "filter"))},
                ("nested",),
            ),
            strict({"has_id": array(ref("QdrantPointId"))}, ("has_id",)),
            ref("QdrantFilter"),
        ]
    },
    "QdrantMatch": {
        "oneOf": [
            strict({"value": SCALAR}, ("value",)),
            strict({"any": {"anyOf": [array(STRING), array(INTEGER)]}}, ("any",)),
            strict({"except": {"anyOf": [array(STRING), array(INTEGER)]}}, ("except",)),
            *(
                strict({kind: TEXT}, (kind,))
                for kind in ("text", "text_any", "phrase", "prefix", "substring")
            ),
        ]
    },
    "QdrantRange": {
        "anyOf": [
            strict(dict.fromkeys(("gt", "gte", "lt", "lte"), NUMBER), minProperties=1),
            strict(dict.fromkeys(("gt", "gte", "lt", "lte"), DATETIME), minProperties=1),
        ],
        "description": "numbers, or RFC 3339 datetimes (Qdrant's DatetimeRange)",
    },
    "QdrantGeoPoint": strict(
        {
            "lon": {"type": "number", "minimum": -180, "maximum": 180},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
        },
        ("lon", "lat"),
    ),
    "QdrantGeoRing": strict({"points": array(ref("QdrantGeoPoint"), minItems=4, maxItems=64)}, ("points",)),
    "QdrantWithPayload": {
        "anyOf": [
            BOOLEAN,
            array(KEY),
            strict({"include": array(KEY)}, ("include",)),
            strict({"exclude": array(KEY)}, ("exclude",)),
        ]
    },
    "QdrantSearchParams": strict(
        {
            "hnsw_ef": {"type": "integer", "minimum": 1, "maximum": 100_000},
            "exact": BOOLEAN,
            "indexed_only": {"type": "boolean", "enum": [False]},
        }
    ),
    "QdrantHnswConfigDiff": strict(
        {
            "m": {"type": "integer", "minimum": 2, "maximum": 256},
            "ef_construct": {"type": "integer", "minimum": 1, "maximum": 10_000},
            "full_scan_threshold": ignored(UINT64),
            "max_indexing_threads": ignored(UINT64),
        }
    ),
    "QdrantOptimizersConfigDiff": strict(
        {
            "deleted_threshold": ignored({"type": "number", "minimum": 0, "maximum": 1}),
            **{
                name: ignored(UINT64)
                for name in (
                    "vacuum_min_vector_number",
                    "default_segment_number",
                    "max_segment_size",
                    "memmap_threshold",
                    "indexing_threshold",
                    "flush_interval_sec",
                )
            },
            "max_optimization_threads": ignored({"anyOf": [UINT64, {"type": "string", "enum": ["auto"]}]}),
            "prevent_unoptimized": ignored(BOOLEAN),
        },
        description="Accepted and ignored: VecStore seals and compacts segments on its own",
    ),
    "QdrantWalConfigDiff": strict(
        {
            "wal_capacity_mb": ignored({**UINT64, "minimum": 1}),
            "wal_segments_ahead": ignored(UINT64),
            "wal_retain_closed": ignored(UINT64),
        },
        description="Accepted and ignored: the Raft log is VecStore's write-ahead log",
    ),
    "QdrantVectorParams": strict(
        {
            "size": {"type": "integer", "minimum": 1, "maximum": 65_536},
            "distance": {"type": "string", "enum": ["Cosine", "Euclid", "Dot"]},
            "hnsw_config": ref("QdrantHnswConfigDiff"),
            "datatype": {"type": "string", "enum": ["float32", "float16"]},
            "multivector_config": strict(
                {"comparator": {"type": "string", "enum": ["max_sim"]}}, ("comparator",)
            ),
        },
        ("size", "distance"),
    ),
    "QdrantCreateCollection": strict(
        {
            "vectors": {
                "anyOf": [
                    ref("QdrantVectorParams"),
                    {
                        "type": "object",
                        "propertyNames": ref("QdrantVectorName"),
                        "additionalProperties": ref("QdrantVectorParams"),
                        "maxProperties": 16,
                    },
                ]
            },
            "hnsw_config": ref("QdrantHnswConfigDiff"),
            "shard_number": {"type": "integer", "minimum": 1, "description": "must equal the cluster's"},
            "replication_factor": {
                "type": "integer",
                "minimum": 1,
                "description": "must equal the cluster's",
            },
            "write_consistency_factor": {
                "type": "integer",
                "minimum": 1,
                "description": "must equal the cluster's Raft majority",
            },
            "sharding_method": {"type": "string", "enum": ["auto"]},
            "optimizers_config": ref("QdrantOptimizersConfigDiff"),
            "wal_config": ref("QdrantWalConfigDiff"),
            "sparse_vectors": {
                "type": "object",
                "propertyNames": ref("QdrantVectorName"),
                "additionalProperties": strict(
                    {
                        "modifier": {"type": "string", "enum": ["none", "idf"]},
                        "index": strict(
                            {
                                "full_scan_threshold": ignored(UINT64),
                                "on_disk": ignored(BOOLEAN),
                                "datatype": {"type": "string", "enum": ["float32"]},
                            }
                        ),
                    }
                ),
                "maxProperties": 16,
            },
        },
    ),
    "QdrantPointStruct": strict(
        {
            "id": ref("QdrantPointId"),
            "vector": ref("QdrantVectorStruct"),
            "payload": nullable(ref("QdrantPayload")),
        },
        ("id", "vector"),
    ),
    "QdrantUpdateVectors": strict(
        {
            "points": array(
                strict({"id": ref("QdrantPointId"), "vector": ref("QdrantNamedVectors")}, ("id", "vector")),
                maxItems=MAX_BATCH,
            )
        },
        ("points",),
    ),
    "QdrantDeleteVectors": {
        "oneOf": [
            strict(
                {"vector": array(ref("QdrantVectorName")), "points": array(ref("QdrantPointId"))},
                ("vector", "points"),
            ),
            strict(
                {"vector": array(ref("QdrantVectorName")), "filter": ref("QdrantFilter")},
                ("vector", "filter"),
            ),
        ]
    },
    "QdrantPointInsertOperations": {
        "oneOf": [
            strict({"points": array(ref("QdrantPointStruct"), maxItems=MAX_BATCH)}, ("points",)),
            strict(
                {
                    "batch": strict(
                        {
                            "ids": array(ref("QdrantPointId"), maxItems=MAX_BATCH),
                            "vectors": {
                                "anyOf": [
                                    array(ref("QdrantVector"), maxItems=MAX_BATCH),
                                    {
                                        "type": "object",
                                        "propertyNames": ref("QdrantVectorName"),
                                        "additionalProperties": array(
                                            ref("QdrantVector"), maxItems=MAX_BATCH
                                        ),
                                        "maxProperties": 16,
                                    },
                                ]
                            },
                            "payloads": array(nullable(ref("QdrantPayload"))),
                        },
                        ("ids", "vectors"),
                    )
                },
                ("batch",),
            ),
        ]
    },
    "QdrantPointRequest": strict(
        {
            "ids": array(ref("QdrantPointId"), maxItems=MAX_BATCH),
            "with_payload": ref("QdrantWithPayload"),
            "with_vector": ref("QdrantWithVector"),
        },
        ("ids",),
    ),
    "QdrantPointsSelector": {
        "oneOf": [
            strict({"points": array(ref("QdrantPointId"))}, ("points",)),
            strict({"filter": ref("QdrantFilter")}, ("filter",)),
        ]
    },
    "QdrantSetPayload": {
        "oneOf": [
            strict(
                {"payload": ref("QdrantPayload"), "points": array(ref("QdrantPointId"))},
                ("payload", "points"),
            ),
            strict({"payload": ref("QdrantPayload"), "filter": ref("QdrantFilter")}, ("payload", "filter")),
        ]
    },
    "QdrantDeletePayload": {
        "oneOf": [
            strict({"keys": array(TOP_KEY), "points": array(ref("QdrantPointId"))}, ("keys", "points")),
            strict({"keys": array(TOP_KEY), "filter": ref("QdrantFilter")}, ("keys", "filter")),
        ]
    },
    "QdrantUpdateOperations": strict(
        {
            "operations": array(
                {
                    "oneOf": [
                        strict({"upsert": ref("QdrantPointInsertOperations")}, ("upsert",)),
                        strict({"delete": ref("QdrantPointsSelector")}, ("delete",)),
                        strict({"set_payload": ref("QdrantSetPayload")}, ("set_payload",)),
                        strict({"overwrite_payload": ref("QdrantSetPayload")}, ("overwrite_payload",)),
                        strict({"delete_payload": ref("QdrantDeletePayload")}, ("delete_payload",)),
                        strict({"clear_payload": ref("QdrantPointsSelector")}, ("clear_payload",)),
                        strict({"update_vectors": ref("QdrantUpdateVectors")}, ("update_vectors",)),
                        strict({"delete_vectors": ref("QdrantDeleteVectors")}, ("delete_vectors",)),
                    ]
                },
                maxItems=100,
            )
        },
        ("operations",),
    ),
    "QdrantOrderBy": {
        "anyOf": [
            FILTER_KEY,
            strict(
                {
                    "key": FILTER_KEY,
                    "direction": {"type": "string", "enum": ["asc", "desc"]},
                    "start_from": nullable({"anyOf": [NUMBER, DATETIME]}),
                },
                ("key",),
            ),
        ]
    },
    "QdrantFacetRequest": strict(
        {
            "key": FILTER_KEY,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
            "filter": ref("QdrantFilter"),
            "exact": BOOLEAN,
        },
        ("key",),
    ),
    "QdrantScrollRequest": strict(
        {
            "offset": nullable(ref("QdrantPointId")),
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
            "filter": ref("QdrantFilter"),
            "with_payload": ref("QdrantWithPayload"),
            "with_vector": ref("QdrantWithVector"),
            "order_by": ref("QdrantOrderBy"),
        }
    ),
    "QdrantCountRequest": strict({"filter": ref("QdrantFilter"), "exact": BOOLEAN}),
    "QdrantSearchRequest": strict(
        {"vector": SEARCH_VECTOR, **HITS, **PAGE, "score_threshold": NUMBER}, ("vector", "limit")
    ),
    "QdrantSearchRequestBatch": strict(
        {"searches": array(ref("QdrantSearchRequest"), maxItems=MAX_K)}, ("searches",)
    ),
    "QdrantQueryRequest": strict({**QUERY_STAGES, **HITS, **PAGE, "score_threshold": NUMBER}, ("query",)),
    "QdrantQueryRequestBatch": strict(
        {"searches": array(ref("QdrantQueryRequest"), maxItems=MAX_K)}, ("searches",)
    ),
    "QdrantQueryGroupsRequest": strict(
        {**QUERY_STAGES, **HITS, "score_threshold": NUMBER, **GROUPING}, ("query", "group_by")
    ),
    "QdrantSearchGroupsRequest": strict(
        {"vector": SEARCH_VECTOR, **HITS, "score_threshold": NUMBER, **GROUPING},
        ("vector", "group_by", "group_size", "limit"),
    ),
    "QdrantRecommendRequest": strict(
        {
            "positive": array(ref("QdrantExample"), maxItems=8),
            "negative": array(ref("QdrantExample"), maxItems=8),
            "strategy": {"type": "string", "enum": ["average_vector", "best_score", "sum_scores"]},
            **HITS,
            **PAGE,
            "score_threshold": NUMBER,
            "using": ref("QdrantVectorName"),
        },
        ("limit",),
    ),
    "QdrantRecommendRequestBatch": strict(
        {"searches": array(ref("QdrantRecommendRequest"), maxItems=MAX_K)}, ("searches",)
    ),
    "QdrantDiscoverRequest": strict(
        {
            "target": ref("QdrantExample"),
            "context": nullable(array(ref("QdrantContextPair"), maxItems=7)),
            **HITS,
            **PAGE,
            "using": ref("QdrantVectorName"),
        },
        ("target", "limit"),
    ),
    "QdrantDiscoverRequestBatch": strict(
        {"searches": array(ref("QdrantDiscoverRequest"), maxItems=MAX_K)}, ("searches",)
    ),
    # ---- answers ----
    "QdrantVersionInfo": {
        "type": "object",
        "properties": {"title": STRING, "version": STRING},
        "required": ["title", "version"],
    },
    "QdrantCollectionsResponse": strict(
        {"collections": array(strict({"name": STRING}, ("name",)))}, ("collections",)
    ),
    "QdrantCollectionExistence": strict({"exists": BOOLEAN}, ("exists",)),
    "QdrantCollectionInfo": {
        "type": "object",
        "required": ["status", "optimizer_status", "segments_count", "config", "payload_schema"],
        "properties": {
            "status": {"type": "string", "enum": ["green", "yellow"]},
            "optimizer_status": {"type": "string", "enum": ["ok"]},
            "points_count": INTEGER,
            "indexed_vectors_count": INTEGER,
            "segments_count": INTEGER,
            "config": {
                "type": "object",
                "required": ["params", "hnsw_config", "optimizer_config", "wal_config"],
                "properties": {
                    "params": {"type": "object", "properties": {"vectors": {"type": "object"}}},
                    "hnsw_config": {
                        "type": "object",
                        "required": ["m", "ef_construct", "full_scan_threshold"],
                    },
                    "optimizer_config": {"type": "object"},
                    "wal_config": {
                        "type": "object",
                        "required": ["wal_capacity_mb", "wal_segments_ahead"],
                    },
                    "quantization_config": {"type": "object"},
                },
            },
            "payload_schema": {"type": "object"},
        },
    },
    "QdrantChangeAliases": strict(
        {
            "actions": array(
                {
                    "oneOf": [
                        strict(
                            {
                                "create_alias": strict(
                                    {"collection_name": STRING, "alias_name": STRING},
                                    ("collection_name", "alias_name"),
                                )
                            },
                            ("create_alias",),
                        ),
                        strict(
                            {"delete_alias": strict({"alias_name": STRING}, ("alias_name",))},
                            ("delete_alias",),
                        ),
                        strict(
                            {
                                "rename_alias": strict(
                                    {"old_alias_name": STRING, "new_alias_name": STRING},
                                    ("old_alias_name", "new_alias_name"),
                                )
                            },
                            ("rename_alias",),
                        ),
                    ]
                },
                minItems=1,
                maxItems=100,
            )
        },
        ("actions",),
    ),
    "QdrantAliases": strict(
        {
            "aliases": array(
                strict({"alias_name": STRING, "collection_name": STRING}, ("alias_name", "collection_name"))
            )
        },
        ("aliases",),
    ),
    "QdrantCreateFieldIndex": strict(
        {
            "field_name": {"type": "string", "minLength": 1, "maxLength": 1_024},
            "field_schema": {
                "anyOf": [
                    {"type": "string", "enum": list(PAYLOAD_INDEX_TYPES)},
                    {
                        "type": "object",
                        "properties": {"type": {"type": "string", "enum": list(PAYLOAD_INDEX_TYPES)}},
                        "required": ["type"],
                    },
                ]
            },
        },
        ("field_name", "field_schema"),
    ),
    "QdrantUpdateResult": strict(
        {"operation_id": nullable(INTEGER), "status": {"type": "string", "enum": ["completed"]}}, ("status",)
    ),
    "QdrantRecord": strict(
        {
            "id": ref("QdrantPointId"),
            "order_value": NUMBER,
            "payload": nullable(ref("QdrantPayload")),
            "vector": nullable(
                {
                    "anyOf": [
                        array(NUMBER),
                        {
                            "type": "object",
                            "description": "name -> dense vector, multivector or {indices, values}",
                        },
                    ]
                }
            ),
        },
        ("id",),
    ),
    "QdrantScoredPoint": strict(
        {
            "id": ref("QdrantPointId"),
            "version": INTEGER,
            "score": NUMBER,
            "payload": nullable(ref("QdrantPayload")),
            "vector": nullable(
                {
                    "anyOf": [
                        array(NUMBER),
                        {
                            "type": "object",
                            "description": "name -> dense vector, multivector or {indices, values}",
                        },
                    ]
                }
            ),
        },
        ("id", "version", "score"),
    ),
    "QdrantScrollResult": strict(
        {"points": array(ref("QdrantRecord")), "next_page_offset": nullable(ref("QdrantPointId"))},
        ("points",),
    ),
    "QdrantCountResult": strict({"count": INTEGER}, ("count",)),
    "QdrantFacetResponse": strict(
        {
            "hits": array(
                strict({"value": {"anyOf": [STRING, INTEGER, BOOLEAN]}, "count": INTEGER}, ("value", "count"))
            )
        },
        ("hits",),
    ),
    "QdrantQueryResponse": strict({"points": array(ref("QdrantScoredPoint"))}, ("points",)),
    "QdrantGroupsResult": strict(
        {
            "groups": array(
                strict(
                    {"id": {"anyOf": [STRING, INTEGER]}, "hits": array(ref("QdrantScoredPoint"))},
                    ("id", "hits"),
                )
            )
        },
        ("groups",),
    ),
}
