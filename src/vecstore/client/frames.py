"""Points to and from pandas and polars DataFrames (the `dataframes` extra).

A frame has one row per point: the id column, the vector column (float32 arrays in pandas,
an `Array(Float32, dimension)` column in polars) and one column per top-level payload key.
Missing payload values (None, NaN, NaT) are left out of a point's payload rather than
stored as nulls: pandas fills a key some rows lack with NaN, which JSON cannot carry.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vecstore.client.models import Point, PointId
from vecstore.cluster.errors import InvalidRequest

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

Columns = tuple[list[PointId], npt.NDArray[np.float32], list[dict[str, Any] | None]]
RESERVED = ("id", "vector")


def payload_columns_of(points: Sequence[Point]) -> list[str]:
    """Every top-level payload key, in first-seen order."""
    keys: dict[str, None] = {}
    for point in points:
        keys.update(dict.fromkeys(point.payload or {}))
    return list(keys)


def _column_name(key: str) -> str:
    """A payload key's column: its own name, unless it is `id` or `vector` (`payload.id`)."""
    return f"payload.{key}" if key in RESERVED else key


def _stacked(points: Sequence[Point]) -> npt.NDArray[np.float32] | None:
    vectors = [p.vector for p in points]
    if not vectors or any(v is None for v in vectors):
        return None
    return np.stack(vectors)  # type: ignore[arg-type]


def points_to_pandas(points: Sequence[Point]) -> pd.DataFrame:
    """A pandas DataFrame of points (see the module)."""
    import pandas as pd

    data: dict[str, Any] = {"id": [p.id for p in points]}
    matrix = _stacked(points)
    if matrix is not None:
        data["vector"] = list(matrix)
    for key in payload_columns_of(points):
        data[_column_name(key)] = [(p.payload or {}).get(key) for p in points]
    return pd.DataFrame(data)


def points_to_polars(points: Sequence[Point]) -> pl.DataFrame:
    """A polars DataFrame of points (see the module)."""
    import polars as pl

    columns: list[pl.Series] = [pl.Series("id", [p.id for p in points])]
    matrix = _stacked(points)
    if matrix is not None:
        columns.append(pl.Series("vector", matrix))
    for key in payload_columns_of(points):
        values = [(p.payload or {}).get(key) for p in points]
        try:
            columns.append(pl.Series(_column_name(key), values))
        except (TypeError, ValueError, pl.exceptions.PolarsError):  # mixed types in one key
            columns.append(pl.Series(_column_name(key), values, dtype=pl.Object))
    return pl.DataFrame(columns)


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")


def plain(value: object) -> object:
    """A cell as a JSON value: numpy scalars and arrays as numbers and lists, timestamps as
    RFC 3339 text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def payloads_of(records: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """One payload per row, missing values left out."""
    return [{k: plain(v) for k, v in row.items() if not _missing(v)} for row in records]


def _check_columns(names: Sequence[str], id_column: str, vector_column: str) -> None:
    for wanted in (id_column, vector_column):
        if wanted not in names:
            raise InvalidRequest(f"the frame has no column {wanted!r} (it has {list(names)})")


def _payload_names(
    names: Sequence[str], id_column: str, vector_column: str, chosen: Sequence[str] | None
) -> list[str]:
    if chosen is None:
        return [n for n in names if n not in (id_column, vector_column)]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise InvalidRequest(f"payload columns not in the frame: {unknown}")
    return list(chosen)


def _matrix(rows: Any, where: str) -> npt.NDArray[np.float32]:
    try:
        return np.ascontiguousarray(np.stack([np.asarray(r, dtype=np.float32) for r in rows]))
    except (TypeError, ValueError) as err:
        raise InvalidRequest(f"{where}: every row needs a vector of the same length ({err})") from None


def pandas_columns(
    frame: pd.DataFrame, id_column: str, vector_column: str, payload_columns: Sequence[str] | None
) -> Columns:
    """ids, vectors and payloads of a pandas DataFrame's rows."""
    names = [str(c) for c in frame.columns]
    _check_columns(names, id_column, vector_column)
    keys = _payload_names(names, id_column, vector_column, payload_columns)
    ids: list[PointId] = [plain(i) for i in frame[id_column].tolist()]  # type: ignore[misc]
    matrix = _matrix(frame[vector_column].to_numpy(), f"column {vector_column!r}")
    records = frame[keys].to_dict("records") if keys else [{} for _ in range(len(frame))]
    return ids, matrix, payloads_of(records)


def polars_columns(
    frame: pl.DataFrame, id_column: str, vector_column: str, payload_columns: Sequence[str] | None
) -> Columns:
    """ids, vectors and payloads of a polars DataFrame's rows; an Array column of vectors
    converts without a Python object per element."""
    import polars as pl

    names = frame.columns
    _check_columns(names, id_column, vector_column)
    keys = _payload_names(names, id_column, vector_column, payload_columns)
    ids: list[PointId] = frame[id_column].to_list()
    column = frame[vector_column]
    if isinstance(column.dtype, pl.Array):
        matrix = np.ascontiguousarray(column.to_numpy(), dtype=np.float32)
    else:
        matrix = _matrix(column.to_list(), f"column {vector_column!r}")
    records = frame.select(keys).to_dicts() if keys else [{} for _ in range(frame.height)]
    return ids, matrix, payloads_of(records)
