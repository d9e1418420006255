"""Qdrant point and payload requests translated into ShardSet calls, and records back.

Pure functions over decoded JSON: no I/O, no aiohttp. Whatever a request asks for that
VecStore cannot do is refused with an error naming the parameter (400 when malformed,
501 when it is a Qdrant feature VecStore does not have); nothing is silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecstore.cluster.commands import Selector
from vecstore.cluster.errors import InvalidRequest, InvalidVector, NotImplementedParameter
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.schema import DEFAULT_VECTOR, CollectionSchema, Metric
from vecstore.router.inference import is_document, sparse_of
from vecstore.router.qdrant.collection import present
from vecstore.router.qdrant.filter import filter_from_qdrant, payload_key


def refuse(body: Mapping[str, Any], names: Sequence[str], where: str = "") -> None:
    """Raise NotImplementedParameter if any of `names` is set in `body`."""
    for name in names:
        if body.get(name) is not None:
            raise NotImplementedParameter(f"parameter '{where}{name}' is not supported by VecStore")


def allow_only(body: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    """Raise InvalidRequest naming any field outside `allowed`."""
    unknown = set(body) - set(allowed)
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)} in {what}; expected {sorted(allowed)}")


# ---- payload and vector selection ------------------------------------------------------


@dataclass(frozen=True)
class PayloadSelection:
    """Which payload to return: none, all, only `include` paths, or all but `exclude` paths."""

    wanted: bool
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def apply(self, payload: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The payload as this selection returns it (None when not wanted)."""
        if not self.wanted or payload is None:
            return None
        if self.include is not None:
            selected: dict[str, Any] = {}
            for path in self.include:
                _merge(selected, _project(payload, path.split(".")))
            return selected
        trimmed: dict[str, Any] = dict(payload)
        for path in self.exclude or ():
            trimmed = _without(trimmed, path.split("."))
        return trimmed


def _project(value: Any, parts: list[str]) -> Any:
    """The part of `value` at a dotted path, keeping the objects around it (arrays mapped)."""
    if not parts:
        return value
    if isinstance(value, dict):
        if parts[0] not in value:
            return {}
        return {parts[0]: _project(value[parts[0]], parts[1:])}
    if isinstance(value, list):
        return [_project(item, parts) for item in value if isinstance(item, dict)]
    return {}


def _merge(into: dict[str, Any], extra: Any) -> None:
    if not isinstance(extra, dict):
        return
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _without(value: Any, parts: list[str]) -> Any:
    """`value` less the dotted path (arrays mapped). Copies only the objects and arrays on
    the path, never the whole payload: no deepcopy, whose recursion a deep payload broke."""
    if isinstance(value, list):
        return [_without(item, parts) for item in value]
    if isinstance(value, dict) and parts[0] in value:
        if len(parts) == 1:
            return {key: item for key, item in value.items() if key != parts[0]}
        return {**value, parts[0]: _without(value[parts[0]], parts[1:])}
    return value


def payload_selection(raw: object, default: bool) -> PayloadSelection:
    """Qdrant's with_payload: true/false, a list of keys, or {"include"|"exclude": [keys]}."""
    if raw is None:
        return PayloadSelection(default)
    if isinstance(raw, bool):
        return PayloadSelection(raw)
    if isinstance(raw, list):
        return PayloadSelection(True, include=_keys(raw, "with_payload"))
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, keys),) = raw.items()
        if kind == "include":
            return PayloadSelection(True, include=_keys(keys, "with_payload.include"))
        if kind == "exclude":
            return PayloadSelection(True, exclude=_keys(keys, "with_payload.exclude"))
    raise InvalidRequest(
        'with_payload must be true, false, a list of keys, {"include": [keys]} or {"exclude": [keys]}'
    )


def _keys(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(key, str) and key for key in raw):
        raise InvalidRequest(f"{where} must be a list of payload keys")
    return tuple(payload_key(key, where) for key in raw)


VectorWanted = bool | list[str]


def vector_wanted(raw: object) -> VectorWanted:
    """Qdrant's with_vector (with_vectors): true, false or a list of vector names (a
    collection of named vectors; the shards check the names)."""
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, list) and all(isinstance(name, str) for name in raw):
        return list(raw) if raw else False
    raise InvalidRequest("with_vector must be true, false or a list of vector names")


# ---- points ----------------------------------------------------------------------------


FLOAT32_MAX = 3.4e38
"""Larger magnitudes are not float32 numbers."""


def as_float(number: float) -> float:
    """`number` as a float; integers beyond float range become infinity instead of raising."""
    try:
        return float(number)
    except OverflowError:
        return math.inf


def is_sparse(raw: Mapping[str, Any]) -> bool:
    """Whether an object is a sparse vector ({"indices": [...], "values": [...]})."""
    return set(raw) == {"indices", "values"}


