"""Collection schemas: name, dimension, metric, storage dtype and HNSW parameters.

A schema is validated once when a create command is built and again when it is decoded,
so a shard never holds a collection it cannot index.

A collection holds either one unnamed vector per point (`dimension`, `metric`, ...) or
named vectors (`vectors`: name -> `VectorSpec`, each with its own size, metric, dtype and
HNSW settings, and `sparse_vectors`: name -> `SparseSpec`); a point of a named collection
may lack any of them. A shard keeps each named dense vector in a space of its own
(`space_name`), see `vecstore.shard.named`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from vecstore.cluster.errors import InvalidSchema

EnumT = TypeVar("EnumT", bound=StrEnum)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VECTOR_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")
DEFAULT_VECTOR = ""
"""Qdrant's name for the default dense vector: a collection of one unnamed dense vector and
named sparse vectors keeps the dense one under it (`vectors: {"": ...}`)."""
MAX_DIMENSION = 65_536
MAX_NAMED_VECTORS = 16
SPACE_SEPARATOR = "/"
"""Joins a collection's name and a vector's name into the name of the shard's space for it
(never a valid collection name, so no user collection can collide with one)."""


class Metric(StrEnum):
    """How vectors are compared. Scores: cosine and dot are similarities, l2 a distance."""

    COSINE = "cosine"
    L2 = "l2"
    DOT = "dot"

    @property
    def higher_is_better(self) -> bool:
        """True when a larger score means a closer match."""
        return self is not Metric.L2


class StorageDtype(StrEnum):
    """How the HNSW index stores vectors. Full-precision copies are always kept for re-scoring."""

    F32 = "f32"
    F16 = "f16"
    I8 = "i8"


@dataclass(frozen=True)
class HnswConfig:
    """HNSW graph parameters (usearch names)."""

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64

    def validate(self) -> None:
        """Raise InvalidSchema if a parameter is outside its useful range."""
        for name, low, high in (
            ("connectivity", 2, 256),
            ("expansion_add", 1, 10_000),
            ("expansion_search", 1, 10_000),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidSchema(f"hnsw {name} must be an integer in {low}..{high}, got {value!r}")


class SparseModifier(StrEnum):
    """How sparse scores weigh each dimension: as stored, or by inverse document frequency."""

    NONE = "none"
    IDF = "idf"


@dataclass(frozen=True)
class VectorSpec:
    """One named dense vector of a collection."""

    dimension: int
    metric: Metric = Metric.COSINE
    dtype: StorageDtype = StorageDtype.F32
    hnsw: HnswConfig = field(default_factory=HnswConfig)
    multivector: bool = False
    """A matrix per point (one row per token), scored by MaxSim (`vecstore.shard.multi`)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON/msgpack form."""
        form = {
            "dimension": self.dimension,
            "metric": self.metric.value,
            "dtype": self.dtype.value,
            "hnsw": _hnsw_dict(self.hnsw),
        }
        if self.multivector:
            form["multivector"] = "max_sim"
        return form

    @classmethod
    def from_dict(cls, data: object, name: str) -> VectorSpec:
        """Parse one entry of `vectors`."""
        if not isinstance(data, dict):
            raise InvalidSchema(f"vector {name!r} must be an object, got {type(data).__name__}")
        unknown = set(data) - {"dimension", "metric", "dtype", "hnsw", "multivector"}
        if unknown:
            raise InvalidSchema(f"unknown fields of vector {name!r}: {sorted(unknown)}")
        if data.get("multivector", "max_sim") != "max_sim":
            raise InvalidSchema(f"vector {name!r}: multivector must be 'max_sim' (the only comparator)")
        if "dimension" not in data:
            raise InvalidSchema(f"vector {name!r} needs a 'dimension'")
        spec = cls(
            dimension=data["dimension"],
            metric=_parse_enum(Metric, data.get("metric", Metric.COSINE.value), "metric"),
            dtype=_parse_enum(StorageDtype, data.get("dtype", StorageDtype.F32.value), "dtype"),
            hnsw=_parse_hnsw(data.get("hnsw")),
            multivector="multivector" in data,
        )
        _check_dimension(spec.dimension, f"vector {name!r} dimension")
        spec.hnsw.validate()
        return spec


@dataclass(frozen=True)
class SparseSpec:
    """One named sparse vector of a collection."""

    modifier: SparseModifier = SparseModifier.NONE

    def to_dict(self) -> dict[str, Any]:
        """The JSON/msgpack form."""
        return {"modifier": self.modifier.value}

    @classmethod
    def from_dict(cls, data: object, name: str) -> SparseSpec:
        """Parse one entry of `sparse_vectors`."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidSchema(f"sparse vector {name!r} must be an object, got {type(data).__name__}")
        unknown = set(data) - {"modifier"}
        if unknown:
            raise InvalidSchema(f"unknown fields of sparse vector {name!r}: {sorted(unknown)}")
        return cls(_parse_enum(SparseModifier, data.get("modifier", "none"), "modifier"))


