"""`vecstore snapshot create|restore`: a logical, portable backup through the router.

The file is a stream of msgpack maps (documented in docs/operations.md):
    1. header  {"format": "vecstore-logical-backup", "version": 1, "created_at", "router",
                "consistency", "collections": [{"schema": {...}, "points": n}, ...]}
    2. batches {"kind": "points", "collection", "dimension", "ids": [...],
                "vectors": <float32 little-endian bytes, rows x dimension>, "payloads": [...]}
    3. end     {"kind": "end", "points": {collection: n, ...}}
It holds schemas and points only, never a shard's physical files, so it restores into a
cluster of any shape. A file without its end record is refused as truncated.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import msgpack

from vecstore.cli.output import CliError, emit, format_table, progress_disabled
from vecstore.cli.search import CONSISTENCY
from vecstore.cli.target import Target, router_command, run
from vecstore.transport.router_client import RouterClient

FORMAT = "vecstore-logical-backup"
VERSION = 1
MAX_RECORD_BYTES = 1 << 30


# ---- the file format -------------------------------------------------------------------


def header_record(router: str, consistency: str, collections: list[dict[str, Any]]) -> dict[str, Any]:
    """The first record: what the file is, where and how it was taken, and every schema."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "router": router,
        "consistency": consistency,
        "collections": collections,
    }


