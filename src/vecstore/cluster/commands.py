"""Write commands: the only things a shard's state machine applies, in log order.

Commands are frozen dataclasses built through validating constructors (`Upsert.build`);
their wire form lives in `vecstore.cluster.codec`. Vectors travel as little-endian
float32 bytes so a command is compact, comparable and never pickled.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from vecstore.cluster.errors import InvalidRequest, InvalidVector, PayloadTooLarge
from vecstore.cluster.filters import Filter
from vecstore.cluster.ids import PointId, normalize_point_id
from vecstore.cluster.nesting import check_depth
from vecstore.cluster.payload_path import InvalidPath, parse_path
from vecstore.cluster.schema import (
    DEFAULT_VECTOR,
    CollectionSchema,
    validate_collection_name,
    validate_vector_name,
)

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAYLOAD_DEPTH = 32
"""Levels of objects/arrays in one point's payload (the payload object is level 1). Refused
at write time (400), so a stored point can never break a later read: Python's recursive
code (deepcopy, repr, our translators) would fail near 1,000 levels. 32 is far beyond what
documents need (Qdrant payload keys rarely nest past 3 or 4) and far below that."""
HELD_PAYLOAD_BYTES = 2**62
"""The size "bound" shards pass to canonical_payload for payloads they already hold
(shard.collection.MAX_STORED): encode, never refuse for depth."""

Payload = dict[str, Any]
FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class CreateCollection:
    """Create a collection; the same schema twice is a no-op, a different one a conflict."""

    schema: CollectionSchema


PAYLOAD_INDEX_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")


@dataclass(frozen=True)
class SetPayloadIndex:
    """Declare (or, with `schema` None, remove) a payload index on `key`: its type and
    parameters, as Qdrant's field_schema. Recorded in the collection and reported in its
    info; VecStore's payload columns serve every filtered key either way."""

    collection: str
    key: str
    schema: dict[str, Any] | None

    @classmethod
    def build(cls, collection: str, key: object, schema: object) -> SetPayloadIndex:
        """Validate a field name and a field schema (a type name or {"type", ...params})."""
        validate_collection_name(collection)
        if not isinstance(key, str) or not key or len(key) > 1_024:
            raise InvalidRequest("field_name must be a non-empty payload key (at most 1,024 characters)")
        try:
            parse_path(key)
        except InvalidPath as err:
            raise InvalidRequest(f"field_name {key!r} is not a payload key: {err}") from None
        if schema is None:
            return cls(collection, key, None)
        given = {"type": schema} if isinstance(schema, str) else schema
        if not isinstance(given, dict) or given.get("type") not in PAYLOAD_INDEX_TYPES:
            raise InvalidRequest(
                f"field_schema must be one of {', '.join(PAYLOAD_INDEX_TYPES)} or an object with one as "
                f"'type' (and its parameters), got {schema!r}"
            )
        validate_payload(given, 16 * 1024)
        return cls(collection, key, dict(given))


AliasAction = tuple[str, str, str]
"""(kind, alias, collection or new alias): ("create", alias, collection), ("delete", alias, ""),
("rename", old alias, new alias)."""


@dataclass(frozen=True)
class UpdateAliases:
    """Change collection aliases, all actions in one apply (a switch is delete + create)."""

    actions: tuple[AliasAction, ...]

    @classmethod
    def build(cls, actions: Sequence[AliasAction]) -> UpdateAliases:
        """Validate action kinds and names (existence is checked when applied)."""
        if not actions:
            raise InvalidRequest("actions must name at least one alias change")
        for kind, alias, other in actions:
            if kind not in ("create", "delete", "rename"):
                raise InvalidRequest(f"unknown alias action {kind!r}")
            validate_collection_name(alias)
            if kind != "delete":
                validate_collection_name(other)
        return cls(tuple(actions))


@dataclass(frozen=True)
class DropCollection:
    """Drop a collection and all its points; dropping a missing one is a no-op."""

    name: str


