"""`vecstore points upsert`: points from JSONL or .npy files into a collection, through the router.

Input files are checked as they are read, and a bad line or row is reported by number
before its batch is sent; batches go in file order so a later duplicate id wins.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vecstore.cli.output import CliError, emit, progress_disabled
from vecstore.cli.target import Target, router_command, run
from vecstore.cluster.errors import VecStoreError

if TYPE_CHECKING:
    import numpy.typing as npt

Point = dict[str, Any]
NPY_CHUNK_ROWS = 1024


# ---- reading points --------------------------------------------------------------------


def parse_json(text: str, where: str) -> Any:
    """One JSON document, or CliError naming where it came from and the column at fault."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None


def check_vector(vector: object, dimension: int, where: str) -> list[float]:
    """A vector as a list of finite floats of the collection's dimension, or CliError."""
    if not isinstance(vector, list) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector
    ):
        raise CliError(f"{where}: 'vector' must be a list of numbers")
    if len(vector) != dimension:
        raise CliError(f"{where}: vector has {len(vector)} dimensions, the collection expects {dimension}")
    if not all(math.isfinite(x) for x in vector):
        raise CliError(f"{where}: vector has a NaN or infinite value")
    return [float(x) for x in vector]


def check_payload(payload: object, where: str) -> dict[str, Any] | None:
    """A payload must be a JSON object (or null/absent)."""
    if payload is not None and not isinstance(payload, dict):
        raise CliError(f"{where}: 'payload' must be a JSON object, got {type(payload).__name__}")
    return payload


Dimensions = int | dict[str, int | None]
"""What a point's vector must be: one vector of this dimension, or named vectors (name ->
dimension, None for a sparse one)."""


def dimensions_of(schema: dict[str, Any]) -> Dimensions:
    """The vector shape a collection's schema asks for."""
    if "vectors" in schema:
        named: dict[str, int | None] = {n: int(v["dimension"]) for n, v in schema["vectors"].items()}
        named.update(dict.fromkeys(schema.get("sparse_vectors", {})))
        return named
    return int(schema["dimension"])


def check_point_vector(vector: object, dimensions: Dimensions, where: str) -> Any:
    """A point's vector checked against the collection: one list, or an object of named ones."""
    if isinstance(dimensions, int):
        return check_vector(vector, dimensions, where)
    if not isinstance(vector, dict):
        names = ", ".join(sorted(dimensions)) or "none"
        raise CliError(f"{where}: this collection has named vectors ({names}): 'vector' must be an object")
    checked: dict[str, Any] = {}
    for name, value in vector.items():
        if name not in dimensions:
            raise CliError(f"{where}: the collection has no vector named {name!r}")
        expected = dimensions[name]
        if expected is None:
            if not isinstance(value, dict) or set(value) != {"indices", "values"}:
                raise CliError(
                    f"{where}: sparse vector {name!r} must be {{'indices': [...], 'values': [...]}}"
                )
            checked[name] = value
        else:
            checked[name] = check_vector(value, expected, f"{where}, vector {name!r}")
    return checked


def parse_point_line(line: str, dimension: Dimensions, where: str) -> Point:
    """One JSONL line {"id", "vector", "payload"} as a checked point."""
    record = parse_json(line, where)
    if not isinstance(record, dict):
        raise CliError(f"{where}: expected an object with 'id', 'vector' and 'payload'")
    unknown = set(record) - {"id", "vector", "payload"}
    if unknown:
        raise CliError(f"{where}: unknown fields {sorted(unknown)}; expected 'id', 'vector', 'payload'")
    if "id" not in record or "vector" not in record:
        raise CliError(f"{where}: each point needs 'id' and 'vector'")
    point_id = record["id"]
    if isinstance(point_id, bool) or not isinstance(point_id, (int, str)):
        raise CliError(f"{where}: 'id' must be an unsigned integer or a UUID string")
    point: Point = {"id": point_id, "vector": check_point_vector(record["vector"], dimension, where)}
    payload = check_payload(record.get("payload"), where)
    if payload is not None:
        point["payload"] = payload
    return point