def dense_vector(raw: object, where: str) -> list[float]:
    """One dense vector, or an error naming the unsupported vector kind."""
    if isinstance(raw, dict):
        if "indices" in raw or "values" in raw:
            raise InvalidVector(f"{where}: a sparse vector must be named (a collection's sparse_vectors)")
        if "model" in raw:
            raise NotImplementedParameter(
                f"{where}: server-side inference (documents, images) into one unnamed dense vector is "
                "not supported; BM25 documents go to a named sparse vector"
            )
        raise InvalidVector(f"{where}: expected a list of numbers, got an object")
    if not isinstance(raw, list) or not raw:
        raise InvalidVector(f"{where} must be a non-empty list of numbers")
    if all(type(item) is float for item in raw):  # the usual case, checked in one pass of numpy
        values = np.array(raw, dtype=np.float64)
        if np.isfinite(values).all() and np.abs(values).max() <= FLOAT32_MAX:
            return raw
    if any(isinstance(item, list) for item in raw):
        raise InvalidVector(
            f"{where}: a multivector (a list of vectors) needs a vector with multivector_config"
        )
    vector: list[float] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise InvalidVector(f"{where} must contain only numbers, found {item!r}")
        value = as_float(item)
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise InvalidVector(f"{where} must contain finite float32 numbers, found {item!r}")
        vector.append(value)
    return vector


NamedVector = list[float] | list[list[float]] | dict[str, Any]
"""A named vector as given: dense (numbers) or sparse ({"indices", "values"}, checked when
the command is built)."""


def point_vectors(raw: object, where: str) -> list[float] | dict[str, NamedVector]:
    """A point's vector: one list of numbers, or named vectors (name -> dense or sparse)."""
    if isinstance(raw, dict) and not is_sparse(raw) and not isinstance(raw.get("model"), str):
        named: dict[str, NamedVector] = {}
        for name, vector in raw.items():
            if not isinstance(name, str):
                raise InvalidRequest(f"{where}: vector names must be strings")
            if isinstance(vector, dict) and is_sparse(vector):
                named[name] = vector
            elif isinstance(vector, list) and vector and isinstance(vector[0], list):  # multivector
                named[name] = [
                    dense_vector(row, f"{where}, vector {name!r}[{n}]") for n, row in enumerate(vector)
                ]
            elif is_document(vector):
                named[name] = sparse_of(vector, f"{where}, vector {name!r}", query=False)
            else:
                named[name] = dense_vector(vector, f"{where}, vector {name!r}")
        return named
    if isinstance(raw, list) and raw and isinstance(raw[0], list):  # the unnamed vector, a multivector
        return {DEFAULT_VECTOR: [dense_vector(row, f"{where}[{n}]") for n, row in enumerate(raw)]}
    return dense_vector(raw, where)


@dataclass(frozen=True)
class PointBatch:
    """Points to upsert, one entry each, ids unique (a later duplicate wins, as in Qdrant)."""

    ids: list[PointId]
    vectors: list[list[float] | dict[str, NamedVector]]
    payloads: list[dict[str, Any] | None]

    @property
    def named(self) -> bool:
        """Whether the points give named vectors (objects, name -> vector)."""
        return any(isinstance(vector, dict) for vector in self.vectors)


def upsert_batch(body: Mapping[str, Any]) -> PointBatch:
    """The points of Qdrant's `{"batch": {...}}` or `{"points": [...]}` upsert body."""
    fields = present(body)
    refuse(fields, ("shard_key", "update_filter", "update_mode"))
    if ("batch" in fields) == ("points" in fields):
        raise InvalidRequest(
            'upsert needs exactly one of "points": [...] or "batch": {ids, vectors, payloads}'
        )
    allow_only(fields, ("batch", "points"), "the upsert body")
    ids, vectors, payloads = (
        _points_form(fields["points"]) if "points" in fields else _batch_form(fields["batch"])
    )
    last_position = {normalize_point_id(raw_id): position for position, raw_id in enumerate(ids)}
    batch = PointBatch([], [], [])
    for point_id, position in sorted(last_position.items(), key=lambda item: item[1]):
        payload = payloads[position]
        if payload is not None and not isinstance(payload, dict):
            raise InvalidRequest(f"payload of point {ids[position]!r} must be an object or null")
        batch.ids.append(point_id)
        batch.vectors.append(point_vectors(vectors[position], f"vector of point {ids[position]!r}"))
        batch.payloads.append(payload)
    return batch


def _points_form(points: object) -> tuple[list[object], list[object], list[object]]:
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise InvalidRequest("points must be a list of {id, vector, payload} objects")
    for position, point in enumerate(points):
        allow_only(point, ("id", "vector", "payload"), f"points[{position}]")
        if "id" not in point or "vector" not in point:
            raise InvalidRequest(f"points[{position}] needs an 'id' and a 'vector'")
    return [p["id"] for p in points], [p["vector"] for p in points], [p.get("payload") for p in points]