def points_record(collection: str, dimension: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of scrolled points ({"id", "vector", "payload"}) as one record."""
    import numpy as np

    matrix = np.asarray([p["vector"] for p in points], dtype="<f4").reshape(len(points), dimension)
    return {
        "kind": "points",
        "collection": collection,
        "dimension": dimension,
        "ids": [p["id"] for p in points],
        "vectors": matrix.tobytes(),
        "payloads": [p.get("payload") for p in points],
    }


def points_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The upsert points of a batch record (checked: lengths agree)."""
    import numpy as np

    ids, payloads, dimension = record["ids"], record["payloads"], int(record["dimension"])
    matrix = np.frombuffer(record["vectors"], dtype="<f4")
    if len(ids) != len(payloads) or matrix.size != len(ids) * dimension:
        raise CliError(f"backup batch of {record['collection']!r} is inconsistent (ids, vectors, payloads)")
    vectors = matrix.reshape(len(ids), dimension).astype(np.float64).tolist()
    return [
        {"id": i, "vector": v, **({"payload": p} if p is not None else {})}
        for i, v, p in zip(ids, vectors, payloads, strict=True)
    ]


def write_record(stream: IO[bytes], record: dict[str, Any]) -> None:
    """Append one record."""
    stream.write(msgpack.packb(record, use_bin_type=True))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a backup file, the header checked first."""
    with path.open("rb") as stream:
        unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=False, max_buffer_size=MAX_RECORD_BYTES)
        try:
            for position, record in enumerate(unpacker):
                if not isinstance(record, dict):
                    raise CliError(f"{path} is not a VecStore backup (record {position} is not a map)")
                if position == 0:
                    check_header(record, path)
                yield record
        except (msgpack.UnpackException, ValueError) as err:
            raise CliError(f"{path} is damaged: {err}") from None


def check_header(record: dict[str, Any], path: Path) -> None:
    """Refuse files that are not backups, or from a newer format version."""
    if record.get("format") != FORMAT:
        raise CliError(f"{path} is not a VecStore logical backup (no '{FORMAT}' header)")
    if record.get("version") != VERSION:
        raise CliError(
            f"{path} is backup format version {record.get('version')}; this vecstore reads {VERSION}"
        )


def scan(path: Path) -> dict[str, Any]:
    """Read the whole file once: the header, if it is complete, and the points per collection."""
    header: dict[str, Any] | None = None
    counted: dict[str, int] = {}
    end: dict[str, Any] | None = None
    for record in read_records(path):
        if header is None:
            header = record
        elif record.get("kind") == "points":
            counted[record["collection"]] = counted.get(record["collection"], 0) + len(record["ids"])
        elif record.get("kind") == "end":
            end = record
    if header is None:
        raise CliError(f"{path} is empty")
    if end is None:
        raise CliError(f"{path} is truncated: it has no end record (was `snapshot create` interrupted?)")
    expected = {k: v for k, v in end["points"].items() if v}
    if counted != expected:
        raise CliError(f"{path} is damaged: its end record lists {expected}, its batches hold {counted}")
    return {**header, "counted": counted}


# ---- create ----------------------------------------------------------------------------


@click.group()
def snapshot() -> None:
    """Logical backups: every collection's schema and points in one portable file."""


async def _create(
    target: Target, out: Path, names: tuple[str, ...], page: int, consistency: str, show: bool | None
) -> dict[str, Any]:
    from tqdm import tqdm

    async with target.client(deadline_seconds=60) as client:
        schemas = await client.list_collections()
        if names:
            missing = sorted(set(names) - {s["name"] for s in schemas})
            if missing:
                raise CliError(f"no such collection(s): {', '.join(missing)}")
            schemas = [s for s in schemas if s["name"] in names]
        counts = {s["name"]: await client.count(s["name"], consistency=consistency) for s in schemas}
        collections = [{"schema": s, "points": counts[s["name"]]} for s in schemas]
        partial = out.with_name(out.name + ".partial")
        hidden = progress_disabled(show)
        written: dict[str, int] = {}
        try:
            with (
                partial.open("wb") as stream,
                tqdm(total=sum(counts.values()), unit="pt", desc="snapshot", disable=hidden) as bar,
            ):
                write_record(stream, header_record(client.url, consistency, collections))
                for schema in schemas:
                    written[schema["name"]] = await _copy_collection(
                        client, stream, schema, page, consistency, bar
                    )
                write_record(stream, {"kind": "end", "points": written})
                stream.flush()
                os.fsync(stream.fileno())
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
    return {
        "file": str(out),
        "collections": written,
        "points": sum(written.values()),
    }


async def _copy_collection(
    client: RouterClient, stream: IO[bytes], schema: dict[str, Any], page: int, consistency: str, bar: Any
) -> int:
    offset: object = None
    copied = 0
    while True:
        points, offset = await client.scroll(
            schema["name"], offset=offset, limit=page, with_vector=True, consistency=consistency
        )
        if points:
            write_record(stream, points_record(schema["name"], int(schema["dimension"]), points))
            copied += len(points)
            bar.update(len(points))
        if offset is None:
            return copied


def render_summary(summary: dict[str, Any]) -> str:
    """What a create or restore did, per collection."""
    rows = [{"collection": name, "points": n} for name, n in summary["collections"].items()]
    table = format_table(rows, ["collection", "points"]) if rows else "no collections"
    return f"{table}\n{summary['points']} points, {len(rows)} collection(s): {summary['file']}"


@snapshot.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="file to write")
@click.option("--collection", "names", multiple=True, help="only this collection (repeatable)")
@click.option("--page-size", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option(
    "--consistency",
    type=click.Choice(CONSISTENCY),
    default="strong",
    show_default=True,
    help="read level of every page",
)
@click.option("--progress/--no-progress", default=None, help="progress bar on stderr [default: on a tty]")
@router_command
def create(
    target: Target,
    out: Path,
    names: tuple[str, ...],
    page_size: int,
    consistency: str,
    progress: bool | None,
) -> None:
    """Write every collection's schema and points (vectors and payloads) to --out."""
    summary = run(_create(target, out, names, page_size, consistency, progress))
    summary["bytes"] = out.stat().st_size
    emit(summary, target.as_json, render_summary)


# ---- restore ---------------------------------------------------------------------------


async def _prepare(client: RouterClient, header: dict[str, Any], force: bool) -> None:
    """Create the collections, refusing (or with --force replacing) conflicting ones."""
    existing = {schema["name"]: schema for schema in await client.list_collections()}
    wanted = [entry["schema"] for entry in header["collections"]]
    conflicts = [s["name"] for s in wanted if s["name"] in existing and existing[s["name"]] != s]
    if conflicts and not force:
        raise CliError(
            f"collection(s) {', '.join(conflicts)} exist with a different schema; drop them "
            "or pass --force to replace them"
        )
    for schema in wanted:
        if schema["name"] in conflicts:
            await client.drop_collection(schema["name"])
        await client.create_collection(schema)


async def _restore(
    target: Target, file: Path, force: bool, batch_size: int, show: bool | None
) -> dict[str, Any]:
    from tqdm import tqdm

    header = scan(file)
    restored = {entry["schema"]["name"]: 0 for entry in header["collections"]}
    async with target.client(deadline_seconds=60) as client:
        await _prepare(client, header, force)
        total = sum(header["counted"].values())
        with tqdm(total=total, unit="pt", desc="restore", disable=progress_disabled(show)) as bar:
            for record in read_records(file):
                if record.get("kind") != "points":
                    continue
                name = record["collection"]
                points = points_of(record)
                for start in range(0, len(points), batch_size):
                    batch = points[start : start + batch_size]
                    await client.upsert(name, batch)
                    restored[name] += len(batch)
                    bar.update(len(batch))
    return {"file": str(file), "collections": restored, "points": sum(restored.values())}


@snapshot.command()
@click.option(
    "--file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="backup"
)
@click.option("--force", is_flag=True, help="replace collections that exist with a different schema")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.option("--progress/--no-progress", default=None, help="progress bar on stderr [default: on a tty]")
@router_command
def restore(target: Target, file: Path, force: bool, batch_size: int, progress: bool | None) -> None:
    """Recreate the collections of --file and upsert all its points."""
    summary = run(_restore(target, file, force, batch_size, progress))
    emit(summary, target.as_json, render_summary)
