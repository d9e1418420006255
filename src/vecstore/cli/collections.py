"""`vecstore collections create|list|info|drop`: collection schemas through the router."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from vecstore.cli.output import CliError, emit, format_fields, format_table
from vecstore.cli.target import Target, router_command, run

LIST_COLUMNS = ("name", "dimension", "metric", "dtype", "m", "ef_construct", "ef", "points", "indexing_lag")


def schema_body(
    name: str, dim: int, metric: str, dtype: str, m: int, ef_construct: int, ef: int
) -> dict[str, Any]:
    """The router's schema document from the CLI's flags (HNSW names as usearch spells them)."""
    return {
        "name": name,
        "dimension": dim,
        "metric": metric,
        "dtype": dtype,
        "hnsw": {"connectivity": m, "expansion_add": ef_construct, "expansion_search": ef},
    }


def collection_row(info: dict[str, Any]) -> dict[str, Any]:
    """One collection as a flat row: schema fields plus the counts summed over shards (for
    named vectors, `dimension` lists each as name:dimension and `metric` each metric)."""
    schema = info["schema"]
    if "vectors" in schema:
        dense = schema.get("vectors", {})
        sparse = schema.get("sparse_vectors", {})
        described = [f"{n}:{v['dimension']}" for n, v in sorted(dense.items())] + [
            f"{n}:sparse" for n in sorted(sparse)
        ]
        return {
            "name": schema["name"],
            "dimension": " ".join(described) or "-",
            "metric": " ".join(f"{n}:{v['metric']}" for n, v in sorted(dense.items())) or "-",
            "dtype": " ".join(sorted({v["dtype"] for v in dense.values()})) or "-",
            "m": None,
            "ef_construct": None,
            "ef": None,
            "points": info.get("points"),
            "segments": info.get("segments"),
            "indexing_lag": info.get("indexing_lag"),
            "tombstones": info.get("tombstones"),
        }
    hnsw = schema.get("hnsw", {})
    return {
        "name": schema["name"],
        "dimension": schema["dimension"],
        "metric": schema["metric"],
        "dtype": schema["dtype"],
        "m": hnsw.get("connectivity"),
        "ef_construct": hnsw.get("expansion_add"),
        "ef": hnsw.get("expansion_search"),
        "points": info.get("points"),
        "segments": info.get("segments"),
        "indexing_lag": info.get("indexing_lag"),
        "tombstones": info.get("tombstones"),
    }


@click.group()
def collections() -> None:
    """Create, list, inspect and drop collections."""


@collections.command()
@click.argument("name")
@click.option("--dim", type=click.IntRange(min=1), help="vector dimension (one unnamed vector)")
@click.option(
    "--vectors",
    "vectors_text",
    metavar="JSON",
    help='named vectors instead of --dim: \'{"text": {"dimension": 384}, "image": {"dimension": 512}}\'',
)
@click.option(
    "--sparse-vectors",
    "sparse_text",
    metavar="JSON",
    help='named sparse vectors: \'{"bm25": {"modifier": "idf"}}\'',
)
@click.option("--metric", type=click.Choice(["cosine", "l2", "dot"]), default="cosine", show_default=True)
@click.option("--dtype", type=click.Choice(["f32", "f16", "i8"]), default="f32", show_default=True)
@click.option("--m", type=int, default=16, show_default=True, help="HNSW connectivity")
@click.option("--ef-construct", type=int, default=128, show_default=True, help="HNSW expansion on add")
@click.option("--ef", type=int, default=64, show_default=True, help="HNSW expansion on search")
@router_command
def create(
    target: Target,
    name: str,
    dim: int | None,
    vectors_text: str | None,
    sparse_text: str | None,
    metric: str,
    dtype: str,
    m: int,
    ef_construct: int,
    ef: int,
) -> None:
    """Create collection NAME on every shard (the same create twice is a no-op): one vector
    of --dim dimensions, or --vectors (and --sparse-vectors) by name."""
    if (dim is None) == (vectors_text is None and sparse_text is None):
        raise click.UsageError("give either --dim N (one unnamed vector) or --vectors/--sparse-vectors JSON")
    if dim is None:
        schema: dict[str, Any] = {
            "name": name,
            "vectors": _json_object(vectors_text, "--vectors"),
            "sparse_vectors": _json_object(sparse_text, "--sparse-vectors"),
        }
    else:
        schema = schema_body(name, dim, metric, dtype, m, ef_construct, ef)

    async def go() -> bool:
        async with target.client() as client:
            return await client.create_collection(schema)

    created = run(go())
    result = {"name": name, "created": created, "schema": schema}
    shape = (
        f"dim {dim}, {metric}, {dtype}, m={m}, ef_construct={ef_construct}, ef={ef}"
        if dim is not None
        else "vectors " + ", ".join([*schema["vectors"], *schema["sparse_vectors"]])
    )
    emit(
        result,
        target.as_json,
        lambda r: (
            (f"created collection {name!r}" if r["created"] else f"collection {name!r} already exists")
            + f" ({shape})"
        ),
    )


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{option} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise CliError(f"{option} must be a JSON object: vector name -> settings")
    return value


async def _all_infos(target: Target) -> list[dict[str, Any]]:
    async with target.client() as client:
        schemas = await client.list_collections()
        return [await client.collection_info(s["name"]) for s in schemas]


@collections.command(name="list")
@router_command
def list_collections(target: Target) -> None:
    """List collections with their schema and point counts."""
    rows = [collection_row(info) for info in run(_all_infos(target))]
    emit(rows, target.as_json, lambda r: format_table(r, LIST_COLUMNS) if r else "no collections")


@collections.command()
@click.argument("name")
@router_command
def info(target: Target, name: str) -> None:
    """Show collection NAME: schema, points, segments, indexing lag, tombstones."""

    async def go() -> dict[str, Any]:
        async with target.client() as client:
            return await client.collection_info(name)

    emit(collection_row(run(go())), target.as_json, format_fields)


@collections.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@router_command
def drop(target: Target, name: str, yes: bool) -> None:
    """Drop collection NAME and all its points, on every shard."""
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(f"dropping {name!r} deletes all its points: pass --yes to confirm")
        click.confirm(f"Drop collection {name!r} and all its points?", abort=True, err=True)

    async def go() -> bool:
        async with target.client() as client:
            return await client.drop_collection(name)

    dropped = run(go())
    if not dropped:
        raise CliError(f"collection {name!r} does not exist")
    emit({"name": name, "dropped": True}, target.as_json, lambda _: f"dropped collection {name!r}")