def _batch_form(batch: object) -> tuple[list[object], list[object], list[object]]:
    if not isinstance(batch, dict):
        raise InvalidRequest("batch must be an object with ids, vectors and payloads")
    allow_only(batch, ("ids", "vectors", "payloads"), "batch")
    ids, vectors, payloads = batch.get("ids"), batch.get("vectors"), batch.get("payloads")
    if isinstance(vectors, dict) and isinstance(ids, list):  # named: name -> one vector per id
        columns = vectors
        if not all(isinstance(column, list) and len(column) == len(ids) for column in columns.values()):
            raise InvalidRequest("batch.vectors: each named vector needs one vector per id")
        vectors = [{name: column[p] for name, column in columns.items()} for p in range(len(ids))]
    if not isinstance(ids, list) or not isinstance(vectors, list) or len(ids) != len(vectors):
        raise InvalidRequest("batch needs 'ids' and 'vectors' lists of the same length")
    if payloads is None:
        payloads = [None] * len(ids)
    if not isinstance(payloads, list) or len(payloads) != len(ids):
        raise InvalidRequest("batch.payloads must be a list with one payload (or null) per id")
    return ids, vectors, payloads


def point_ids(raw: object, where: str) -> list[PointId]:
    """A list of point ids, normalised, duplicates dropped (first kept)."""
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where} must be a list of point ids")
    return list(dict.fromkeys(normalize_point_id(value) for value in raw))


def points_selector(body: Mapping[str, Any], what: str) -> Selector:
    """Qdrant's PointsSelector: `{"points": [ids]}` or `{"filter": {...}}`."""
    if ("points" in body) == ("filter" in body):
        raise InvalidRequest(f'{what} needs exactly one of "points": [ids] or "filter": {{...}}')
    if "points" in body:
        return Selector(ids=tuple(point_ids(body["points"], "points")))
    condition = filter_from_qdrant(body["filter"])
    if condition is None:
        raise InvalidRequest(f"{what}: filter must be an object")
    return Selector(filter=condition)


# ---- answers ---------------------------------------------------------------------------


FLOAT32_EPSILON = float(np.finfo(np.float32).eps)


def cosine_vectors(vectors: Sequence[list[float] | None]) -> list[list[float] | None]:
    """Vectors as Qdrant returns them from a Cosine collection: Qdrant normalises a vector when
    it is upserted, so it answers unit vectors in float32. VecStore stores what was sent (the
    native API returns that); this is the Qdrant presentation of it. A vector no longer than
    float32's epsilon (a zero vector) is answered as stored, as qdrant-client's local mode does.
    One numpy pass per page; None (no vector asked for) stays None."""
    answered = list(vectors)
    by_dimension: dict[int, list[int]] = {}
    for position, vector in enumerate(vectors):
        if vector is not None:
            by_dimension.setdefault(len(vector), []).append(position)
    for positions in by_dimension.values():
        matrix = np.array([vectors[position] for position in positions], dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        long_enough = norms > FLOAT32_EPSILON
        scaled = np.where(long_enough, matrix / np.where(long_enough, norms, 1.0), matrix)
        for position, row in zip(positions, scaled.astype(np.float32).tolist(), strict=True):
            answered[position] = row
    return answered


Cosine = bool | frozenset[str]
"""Which vectors Qdrant answers normalised: for one unnamed vector, whether its metric is
cosine; for named vectors, the names of the cosine ones."""


def cosine_of(schema: CollectionSchema) -> Cosine:
    """The `Cosine` of a collection."""
    if schema.named:
        return frozenset(name for name, spec in schema.vectors if spec.metric is Metric.COSINE)
    return schema.metric is Metric.COSINE


def answered_vectors(vectors: Sequence[Any], cosine: Cosine) -> list[Any]:
    """Stored vectors (lists, or named: dicts of lists, or None) as Qdrant answers them."""
    if isinstance(cosine, bool):
        return cosine_vectors(vectors) if cosine else list(vectors)
    answered = [dict(vector) if isinstance(vector, dict) else vector for vector in vectors]
    for name in cosine:
        having = [p for p, vector in enumerate(answered) if isinstance(vector, dict) and name in vector]
        multi = [p for p in having if answered[p][name] and isinstance(answered[p][name][0], list)]
        for position in multi:  # a multivector: each of its vectors normalised
            answered[position][name] = cosine_vectors(answered[position][name])
        single = [p for p in having if p not in set(multi)]
        scaled = cosine_vectors([answered[p][name] for p in single])
        for position, vector in zip(single, scaled, strict=True):
            answered[position][name] = vector
    # a point holding only Qdrant's default vector is answered with it alone, as Qdrant does
    return [v[""] if isinstance(v, dict) and list(v) == [""] else v for v in answered]


def records(
    points: Sequence[Mapping[str, Any]], payload: PayloadSelection, with_vector: VectorWanted, cosine: Cosine
) -> list[dict[str, Any]]:
    """Stored points as Qdrant Records; cosine vectors normalised (cosine_vectors)."""
    vectors = [point.get("vector") if with_vector else None for point in points]
    if with_vector:
        vectors = answered_vectors(vectors, cosine)
    return [
        {"id": point["id"], "payload": payload.apply(point.get("payload")), "vector": vector}
        for point, vector in zip(points, vectors, strict=True)
    ]
