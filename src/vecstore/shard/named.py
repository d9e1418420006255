"""Collections of named vectors: one collection of rows plus one space per named vector.

A collection whose schema is `named` is stored on a shard as:

- the collection itself (the *rows*): every point, with its payload, and no vector (its rows
  hold a 1-d zero that nothing indexes); ids, scroll, count, filters and deletes use it;
- one space per named dense vector (`schema.space_name(collection, vector)`, a collection
  of its own to the shard: memtable, segments, HNSW, snapshot): the points that have that
  vector, each with a copy of its payload, so that a filtered search of one vector needs
  nothing but its space.

Every command is applied to the rows and to each space in one apply, under all their write
locks (rows first, then spaces by name: readers take them in the same order), and is
checked in full before anything changes, so replicas stay identical and a refused command
changes nothing. Payload changes are applied to the rows and repeated, by id, in every space.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from vecstore.cluster.commands import (
    DeletePayloadKeys,
    DeletePoints,
    DeleteVectors,
    NamedMulti,
    NamedSparse,
    NamedVectors,
    OverwritePayload,
    PointCommand,
    Selector,
    SetPayload,
    UpdateVectors,
    Upsert,
)
from vecstore.cluster.errors import InvalidRequest, InvalidVector, NotFound
from vecstore.cluster.filters import And, Filter, HasId, HasVector, MinShould, Not, Or
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import SPACE_SEPARATOR, CollectionSchema, Metric, space_name
from vecstore.shard.collection import Collection
from vecstore.shard.memtable import FloatMatrix
from vecstore.shard.records import Record, ScoredPoint

Result = dict[str, Any]
VectorOut = dict[str, Any]
R = TypeVar("R", Record, ScoredPoint)


def spaces_of(collections: dict[str, Collection], schema: CollectionSchema) -> dict[str, Collection]:
    """Vector name -> the shard's space for it, of a collection of named vectors."""
    return {name: collections[space_name(schema.name, name)] for name in schema.dense_spaces()}


def is_space(name: str) -> bool:
    """True for the name of a space (never listed as a collection)."""
    return SPACE_SEPARATOR in name


def directory_name(name: str) -> str:
    """A new data directory name for a collection or space: unique, one path component."""
    return f"{name.replace(SPACE_SEPARATOR, '~')}.{secrets.token_hex(4)}"


