"""`vecstore search`: nearest neighbours of one or more query vectors, through the router;
`--profile` prints where the search spent its time, `--trace` writes it as a Chrome trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vecstore.cli.output import CliError, emit, format_table
from vecstore.cli.points import check_vector, load_matrix, parse_json
from vecstore.cli.target import Target, router_command, run
from vecstore.cluster.profile import trace_events

CONSISTENCY = ("eventual", "leader", "strong")


def parse_query_vector(text: str) -> list[list[float]]:
    """--vector: one JSON list of numbers (or a list of them, for several queries)."""
    value = parse_json(text, "--vector")
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    if not isinstance(rows[0], list) or not rows[0]:
        raise CliError("--vector must be a non-empty JSON list of numbers, e.g. '[0.1, 0.2]'")
    return [check_vector(row, len(rows[0]), f"--vector row {n}") for n, row in enumerate(rows)]


def parse_filter_option(text: str | None) -> dict[str, Any] | None:
    """--filter: a JSON filter object (docs/filters.md); the router validates its meaning."""
    if text is None:
        return None
    value = parse_json(text, "--filter")
    if not isinstance(value, dict):
        raise CliError('--filter must be a JSON object like {"must": [...]}')
    return value


def hit_rows(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hits as table rows with their rank."""
    return [{"rank": rank, **hit} for rank, hit in enumerate(hits, start=1)]


def render_results(results: list[list[dict[str, Any]]], with_payload: bool) -> str:
    """One table per query."""
    columns = ["rank", "id", "score", *(["payload"] if with_payload else [])]
    parts = []
    for number, hits in enumerate(results):
        title = f"query {number}:\n" if len(results) > 1 else ""
        parts.append(title + (format_table(hit_rows(hits), columns) if hits else "no hits"))
    return "\n\n".join(parts)


def render_profile(profile: dict[str, Any]) -> str:
    """The stage breakdown: one row per stage, in the order they started (docs/slow-queries.md)."""
    rows = [
        {"where": s["where"], "stage": s["name"], "start_ms": f"{s['start_ms']:.3f}", "ms": f"{s['ms']:.3f}"}
        for s in profile["stages"]
    ]
    table = format_table(rows, ["where", "stage", "start_ms", "ms"])
    return f"profile: {profile['total_ms']:.3f} ms in the router\n{table}"


def _dimension(schema: dict[str, Any], using: str | None, collection: str) -> int:
    """The dimension of the vector searched: the collection's one, or its named one."""
    named = schema.get("vectors")
    if named is None:
        if using is not None:
            raise CliError(f"collection {collection!r} has one unnamed vector: leave out --using")
        return int(schema["dimension"])
    if using is None or using not in named:
        names = ", ".join(sorted(named)) or "none"
        raise CliError(f"collection {collection!r} has named vectors ({names}): say which with --using NAME")
    return int(named[using]["dimension"])


PLAN_COLUMNS = ("shard", "plan", "live_points", "estimated_matches", "reason")


def show_plans(
    target: Target, collection: str, k: int, condition: dict[str, Any] | None, exact: bool, using: str | None
) -> None:
    """Print (or --json) the plan each shard would run for this search."""

    async def go() -> list[dict[str, Any]]:
        async with target.client() as client:
            return await client.explain(collection, k=k, filter=condition, exact=exact, using=using)

    plans = run(go())
    emit(plans, target.as_json, lambda rows: format_table(rows, PLAN_COLUMNS))


def search_body(
    vectors: list[list[float]], k: int, condition: dict[str, Any] | None, **options: Any
) -> dict[str, Any]:
    """The native search request, profiled."""
    body: dict[str, Any] = {"vectors": vectors, "k": k, "profile": True}
    body.update({key: value for key, value in options.items() if value is not None})
    if condition is not None:
        body["filter"] = condition
    return body


@click.command()
@click.argument("collection")
@click.option("--vector", "vector_text", metavar="JSON", help="query vector, e.g. '[0.1, 0.2, ...]'")
@click.option(
    "--vector-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="queries in .npy"
)
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True, help="hits per query")
@click.option("--filter", "filter_text", metavar="JSON", help="payload filter (docs/filters.md)")
@click.option("--with-payload/--no-with-payload", default=True, show_default=True)
@click.option("--consistency", type=click.Choice(CONSISTENCY), default="eventual", show_default=True)
@click.option("--ef", type=click.IntRange(min=1), help="HNSW expansion for this search")
@click.option("--exact", is_flag=True, help="exact (brute-force) scoring instead of HNSW")
@click.option("--using", metavar="NAME", help="the named vector to search (collections of named vectors)")
@click.option(
    "--explain",
    is_flag=True,
    help="print the plan each shard would run (exact or HNSW, estimated matches, why); no search",
)
@click.option("--profile", is_flag=True, help="also print where the search spent its time, stage by stage")
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write the search's stages to this file as a Chrome trace (open it in ui.perfetto.dev)",
)
@router_command
def search(
    target: Target,
    collection: str,
    vector_text: str | None,
    vector_file: Path | None,
    k: int,
    filter_text: str | None,
    with_payload: bool,
    consistency: str,
    ef: int | None,
    exact: bool,
    using: str | None,
    explain: bool,
    profile: bool,
    trace: Path | None,
) -> None:
    """Nearest neighbours in COLLECTION of --vector or of each row of --vector-file
    (--explain: the plan each shard would run, no vector needed)."""
    condition = parse_filter_option(filter_text)
    if explain:
        show_plans(target, collection, k, condition, exact, using)
        return
    if (vector_text is None) == (vector_file is None):
        raise CliError("give exactly one of --vector JSON or --vector-file q.npy")
    if vector_text is not None:
        queries = parse_query_vector(vector_text)
    else:
        assert vector_file is not None
        queries = load_matrix(vector_file).astype("float64").tolist()

    profiled = profile or trace is not None

    async def go() -> dict[str, Any]:
        async with target.client() as client:
            schema = (await client.collection_info(collection))["schema"]
            dimension = _dimension(schema, using, collection)
            if len(queries[0]) != dimension:
                raise CliError(
                    f"query vector has {len(queries[0])} dimensions, collection {collection!r} "
                    f"expects {dimension}"
                )
            if profiled:
                body = search_body(
                    queries,
                    k,
                    condition,
                    with_payload=with_payload,
                    consistency=consistency,
                    ef=ef,
                    exact=exact,
                    using=using,
                )
                answer = await client.request("POST", f"/v1/collections/{collection}/search", body)
                return {"results": answer["results"], "profile": answer["profile"]}
            hits = await client.search(
                collection,
                queries,
                k=k,
                filter=condition,
                with_payload=with_payload,
                consistency=consistency,
                ef=ef,
                exact=exact,
                using=using,
            )
            return {"results": hits}

    found = run(go())
    if trace is not None:
        trace.write_text(json.dumps(trace_events(found["profile"], f"search {collection}")))
    document: dict[str, Any] = {"collection": collection, "results": found["results"]}
    if profile:
        document["profile"] = found["profile"]

    def render(data: dict[str, Any]) -> str:
        text = render_results(data["results"], with_payload)
        return text + ("\n\n" + render_profile(data["profile"]) if "profile" in data else "")

    emit(document, target.as_json, render)