def jsonl_points(path: Path, dimension: Dimensions) -> Iterator[Point]:
    """Points from a JSONL file, one per non-blank line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_point_line(line, dimension, f"{path} line {number}")


def count_lines(path: Path) -> int:
    """Non-blank lines in a text file (for the progress bar and payload checks)."""
    with path.open("rb") as data:
        return sum(1 for line in data if line.strip())


def load_matrix(path: Path, dimension: int | None = None) -> npt.NDArray[Any]:
    """A 2-d numeric .npy (a 1-d one is one row), memory-mapped, checked against `dimension`."""
    import numpy as np

    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CliError(f"{path} is not a readable .npy array: {err}") from None
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise CliError(f"{path} must hold a 2-d numeric array (rows x dimension), got {matrix.shape}")
    if dimension is not None and matrix.shape[1] != dimension:
        raise CliError(
            f"{path}: vectors have {matrix.shape[1]} dimensions, the collection expects {dimension}"
        )
    checked: npt.NDArray[Any] = matrix
    return checked


def npy_points(
    vectors: npt.NDArray[Any], payloads_path: Path | None, start_id: int, vectors_path: Path
) -> Iterator[Point]:
    """Points from matrix rows (ids start_id, start_id+1, ...) with optional JSONL payloads."""
    import numpy as np

    payload_lines: Iterator[str | None] = itertools.repeat(None)
    with contextlib.ExitStack() as stack:
        if payloads_path is not None:
            payload_file = stack.enter_context(payloads_path.open(encoding="utf-8"))
            payload_lines = (line for line in payload_file if line.strip())
        for first in range(0, len(vectors), NPY_CHUNK_ROWS):
            chunk = np.asarray(vectors[first : first + NPY_CHUNK_ROWS], dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(chunk).all(axis=1))
            if bad.size:
                row = first + int(bad[0])
                raise CliError(f"{vectors_path} row {row}: vector has a NaN or infinite value")
            for offset, vector in enumerate(chunk.tolist()):
                row = first + offset
                point: Point = {"id": start_id + row, "vector": vector}
                payload_line = next(payload_lines)
                if payload_line is not None:
                    where = f"{payloads_path} payload for row {row}"
                    payload = parse_json(payload_line, where)
                    if payload is not None:
                        point["payload"] = check_payload(payload, where)
                yield point


def batches(points: Iterable[Point], size: int) -> Iterator[list[Point]]:
    """Consecutive lists of at most `size` points."""
    batch: list[Point] = []
    for point in points:
        batch.append(point)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- points upsert ---------------------------------------------------------------------


@click.group()
def points() -> None:
    """Load points into a collection."""


def _check_source(
    file: Path | None, vectors: Path | None, payloads: Path | None
) -> tuple[int, npt.NDArray[Any] | None]:
    """Check the input flags and files before any request: how many points, and the matrix."""
    if (file is None) == (vectors is None):
        raise CliError("give exactly one of --file data.jsonl or --vectors x.npy")
    if file is not None:
        if payloads is not None:
            raise CliError("--payloads goes with --vectors; JSONL lines carry their own payloads")
        return count_lines(file), None
    assert vectors is not None
    matrix = load_matrix(vectors)
    if payloads is not None:
        lines = count_lines(payloads)
        if lines != len(matrix):
            raise CliError(f"{payloads} has {lines} payload lines but {vectors} has {len(matrix)} rows")
    return len(matrix), matrix


def _points(
    file: Path | None,
    vectors: Path | None,
    matrix: npt.NDArray[Any] | None,
    payloads: Path | None,
    start_id: int,
    dimension: Dimensions,
) -> Iterator[Point]:
    """The points to send, checked against the collection's dimension."""
    if matrix is None:
        assert file is not None
        return jsonl_points(file, dimension)
    assert vectors is not None
    if not isinstance(dimension, int):
        raise CliError("this collection has named vectors: load it from --file JSONL with vector objects")
    if matrix.shape[1] != dimension:
        raise CliError(
            f"{vectors}: vectors have {matrix.shape[1]} dimensions, the collection expects {dimension}"
        )
    return npy_points(matrix, payloads, start_id, vectors)


@points.command()
@click.argument("collection")
@click.option("--file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSONL points")
@click.option("--vectors", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=".npy matrix")
@click.option(
    "--payloads", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSONL, one per row"
)
@click.option("--start-id", type=click.IntRange(min=0), default=0, show_default=True, help="id of row 0")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.option("--progress/--no-progress", default=None, help="progress bar on stderr [default: on a tty]")
@router_command
def upsert(
    target: Target,
    collection: str,
    file: Path | None,
    vectors: Path | None,
    payloads: Path | None,
    start_id: int,
    batch_size: int,
    progress: bool | None,
) -> None:
    """Insert or replace points of COLLECTION from --file (JSONL lines {"id", "vector",
    "payload"}) or from --vectors (a .npy matrix; ids from --start-id) with --payloads."""
    from tqdm import tqdm

    total, matrix = _check_source(file, vectors, payloads)

    async def go() -> int:
        async with target.client(deadline_seconds=60) as client:
            dimension = dimensions_of((await client.collection_info(collection))["schema"])
            source = _points(file, vectors, matrix, payloads, start_id, dimension)
            written = 0
            disable = progress_disabled(progress)
            with tqdm(total=total, unit="pt", desc=f"upsert {collection}", disable=disable) as bar:
                try:
                    for batch in batches(source, batch_size):
                        written += await client.upsert(collection, batch)
                        bar.update(len(batch))
                except (CliError, VecStoreError) as err:
                    message = err.message if isinstance(err, VecStoreError) else err.format_message()
                    raise CliError(f"{message} ({written} points were written before it)") from None
            return written

    written = run(go())
    emit(
        {"collection": collection, "upserted": written},
        target.as_json,
        lambda r: f"upserted {r['upserted']} points into {collection!r}",
    )