@contextlib.contextmanager
def writing(rows: Collection, spaces: dict[str, Collection]) -> Iterator[None]:
    """All write locks of a collection of named vectors, in the readers' order."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(rows.lock.write())
        for name in sorted(spaces):
            stack.enter_context(spaces[name].lock.write())
        yield


def apply(rows: Collection, spaces: dict[str, Collection], command: PointCommand) -> Result:
    """Apply a point command to a collection of named vectors (callers hold no lock)."""
    with writing(rows, spaces):
        if isinstance(command, Upsert):
            return {"status": "ok", "upserted": _upsert(rows, spaces, command)}
        if isinstance(command, UpdateVectors):
            return {"status": "ok", "updated": _update_vectors(rows, spaces, command)}
        chosen = Selector(ids=tuple(point_id for point_id, _ in rows.select(command.selector)))
        if isinstance(command, DeleteVectors):
            return {"status": "ok", "updated": _delete_vectors(rows, spaces, command, chosen)}
        if isinstance(command, DeletePoints):
            deleted = rows.delete(DeletePoints(command.collection, chosen))
            for space in spaces.values():
                space.delete(DeletePoints(space.schema.name, _present(space, chosen)))
            for vectors in rows.sparse.values():
                vectors.delete(list(chosen.ids or ()))
            for matrices in rows.multi.values():
                matrices.delete(list(chosen.ids or ()))
            return {"status": "ok", "deleted": deleted}
        assert isinstance(command, (SetPayload, OverwritePayload, DeletePayloadKeys))
        updated = rows.change_payloads(_with_selector(command, chosen))
        for space in spaces.values():
            space.change_payloads(_with_selector(command, _present(space, chosen), space.schema.name))
        return {"status": "ok", "updated": updated}


def _upsert(rows: Collection, spaces: dict[str, Collection], command: Upsert) -> int:
    if command.dimension or command.vectors:
        raise InvalidVector(
            f"collection {rows.schema.name!r} has named vectors "
            f"({', '.join(sorted(spaces)) or 'none dense'}): give each point's vectors by name"
        )
    parts = _checked_parts(rows.schema, spaces, command.named)
    sparse = _checked_sparse(rows, command.sparse)
    multi = _checked_multi(rows, command.multi)
    count = len(command.ids)
    written = rows.upsert(
        Upsert(command.collection, command.ids, 1, bytes(4 * count), command.payloads)
    )  # checks ids and payloads before anything changes
    for name, vectors in rows.sparse.items():
        given = sparse.get(name)
        having = set(given.rows) if given is not None else set()
        vectors.delete([command.ids[p] for p in range(count) if p not in having])
        if given is not None and given.rows:
            vectors.upsert([command.ids[p] for p in given.rows], given.vectors())
    for name, matrices in rows.multi.items():
        held = multi.get(name)
        having = set(held.rows) if held is not None else set()
        matrices.delete([command.ids[p] for p in range(count) if p not in having])
        if held is not None and held.rows:
            matrices.upsert([command.ids[p] for p in held.rows], held.matrices())
    for name, space in spaces.items():
        part = parts.get(name)
        having = set(part.rows) if part is not None else set()
        lacking = tuple(command.ids[p] for p in range(count) if p not in having)
        space.delete(DeletePoints(space.schema.name, _present(space, Selector(ids=lacking))))
        if part is not None and part.rows:
            space.upsert(_space_upsert(space, command.ids, command.payloads, part))
    return written


def _update_vectors(rows: Collection, spaces: dict[str, Collection], command: UpdateVectors) -> int:
    missing = [point_id for point_id in command.ids if point_id not in rows.id_map]
    if missing:
        raise NotFound(f"Not found: No point with id {missing[0]} found")
    if len(set(command.ids)) != len(command.ids):
        raise InvalidRequest("a vector update must not name the same point id twice")
    parts = _checked_parts(rows.schema, spaces, command.named)
    sparse = _checked_sparse(rows, command.sparse)
    multi = _checked_multi(rows, command.multi)
    payloads = tuple(rows.payload_of(rows.id_map[point_id]) for point_id in command.ids)
    for name, part in parts.items():
        if part.rows:
            spaces[name].upsert(_space_upsert(spaces[name], command.ids, payloads, part))
    for name, given in sparse.items():
        rows.sparse[name].upsert([command.ids[p] for p in given.rows], given.vectors())
    for name, held in multi.items():
        rows.multi[name].upsert([command.ids[p] for p in held.rows], held.matrices())
    return len(command.ids)


def _delete_vectors(
    rows: Collection, spaces: dict[str, Collection], command: DeleteVectors, chosen: Selector
) -> int:
    for name in command.names:
        if name not in spaces and name not in rows.sparse and name not in rows.multi:
            rows.schema.vector(name)  # raises, naming the vectors there are
    for name in dict.fromkeys(command.names):
        if name in rows.sparse:
            rows.sparse[name].delete(list(chosen.ids or ()))
            continue
        if name in rows.multi:
            rows.multi[name].delete(list(chosen.ids or ()))
            continue
        space = spaces[name]
        space.delete(DeletePoints(space.schema.name, _present(space, chosen)))
    return len(chosen.ids or ())


def _checked_parts(
    schema: CollectionSchema, spaces: dict[str, Collection], named: Sequence[NamedVectors]
) -> dict[str, NamedVectors]:
    parts: dict[str, NamedVectors] = {}
    for part in named:
        if part.name not in spaces and schema.vector(part.name).multivector:  # raises if unknown
            raise InvalidVector(f"vector {part.name!r} is a multivector: send a list of vectors")
        expected = spaces[part.name].schema.dimension
        if part.rows and part.dimension != expected:
            raise InvalidVector(
                f"vector {part.name!r} has {part.dimension} dimensions, collection "
                f"{schema.name!r} expects {expected}"
            )
        parts[part.name] = part
    return parts


def _checked_sparse(rows: Collection, given: Sequence[NamedSparse]) -> dict[str, NamedSparse]:
    parts: dict[str, NamedSparse] = {}
    for part in given:
        if part.name not in rows.sparse:
            if part.name in {name for name, _ in rows.schema.vectors}:
                raise InvalidVector(f"vector {part.name!r} is dense: send a list of numbers")
            rows.schema.sparse(part.name)  # raises, naming the vectors there are
        parts[part.name] = part
    return parts


def _checked_multi(rows: Collection, given: Sequence[NamedMulti]) -> dict[str, NamedMulti]:
    parts: dict[str, NamedMulti] = {}
    for part in given:
        if part.name not in rows.multi:
            if part.name in {name for name, _ in rows.schema.vectors}:
                raise InvalidVector(f"vector {part.name!r} is one vector per point: send a list of numbers")
            rows.schema.vector(part.name)  # raises, naming the vectors there are
        expected = rows.multi[part.name].dimension
        if part.rows and part.dimension != expected:
            raise InvalidVector(
                f"multivector {part.name!r} has vectors of {part.dimension} dimensions, collection "
                f"{rows.schema.name!r} expects {expected}"
            )
        parts[part.name] = part
    return parts


def update_default(rows: Collection, command: UpdateVectors) -> int:
    """Set the unnamed vector of existing points of a collection of one unnamed vector,
    keeping their payloads (the caller holds its write lock)."""
    missing = [point_id for point_id in command.ids if point_id not in rows.id_map]
    if missing:
        raise NotFound(f"Not found: No point with id {missing[0]} found")
    if len(set(command.ids)) != len(command.ids):
        raise InvalidRequest("a vector update must not name the same point id twice")
    payloads = tuple(rows.payload_of(rows.id_map[point_id]) for point_id in command.ids)
    part = command.named[0]
    if part.rows and part.dimension != rows.schema.dimension:
        raise InvalidVector(
            f"vector dimension error: expected dim: {rows.schema.dimension}, got {part.dimension}"
        )
    return rows.upsert(_space_upsert(rows, command.ids, payloads, part)) if part.rows else 0


def _space_upsert(
    space: Collection, ids: Sequence[PointId], payloads: Sequence[dict[str, Any]], part: NamedVectors
) -> Upsert:
    return Upsert(
        space.schema.name,
        tuple(ids[p] for p in part.rows),
        part.dimension,
        part.vectors,
        tuple(payloads[p] for p in part.rows),
    )


def _present(space: Collection, chosen: Selector) -> Selector:
    return Selector(ids=tuple(i for i in chosen.ids or () if i in space.id_map))


PayloadCommand = SetPayload | OverwritePayload | DeletePayloadKeys


def _with_selector(
    command: PayloadCommand, selector: Selector, collection: str | None = None
) -> PayloadCommand:
    target = command.collection if collection is None else collection
    if isinstance(command, DeletePayloadKeys):
        return DeletePayloadKeys(target, selector, command.keys)
    return type(command)(target, selector, command.payload)


# ---- reads -----------------------------------------------------------------------------


def vector_names(schema: CollectionSchema, wanted: object) -> list[str]:
    """The vectors a read returns: `true` all, `false` none, or a list of names."""
    if wanted is None or wanted is False:
        return []
    names = [name for name, _ in schema.vectors] + [name for name, _ in schema.sparse_vectors]
    if wanted is True:
        return names
    if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
        raise InvalidRequest("'with_vector' must be true, false or a list of vector names")
    for name in wanted:
        if name not in names:
            schema.vector(name)  # raises, naming the vectors there are
    return list(dict.fromkeys(wanted))


def attach_vectors(
    rows: Collection,
    spaces: dict[str, Collection],
    found: list[R],
    names: Sequence[str],
    normalize: bool = False,
) -> list[R]:
    """`found` with each point's named vectors (a point lacking one has no entry for it;
    sparse ones as {"indices", "values"}). `normalize`: cosine vectors as unit vectors (how
    Qdrant stores them)."""
    if not names or not found:
        return found
    vectors: list[VectorOut] = [{} for _ in found]
    for name in names:
        if name in rows.multi:
            with rows.reading():
                for position, point in enumerate(found):
                    matrix = rows.multi[name].get(point.id)
                    if matrix is not None:
                        vectors[position][name] = np.asarray(matrix).tolist()
            continue
        if name in rows.sparse:
            with rows.reading():
                for position, point in enumerate(found):
                    stored = rows.sparse[name].get(point.id)
                    if stored is not None:
                        vectors[position][name] = {
                            "indices": np.asarray(stored[0]).tolist(),
                            "values": np.asarray(stored[1]).tolist(),
                        }
            continue
        space = spaces[name]
        with space.reading():
            present = [(position, space.id_map.get(point.id)) for position, point in enumerate(found)]
            present = [(position, key) for position, key in present if key is not None]
            if not present:
                continue
            keys = np.array([key for _, key in present], dtype=np.uint64)
            matrix = space.vectors_of(keys)
        if normalize and space.schema.metric is Metric.COSINE:
            matrix = unit_rows(matrix)
        for (position, _), row in zip(present, matrix.tolist(), strict=True):
            vectors[position][name] = row
    return [_with_vector(point, vector) for point, vector in zip(found, vectors, strict=True)]


def unit_rows(matrix: FloatMatrix) -> FloatMatrix:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    scaled: FloatMatrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return scaled


def _with_vector(point: R, vector: VectorOut) -> R:
    return dataclasses.replace(point, vector=vector)


def resolve(collections: dict[str, Collection], rows: Collection, condition: Filter | None) -> Filter | None:
    """`condition` with every `has_vector` replaced by the ids of the points that have that
    vector (callers hold no lock; each space is read under its own)."""
    if condition is None or not _mentions_vectors(condition):
        return condition
    return _resolved(collections, rows, condition)


def _mentions_vectors(node: Filter) -> bool:
    if isinstance(node, HasVector):
        return True
    if isinstance(node, (And, Or)):
        return any(_mentions_vectors(child) for child in node.children)
    if isinstance(node, MinShould):
        return any(_mentions_vectors(child) for child in node.children)
    if isinstance(node, Not):
        return _mentions_vectors(node.child)
    return False


def _resolved(collections: dict[str, Collection], rows: Collection, node: Filter) -> Filter:
    if isinstance(node, HasVector):
        return HasId(frozenset(_having(collections, rows, node.name)))
    if isinstance(node, And):
        return And(tuple(_resolved(collections, rows, child) for child in node.children))
    if isinstance(node, Or):
        return Or(tuple(_resolved(collections, rows, child) for child in node.children))
    if isinstance(node, MinShould):
        return MinShould(
            tuple(_resolved(collections, rows, child) for child in node.children), node.min_count
        )
    if isinstance(node, Not):
        return Not(_resolved(collections, rows, node.child))
    return node


def _having(collections: dict[str, Collection], rows: Collection, name: str) -> list[PointId]:
    schema = rows.schema
    if not schema.named:
        if name:
            schema.vector(name)  # raises: one unnamed vector
        with rows.reading():
            return list(rows.id_map)
    if name in rows.sparse:
        with rows.reading():
            return rows.sparse[name].ids()
    if name in rows.multi:
        with rows.reading():
            return rows.multi[name].ids()
    schema.vector(name)  # raises, naming the vectors there are
    space = collections[space_name(schema.name, name)]
    with space.reading():
        return list(space.id_map)


def ids_of(rows: Collection, keys: np.ndarray) -> list[PointId]:
    """The point ids of live keys of a collection (callers hold its lock)."""
    return [
        container.ext_id(int(key))
        for container, positions in rows.group_by_container(keys)
        for key in keys[positions].tolist()
    ]