@dataclass(frozen=True)
class NamedVectors:
    """One named dense vector of some of a command's points: `rows` are positions in the
    command's ids (ascending), `vectors` len(rows) x dimension float32 values."""

    name: str
    rows: tuple[int, ...]
    dimension: int
    vectors: bytes

    @classmethod
    def build(cls, name: str, rows: Sequence[int], vectors: npt.ArrayLike) -> NamedVectors:
        """Validate one named vector's rows (finite, equal lengths)."""
        validate_vector_name(name)
        matrix = as_vector_matrix(vectors, expected_rows=len(rows)) if len(rows) else None
        if matrix is None:
            return cls(name, (), 0, b"")
        return cls(name, tuple(rows), int(matrix.shape[1]), matrix.astype("<f4", copy=False).tobytes())

    def matrix(self) -> FloatMatrix:
        """The vectors as a read-only (len(rows), dimension) float32 array."""
        return np.frombuffer(self.vectors, dtype="<f4").reshape(len(self.rows), self.dimension)


MAX_SPARSE_INDEX = 2**32 - 1
SparseVector = tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]
"""(indices, values): indices unique and ascending, values finite float32."""


def sparse_vector(indices: object, values: object, where: str) -> SparseVector:
    """Validate one sparse vector: as many finite values as indices, indices distinct
    integers in 0..2**32-1; returned sorted by index (as Qdrant stores them)."""
    if not isinstance(indices, (list, tuple, np.ndarray)) or not isinstance(
        values, (list, tuple, np.ndarray)
    ):
        raise InvalidVector(f"{where}: a sparse vector is {{'indices': [integers], 'values': [numbers]}}")
    if len(indices) != len(values):
        raise InvalidVector(f"{where}: {len(indices)} indices but {len(values)} values")
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in indices):
        raise InvalidVector(f"{where}: sparse indices must be integers")
    if any(not 0 <= int(i) <= MAX_SPARSE_INDEX for i in indices):
        raise InvalidVector(f"{where}: sparse indices must be in 0..{MAX_SPARSE_INDEX}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float, np.number)) for v in values):
        raise InvalidVector(f"{where}: sparse values must be numbers")
    index_array = np.asarray(indices, dtype=np.uint64).astype(np.uint32)
    value_array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(value_array).all() or (np.abs(value_array) > 3.4e38).any():
        raise InvalidVector(f"{where}: sparse values must be finite float32 numbers")
    if len(np.unique(index_array)) != len(index_array):
        raise InvalidVector(f"{where}: sparse indices must be distinct")
    order = np.argsort(index_array, kind="stable")
    return index_array[order], value_array[order].astype(np.float32)


@dataclass(frozen=True)
class NamedSparse:
    """One named sparse vector of some of a command's points: `rows` are positions in the
    command's ids (ascending); vector r is indices/values[offsets[r]:offsets[r + 1]]
    (uint32 and float32, little-endian), each sorted by index without repeats."""

    name: str
    rows: tuple[int, ...]
    offsets: tuple[int, ...]
    indices: bytes
    values: bytes

    @classmethod
    def build(cls, name: str, rows: Sequence[int], vectors: Sequence[object]) -> NamedSparse:
        """Validate the sparse vectors ({"indices", "values"} objects or SparseVector pairs)."""
        validate_vector_name(name)
        if len(rows) != len(vectors):
            raise InvalidRequest(f"vector {name!r}: {len(rows)} rows but {len(vectors)} vectors")
        checked = []
        for row, raw in zip(rows, vectors, strict=True):
            where = f"sparse vector {name!r} of point {row}"
            if isinstance(raw, dict):
                if set(raw) != {"indices", "values"}:
                    raise InvalidVector(f"{where}: expected exactly 'indices' and 'values'")
                checked.append(sparse_vector(raw["indices"], raw["values"], where))
            elif isinstance(raw, tuple) and len(raw) == 2:
                checked.append(sparse_vector(raw[0], raw[1], where))
            else:
                raise InvalidVector(f"{where}: a sparse vector is {{'indices': [...], 'values': [...]}}")
        offsets = [0]
        for indices, _ in checked:
            offsets.append(offsets[-1] + len(indices))
        return cls(
            name,
            tuple(rows),
            tuple(offsets),
            b"".join(i.astype("<u4").tobytes() for i, _ in checked),
            b"".join(v.astype("<f4").tobytes() for _, v in checked),
        )

    def vectors(self) -> list[SparseVector]:
        """The sparse vectors, one per row (read-only views)."""
        indices = np.frombuffer(self.indices, dtype="<u4")
        values = np.frombuffer(self.values, dtype="<f4")
        return [(indices[start:stop], values[start:stop]) for start, stop in itertools.pairwise(self.offsets)]

    def check(self, points: int) -> None:
        """Raise InvalidRequest unless rows, offsets and bytes agree (decoded commands)."""
        rows, offsets = self.rows, self.offsets
        if any(not 0 <= r < points for r in rows) or any(a >= b for a, b in itertools.pairwise(rows)):
            raise InvalidRequest(f"sparse vector {self.name!r}: rows must be ascending positions")
        if (
            len(offsets) != len(rows) + 1
            or offsets[0] != 0
            or any(a > b for a, b in itertools.pairwise(offsets))
        ):
            raise InvalidRequest(f"sparse vector {self.name!r}: offsets do not match its rows")
        if len(self.indices) != 4 * offsets[-1] or len(self.values) != 4 * offsets[-1]:
            raise InvalidRequest(f"sparse vector {self.name!r}: offsets do not match its bytes")
        for position, (indices, values) in enumerate(self.vectors()):
            if len(indices) and (np.diff(indices.astype(np.int64)) <= 0).any():
                raise InvalidRequest(f"sparse vector {self.name!r}, row {position}: indices not ascending")
            if not np.isfinite(values).all():
                raise InvalidRequest(f"sparse vector {self.name!r}, row {position}: values not finite")


@dataclass(frozen=True)
class NamedMulti:
    """One named multivector of some of a command's points: `rows` are positions in the
    command's ids (ascending); point r has counts[r] vectors of `dimension` float32 values,
    stored one after another in `vectors`."""

    name: str
    rows: tuple[int, ...]
    counts: tuple[int, ...]
    dimension: int
    vectors: bytes

    @classmethod
    def build(cls, name: str, rows: Sequence[int], matrices: Sequence[object]) -> NamedMulti:
        """Validate the matrices (lists of equal-length finite vectors, at least one each)."""
        validate_vector_name(name)
        if len(rows) != len(matrices):
            raise InvalidRequest(f"vector {name!r}: {len(rows)} rows but {len(matrices)} multivectors")
        checked = []
        for row, raw in zip(rows, matrices, strict=True):
            if not isinstance(raw, (list, tuple, np.ndarray)) or not len(raw):
                raise InvalidVector(
                    f"multivector {name!r} of point {row} must be a non-empty list of vectors"
                )
            matrix = as_vector_matrix(raw)
            if len(matrix) > MAX_MULTIVECTOR_ROWS:
                raise InvalidVector(
                    f"multivector {name!r} of point {row} has {len(matrix)} vectors; "
                    f"at most {MAX_MULTIVECTOR_ROWS}"
                )
            checked.append(matrix)
        dimensions = {int(m.shape[1]) for m in checked}
        if len(dimensions) > 1:
            raise InvalidVector(f"multivector {name!r}: its vectors must all have one dimension")
        dimension = dimensions.pop() if dimensions else 0
        return cls(
            name,
            tuple(rows),
            tuple(len(m) for m in checked),
            dimension,
            b"".join(m.astype("<f4", copy=False).tobytes() for m in checked),
        )

    def matrices(self) -> list[FloatMatrix]:
        """One read-only matrix per row."""
        flat = np.frombuffer(self.vectors, dtype="<f4")
        found, start = [], 0
        for count in self.counts:
            stop = start + count * self.dimension
            found.append(flat[start:stop].reshape(count, self.dimension))
            start = stop
        return found

    def check(self, points: int) -> None:
        """Raise InvalidRequest unless rows, counts and bytes agree (decoded commands)."""
        rows = self.rows
        if any(not 0 <= r < points for r in rows) or any(a >= b for a, b in itertools.pairwise(rows)):
            raise InvalidRequest(f"multivector {self.name!r}: rows must be ascending positions")
        if len(self.counts) != len(rows) or any(c < 1 for c in self.counts) or self.dimension < 0:
            raise InvalidRequest(f"multivector {self.name!r}: counts do not match its rows")
        if len(self.vectors) != 4 * sum(self.counts) * self.dimension:
            raise InvalidRequest(f"multivector {self.name!r}: counts do not match its bytes")
        if not np.isfinite(np.frombuffer(self.vectors, dtype="<f4")).all():
            raise InvalidRequest(f"multivector {self.name!r}: values not finite")


MAX_MULTIVECTOR_ROWS = 1_024
"""Vectors in one point's multivector (ColBERT documents have a few hundred)."""


@dataclass(frozen=True)
class Upsert:
    """Insert or replace points. `vectors` holds len(ids) x dimension float32 values; in a
    collection of named vectors `dimension` is 0, `vectors` empty, and `named` holds each
    named vector of the points that have it (a point lacking one has none afterwards)."""

    collection: str
    ids: tuple[PointId, ...]
    dimension: int
    vectors: bytes
    payloads: tuple[Payload, ...]
    named: tuple[NamedVectors, ...] = ()
    sparse: tuple[NamedSparse, ...] = ()
    multi: tuple[NamedMulti, ...] = ()

    @classmethod
    def build_named(
        cls,
        collection: str,
        ids: Sequence[object],
        named: Mapping[str, tuple[Sequence[int], Any]],
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> Upsert:
        """Points of a collection of named vectors: `named` maps a vector name to (positions
        in `ids` of the points that have it, their vectors): dense vectors are lists of
        numbers, sparse ones {"indices", "values"} objects."""
        rows = np.zeros((len(ids), 1))
        base = cls.build(collection, ids, rows, payloads, max_payload_bytes=max_payload_bytes)
        dense, sparse, multi = split_named(named)
        check_named_rows([*dense, *sparse, *multi], len(base.ids))
        return cls(collection, base.ids, 0, b"", base.payloads, dense, sparse, multi)

    @classmethod
    def build(
        cls,
        collection: str,
        ids: Sequence[object],
        vectors: npt.ArrayLike,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> Upsert:
        """Validate and normalise user input into a command."""
        validate_collection_name(collection)
        normalized = tuple(normalize_point_id(i) for i in ids)
        matrix = as_vector_matrix(vectors, expected_rows=len(normalized))
        if len(set(normalized)) != len(normalized):
            raise InvalidRequest("an upsert must not name the same point id twice")
        payload_list = list(payloads) if payloads is not None else [None] * len(normalized)
        if len(payload_list) != len(normalized):
            raise InvalidRequest(
                f"got {len(payload_list)} payloads for {len(normalized)} points; expected one each"
            )
        checked = tuple(validate_payload(p or {}, max_payload_bytes) for p in payload_list)
        return cls(
            collection,
            normalized,
            int(matrix.shape[1]),
            matrix.astype("<f4", copy=False).tobytes(),
            checked,
        )

    def matrix(self) -> FloatMatrix:
        """The vectors as a read-only (n, dimension) float32 array."""
        flat = np.frombuffer(self.vectors, dtype="<f4")
        return flat.reshape(len(self.ids), self.dimension)


NamedColumns = dict[str, tuple[list[int], list[Any]]]


def with_default_vector(vectors: Sequence[object]) -> list[object]:
    """Points of a collection that keeps Qdrant's default dense vector (named ""): a point
    given as one list of numbers means that vector."""
    return [
        {DEFAULT_VECTOR: vector} if isinstance(vector, (list, np.ndarray)) else vector for vector in vectors
    ]


def named_columns(vectors: Sequence[object]) -> NamedColumns:
    """Per vector name: the positions of the points that have it and their vectors (every
    point must give its vectors by name: a collection of named vectors)."""
    columns: NamedColumns = {}
    for position, vector in enumerate(vectors):
        if not isinstance(vector, dict):
            raise InvalidVector(
                f"Wrong input: Not existing vector name error: (point {position} gives one unnamed "
                "vector; this collection has named vectors: give them as an object, vector name -> vector)"
            )
        for name, values in vector.items():
            rows, found = columns.setdefault(name, ([], []))
            rows.append(position)
            found.append(values)
    return columns


def split_named(
    named: Mapping[str, tuple[Sequence[int], Any]],
) -> tuple[tuple[NamedVectors, ...], tuple[NamedSparse, ...], tuple[NamedMulti, ...]]:
    """Named vectors (name -> (rows, vectors)) split into dense, sparse and multivectors, by
    what the vectors are ({"indices", "values"} objects are sparse, lists of lists multi)."""
    dense: list[NamedVectors] = []
    sparse: list[NamedSparse] = []
    multi: list[NamedMulti] = []
    for name, (rows, vectors) in sorted(named.items()):
        if isinstance(vectors, np.ndarray):
            dense.append(NamedVectors.build(name, rows, vectors))
            continue
        given = list(vectors)
        kinds = {_kind_of(v) for v in given}
        if kinds == {"sparse"}:
            sparse.append(NamedSparse.build(name, rows, given))
        elif kinds == {"multi"}:
            multi.append(NamedMulti.build(name, rows, given))
        elif kinds <= {"dense"}:
            dense.append(NamedVectors.build(name, rows, given))
        else:
            raise InvalidVector(
                f"vector {name!r} is given in different kinds (dense, sparse, multi) across points"
            )
    return tuple(dense), tuple(sparse), tuple(multi)


def _kind_of(vector: object) -> str:
    if isinstance(vector, dict):
        return "sparse"
    if isinstance(vector, (list, tuple)) and vector and isinstance(vector[0], (list, tuple, np.ndarray)):
        return "multi"
    if isinstance(vector, np.ndarray) and vector.ndim == 2:
        return "multi"
    return "dense"


def check_named_rows(parts: Sequence[NamedVectors | NamedSparse | NamedMulti], points: int) -> None:
    """Raise InvalidRequest unless each named vector's rows are distinct, ascending positions
    among `points`, each vector named once."""
    names = [part.name for part in parts]
    if len(set(names)) != len(names):
        raise InvalidRequest("a vector name is given twice")
    for part in parts:
        if isinstance(part, (NamedSparse, NamedMulti)):
            part.check(points)
            continue
        rows = part.rows
        if any(not 0 <= r < points for r in rows) or any(a >= b for a, b in itertools.pairwise(rows)):
            raise InvalidRequest(
                f"vector {part.name!r}: rows must be ascending positions among {points} points"
            )
        if len(part.vectors) != len(rows) * part.dimension * 4:
            raise InvalidRequest(f"vector {part.name!r}: {len(rows)} rows do not match the vector bytes")


@dataclass(frozen=True)
class UpdateVectors:
    """Set some named vectors of existing points, keeping their other vectors and payloads
    (every id must exist)."""

    collection: str
    ids: tuple[PointId, ...]
    named: tuple[NamedVectors, ...]
    sparse: tuple[NamedSparse, ...] = ()
    multi: tuple[NamedMulti, ...] = ()

    @property
    def default_only(self) -> bool:
        """Whether it sets only the unnamed dense vector (a plain list in Qdrant's
        `PUT .../points/vectors`): the one update a collection of one unnamed vector takes."""
        return not self.sparse and not self.multi and [part.name for part in self.named] == [DEFAULT_VECTOR]


@dataclass(frozen=True)
class Selector:
    """Which points a command touches: explicit ids or a filter, never both."""

    ids: tuple[PointId, ...] | None = None
    filter: Filter | None = None

    @classmethod
    def of_ids(cls, ids: Iterable[object]) -> Selector:
        """Select points by id (normalised)."""
        return cls(ids=tuple(normalize_point_id(i) for i in ids))

    @classmethod
    def of_filter(cls, selection: Filter) -> Selector:
        """Select every point matching a filter."""
        return cls(filter=selection)

    def __post_init__(self) -> None:
        if (self.ids is None) == (self.filter is None):
            raise InvalidRequest("select points either by ids or by filter, exactly one of them")


@dataclass(frozen=True)
class DeletePoints:
    """Delete the selected points; missing ids are ignored."""

    collection: str
    selector: Selector


@dataclass(frozen=True)
class SetPayload:
    """Merge `payload` into the selected points' payloads (top-level keys replaced)."""

    collection: str
    selector: Selector
    payload: Payload


@dataclass(frozen=True)
class OverwritePayload:
    """Replace the selected points' payloads with `payload`."""

    collection: str
    selector: Selector
    payload: Payload


@dataclass(frozen=True)
class DeletePayloadKeys:
    """Remove top-level `keys` from the selected points' payloads."""

    collection: str
    selector: Selector
    keys: tuple[str, ...]


@dataclass(frozen=True)
class DeleteVectors:
    """Remove named vectors from the selected points (the points and their other vectors stay)."""

    collection: str
    selector: Selector
    names: tuple[str, ...]


PointCommand = (
    Upsert | DeletePoints | SetPayload | OverwritePayload | DeletePayloadKeys | UpdateVectors | DeleteVectors
)


@dataclass(frozen=True)
class IngestRecord:
    """One Kafka record, decoded: its offset and the point command it carries."""

    offset: int
    command: PointCommand


@dataclass(frozen=True)
class PartitionBatch:
    """The records of one topic-partition in a batch, in offset order."""

    topic: str
    partition: int
    records: tuple[IngestRecord, ...]


@dataclass(frozen=True)
class IngestBatch:
    """Records from Kafka, fenced by offset: a shard applies only offsets above its high mark."""

    partitions: tuple[PartitionBatch, ...]


@dataclass(frozen=True)
class InstallTopology:
    """Make `topology` this shard's current one (if not older than what it has): from now on
    it applies writes only for points it owns under it, and it deletes the points it no
    longer owns in the same apply. Clears any migration prepared for an epoch up to it.
    Re-installing the current epoch aborts a prepared migration."""

    shard_id: int
    topology: dict[str, Any]
    inherit: tuple[tuple[int, str, int, int], ...] = ()
    """(origin shard, topic, partition, offset): the Kafka offsets applied by each shard that
    gave this one points, at the cutover (exactly-once ingestion across the move)."""


@dataclass(frozen=True)
class PrepareMigration:
    """Announce the next topology: from now on the shard records which of the points moving
    away under it are written (for the catch-up), and, if it is a target, accepts copies of
    the points moving to it (`MigrateIn`). Installs `current` first if it has no topology."""

    shard_id: int
    current: dict[str, Any]
    pending: dict[str, Any]


@dataclass(frozen=True)
class FenceMoving:
    """Refuse (retriably) writes to the points moving away under the prepared topology of
    epoch `epoch`, until the cutover (`InstallTopology`) or an abort."""

    shard_id: int
    epoch: int


@dataclass(frozen=True)
class MigrateIn:
    """A copy of points moving to this shard under its prepared topology (an upsert, or a
    delete of points that no longer exist at the source); bypasses the ownership check."""

    command: Upsert | DeletePoints


TopologyCommand = InstallTopology | PrepareMigration | FenceMoving | MigrateIn
Command = (
    CreateCollection
    | DropCollection
    | SetPayloadIndex
    | UpdateAliases
    | PointCommand
    | IngestBatch
    | TopologyCommand
)


def as_vector_matrix(vectors: npt.ArrayLike, expected_rows: int | None = None) -> FloatMatrix:
    """Return vectors as a finite 2-D float32 array, or raise InvalidVector."""
    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as err:
        raise InvalidVector(f"vectors must be lists of numbers: {err}") from None
    if matrix.ndim == 1 and expected_rows == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or (expected_rows is not None and matrix.shape[0] != expected_rows):
        raise InvalidVector(
            f"expected {expected_rows if expected_rows is not None else 'n'} vectors of equal "
            f"length, got an array of shape {matrix.shape}"
        )
    if matrix.shape[1] == 0:
        raise InvalidVector("vectors must have at least one dimension")
    if not np.isfinite(matrix).all():
        raise InvalidVector("vectors must be finite: NaN or infinity found")
    return matrix


_CANONICAL_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"), sort_keys=True)


def canonical_payload(payload: object, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """The payload's canonical JSON (sorted keys), or InvalidRequest/PayloadTooLarge.

    Used for the size and depth bounds and for replica digests, so every replica computes
    the same text. Rejects NaN, infinity and values JSON cannot carry. A `max_bytes` of
    HELD_PAYLOAD_BYTES or more re-encodes a payload a shard already holds (its digest): no
    depth bound then, so a point stored before MAX_PAYLOAD_DEPTH existed can still be
    deleted or overwritten.
    """
    if not isinstance(payload, dict):
        raise InvalidRequest(f"payload must be a JSON object, got {type(payload).__name__}")
    if max_bytes < HELD_PAYLOAD_BYTES:
        check_depth(payload, MAX_PAYLOAD_DEPTH, "payload")  # a deeper one would break later reads
    try:
        encoded = _CANONICAL_JSON.encode(payload)
    except RecursionError:
        raise InvalidRequest(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels") from None
    except (TypeError, ValueError) as err:
        raise InvalidRequest(f"payload is not valid JSON (NaN, infinity or odd types): {err}") from None
    if len(encoded) > max_bytes:
        raise PayloadTooLarge(f"payload is {len(encoded)} bytes encoded; the limit is {max_bytes}")
    return encoded


def validate_payload(payload: object, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Payload:
    """Return `payload` if it is a JSON object of at most `max_bytes` encoded that msgpack can
    carry (string keys, 64-bit integers), else raise."""
    canonical_payload(payload, max_bytes)
    assert isinstance(payload, dict)
    try:
        # the codec, segments and snapshots store payloads as msgpack with string keys only
        msgpack.unpackb(msgpack.packb(payload), strict_map_key=True)
    except (OverflowError, ValueError) as err:
        raise InvalidRequest(
            f"payload cannot be stored: object keys must be strings and integers must fit "
            f"in -2**63..2**64-1 ({err})"
        ) from None
    return payload