@dataclass(frozen=True)
class CollectionSchema:
    """Everything that defines a collection; identical on every shard and replica."""

    name: str
    dimension: int
    metric: Metric = Metric.COSINE
    dtype: StorageDtype = StorageDtype.F32
    hnsw: HnswConfig = field(default_factory=HnswConfig)
    named: bool = False
    """Named vectors (`vectors`, `sparse_vectors`); the collection's own rows then carry no
    vector: `dimension` is 1 and nothing indexes them."""
    vectors: tuple[tuple[str, VectorSpec], ...] = ()
    sparse_vectors: tuple[tuple[str, SparseSpec], ...] = ()

    @classmethod
    def with_named(
        cls,
        name: str,
        vectors: dict[str, VectorSpec],
        sparse_vectors: dict[str, SparseSpec] | None = None,
    ) -> CollectionSchema:
        """A collection of named vectors (validated)."""
        schema = cls(
            name,
            1,
            Metric.DOT,
            named=True,
            vectors=tuple(sorted(vectors.items())),
            sparse_vectors=tuple(sorted((sparse_vectors or {}).items())),
        )
        schema.validate()
        return schema

    def validate(self) -> None:
        """Raise InvalidSchema with what was expected if any field is unusable."""
        parent, separator, vector_name = self.name.partition(SPACE_SEPARATOR)
        validate_collection_name(parent)
        if separator:  # a shard's space of one named vector
            validate_vector_name(vector_name)
            if self.named:
                raise InvalidSchema("a space of a named vector has one vector")
        _check_dimension(self.dimension, "dimension")
        self.hnsw.validate()
        if not self.named:
            if self.vectors or self.sparse_vectors:
                raise InvalidSchema("named vectors need a collection of named vectors")
            return
        if self.dimension != 1:
            raise InvalidSchema("a collection of named vectors has no dimension of its own")
        names = [n for n, _ in self.vectors] + [n for n, _ in self.sparse_vectors]
        if len(names) > MAX_NAMED_VECTORS:
            raise InvalidSchema(f"at most {MAX_NAMED_VECTORS} named vectors, got {len(names)}")
        if len(set(names)) != len(names):
            raise InvalidSchema("a vector name is used twice (dense and sparse names share one namespace)")
        for vector_name in names:
            validate_vector_name(vector_name)

    def vector(self, name: str) -> VectorSpec:
        """The named dense vector `name` (InvalidSchema naming the ones that exist if absent)."""
        for vector_name, spec in self.vectors:
            if vector_name == name:
                return spec
        raise InvalidSchema(self._no_vector(name))

    def searched(self, using: str | None) -> VectorSpec:
        """The dense vector a search reads: the collection's one (`using` empty), or its named
        vector `using` (InvalidSchema saying what to name, if that does not fit)."""
        if not self.named:
            if using:
                self.vector(using)  # raises: one unnamed vector
            return VectorSpec(self.dimension, self.metric, self.dtype, self.hnsw)
        if not using:
            if DEFAULT_VECTOR in {n for n, _ in self.vectors}:
                return self.vector(DEFAULT_VECTOR)
            names = ", ".join(repr(n) for n, _ in self.vectors) or "none"
            raise InvalidSchema(
                f"collection {self.name!r} has named vectors ({names}): say which to search with 'using'"
            )
        if using in {n for n, _ in self.sparse_vectors}:
            raise InvalidSchema(
                f"vector {using!r} is sparse: query it with {{'indices': [...], 'values': [...]}}"
            )
        if self.vector(using).multivector:
            raise InvalidSchema(f"vector {using!r} is a multivector: query it with a list of vectors")
        return self.vector(using)

    @property
    def default_vector(self) -> bool:
        """Whether a collection of named vectors has Qdrant's default (unnamed) dense vector."""
        return self.named and DEFAULT_VECTOR in {n for n, _ in self.vectors}

    def dense_spaces(self) -> list[str]:
        """Names of the named dense vectors kept in spaces of their own (not multivectors)."""
        return [name for name, spec in self.vectors if not spec.multivector]

    def multivectors(self) -> list[tuple[str, VectorSpec]]:
        """The named multivectors."""
        return [(name, spec) for name, spec in self.vectors if spec.multivector]

    def sparse(self, name: str) -> SparseSpec:
        """The named sparse vector `name`."""
        for vector_name, spec in self.sparse_vectors:
            if vector_name == name:
                return spec
        raise InvalidSchema(self._no_vector(name))

    def _no_vector(self, name: str) -> str:
        # the prefix is Qdrant's message for it (its clients and tests look for it)
        if not self.named:
            return (
                f"Not existing vector name error: {name} (collection {self.name!r} has one unnamed "
                f"vector; it has no vector named {name!r})"
            )
        dense = ", ".join(repr(n) for n, _ in self.vectors) or "none"
        sparse = ", ".join(repr(n) for n, _ in self.sparse_vectors) or "none"
        return (
            f"Not existing vector name error: {name} (collection {self.name!r} has no vector named "
            f"{name!r}; dense: {dense}; sparse: {sparse})"
        )

    def space_schema(self, vector_name: str) -> CollectionSchema:
        """The schema of the shard's space holding the dense vector `vector_name`."""
        spec = self.vector(vector_name)
        return CollectionSchema(
            space_name(self.name, vector_name), spec.dimension, spec.metric, spec.dtype, spec.hnsw
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON/msgpack form."""
        if self.named:
            return {
                "name": self.name,
                "vectors": {n: spec.to_dict() for n, spec in self.vectors},
                "sparse_vectors": {n: spec.to_dict() for n, spec in self.sparse_vectors},
            }
        return {
            "name": self.name,
            "dimension": self.dimension,
            "metric": self.metric.value,
            "dtype": self.dtype.value,
            "hnsw": _hnsw_dict(self.hnsw),
        }

    @classmethod
    def from_dict(cls, data: object) -> CollectionSchema:
        """Parse and validate the JSON/msgpack form, with clear errors."""
        if not isinstance(data, dict):
            raise InvalidSchema(f"collection schema must be an object, got {type(data).__name__}")
        if "vectors" in data or "sparse_vectors" in data:
            return cls._named_from_dict(data)
        unknown = set(data) - {"name", "dimension", "metric", "dtype", "hnsw"}
        if unknown:
            raise InvalidSchema(f"unknown collection schema fields: {sorted(unknown)}")
        if "name" not in data or "dimension" not in data:
            raise InvalidSchema("collection schema needs 'name' and 'dimension'")
        metric = _parse_enum(Metric, data.get("metric", Metric.COSINE.value), "metric")
        dtype = _parse_enum(StorageDtype, data.get("dtype", StorageDtype.F32.value), "dtype")
        schema = cls(
            name=data["name"],
            dimension=data["dimension"],
            metric=metric,
            dtype=dtype,
            hnsw=_parse_hnsw(data.get("hnsw")),
        )
        schema.validate()
        return schema

    @classmethod
    def _named_from_dict(cls, data: dict[str, Any]) -> CollectionSchema:
        unknown = set(data) - {"name", "vectors", "sparse_vectors"}
        if unknown:
            raise InvalidSchema(
                f"a collection of named vectors takes 'name', 'vectors' and 'sparse_vectors'; "
                f"unknown or misplaced fields: {sorted(unknown)}"
            )
        if "name" not in data:
            raise InvalidSchema("collection schema needs 'name'")
        dense = data.get("vectors") or {}
        sparse = data.get("sparse_vectors") or {}
        if not isinstance(dense, dict) or not isinstance(sparse, dict):
            raise InvalidSchema("'vectors' and 'sparse_vectors' must be objects: vector name -> its settings")
        for vector_name in [*dense, *sparse]:
            validate_vector_name(vector_name)
        return cls.with_named(
            data["name"],
            {n: VectorSpec.from_dict(v, n) for n, v in dense.items()},
            {n: SparseSpec.from_dict(v, n) for n, v in sparse.items()},
        )


def space_name(collection: str, vector_name: str) -> str:
    """The name of the shard's space holding one named dense vector of a collection."""
    return f"{collection}{SPACE_SEPARATOR}{vector_name}"


def validate_vector_name(name: object) -> str:
    """Return `name` if it is a valid vector name, else raise InvalidSchema."""
    if not isinstance(name, str) or not VECTOR_NAME_PATTERN.fullmatch(name):
        raise InvalidSchema(
            f"vector name {name!r} is invalid: up to 64 characters of letters, digits, '_', '-' or '.'"
        )
    return name


def _check_dimension(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSION:
        raise InvalidSchema(f"{what} must be an integer in 1..{MAX_DIMENSION}, got {value!r}")


def _hnsw_dict(hnsw: HnswConfig) -> dict[str, int]:
    return {
        "connectivity": hnsw.connectivity,
        "expansion_add": hnsw.expansion_add,
        "expansion_search": hnsw.expansion_search,
    }


def _parse_hnsw(raw: object) -> HnswConfig:
    hnsw_data = raw or {}
    if not isinstance(hnsw_data, dict):
        raise InvalidSchema("hnsw must be an object")
    unknown_hnsw = set(hnsw_data) - {"connectivity", "expansion_add", "expansion_search"}
    if unknown_hnsw:
        raise InvalidSchema(f"unknown hnsw fields: {sorted(unknown_hnsw)}")
    return HnswConfig(**hnsw_data)


def validate_collection_name(name: object) -> str:
    """Return `name` if it is a valid collection name, else raise InvalidSchema."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidSchema(
            f"collection name {name!r} is invalid: expected 1-128 characters of letters, digits, "
            "'_', '-' or '.', starting with a letter or digit"
        )
    return name


def _parse_enum(enum_type: type[EnumT], value: object, what: str) -> EnumT:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise InvalidSchema(f"{what} {value!r} is not one of: {allowed}") from None
