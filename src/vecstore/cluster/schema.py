"""Collection schemas: name, dimension, metric, storage dtype and HNSW parameters.

A schema is validated once when a create command is built and again when it is decoded,
so a shard never holds a collection it cannot index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from vecstore.cluster.errors import InvalidSchema

EnumT = TypeVar("EnumT", bound=StrEnum)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_DIMENSION = 65_536


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


@dataclass(frozen=True)
class CollectionSchema:
    """Everything that defines a collection; identical on every shard and replica."""

    name: str
    dimension: int
    metric: Metric = Metric.COSINE
    dtype: StorageDtype = StorageDtype.F32
    hnsw: HnswConfig = field(default_factory=HnswConfig)

    def validate(self) -> None:
        """Raise InvalidSchema with what was expected if any field is unusable."""
        validate_collection_name(self.name)
        if (
            isinstance(self.dimension, bool)
            or not isinstance(self.dimension, int)
            or not 1 <= self.dimension <= MAX_DIMENSION
        ):
            raise InvalidSchema(f"dimension must be an integer in 1..{MAX_DIMENSION}, got {self.dimension!r}")
        self.hnsw.validate()

    def to_dict(self) -> dict[str, Any]:
        """The JSON/msgpack form."""
        return {
            "name": self.name,
            "dimension": self.dimension,
            "metric": self.metric.value,
            "dtype": self.dtype.value,
            "hnsw": {
                "connectivity": self.hnsw.connectivity,
                "expansion_add": self.hnsw.expansion_add,
                "expansion_search": self.hnsw.expansion_search,
            },
        }

    @classmethod
    def from_dict(cls, data: object) -> CollectionSchema:
        """Parse and validate the JSON/msgpack form, with clear errors."""
        if not isinstance(data, dict):
            raise InvalidSchema(f"collection schema must be an object, got {type(data).__name__}")
        unknown = set(data) - {"name", "dimension", "metric", "dtype", "hnsw"}
        if unknown:
            raise InvalidSchema(f"unknown collection schema fields: {sorted(unknown)}")
        if "name" not in data or "dimension" not in data:
            raise InvalidSchema("collection schema needs 'name' and 'dimension'")
        metric = _parse_enum(Metric, data.get("metric", Metric.COSINE.value), "metric")
        dtype = _parse_enum(StorageDtype, data.get("dtype", StorageDtype.F32.value), "dtype")
        hnsw_data = data.get("hnsw") or {}
        if not isinstance(hnsw_data, dict):
            raise InvalidSchema("hnsw must be an object")
        unknown_hnsw = set(hnsw_data) - {"connectivity", "expansion_add", "expansion_search"}
        if unknown_hnsw:
            raise InvalidSchema(f"unknown hnsw fields: {sorted(unknown_hnsw)}")
        schema = cls(
            name=data["name"],
            dimension=data["dimension"],
            metric=metric,
            dtype=dtype,
            hnsw=HnswConfig(**hnsw_data),
        )
        schema.validate()
        return schema


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
