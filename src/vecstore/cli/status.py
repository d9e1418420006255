"""`vecstore status`: every shard and node, from the router or from nodes directly.

One row per node: role, term, commit and applied index, commit lag (how far the node's
applied index trails the highest commit index in its shard), indexing lag, readiness and
state digest. Exit status 1 when any node is unreachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from vecstore.cli.output import CliError, emit, format_table, note
from vecstore.cli.target import (
    ca_file_option,
    json_option,
    node_access,
    resolve_ca_file,
    resolve_router,
    run,
    secret_file_option,
)
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.errors import VecStoreError
from vecstore.transport.router_client import RouterClient

COLUMNS = (
    "shard",
    "epoch",
    "node",
    "address",
    "role",
    "term",
    "commit",
    "applied",
    "commit_lag",
    "indexing_lag",
    "points",
    "health",
    "ready",
    "move",
    "digest",
)


def node_row(status: dict[str, Any]) -> dict[str, Any]:
    """A node's status document (or an `unreachable` entry) as one flat row."""
    address = status.get("http_address") or status.get("address")
    if status.get("role") == "unreachable" or "commit_index" not in status:
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(
            shard=status.get("shard_id"),
            node=status.get("node_id"),
            address=address,
            role="unreachable",
            health="unreachable",
            ready=False,
            error=status.get("error"),
        )
        return row
    collections = status.get("collections") or {}
    ownership = status.get("ownership") or {}
    pending = ownership.get("pending")
    move = None
    if pending is not None:
        move = f"to epoch {pending['epoch']}" + (", fenced" if ownership.get("fenced") else "")
    return {
        "shard": status.get("shard_id"),
        "epoch": ownership.get("epoch", 0),
        "move": move,
        "node": status.get("node_id"),
        "address": address,
        "role": status.get("role"),
        "term": status.get("term"),
        "commit": status.get("commit_index"),
        "applied": status.get("last_applied"),
        "commit_lag": None,
        "indexing_lag": status.get("indexing_lag"),
        "points": sum(int(c.get("points", 0)) for c in collections.values()),
        "health": "ok",
        "ready": bool(status.get("ready")),
        "digest": status.get("digest"),
        "has_quorum": status.get("has_quorum"),
        "ingest": status.get("ingest", []),
    }


def status_rows(statuses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for every node, with each node's commit lag behind its shard's highest commit."""
    rows = [node_row(s) for s in statuses]
    highest: dict[object, int] = {}
    for row in rows:
        if row.get("commit") is not None:
            highest[row["shard"]] = max(highest.get(row["shard"], 0), int(row["commit"]))
    for row in rows:
        if row.get("applied") is not None:
            row["commit_lag"] = max(0, highest[row["shard"]] - int(row["applied"]))
    return sorted(rows, key=lambda r: (r["shard"] is None, r["shard"] or 0, str(r["node"] or r["address"])))


def shard_summaries(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per shard: its leader, how many nodes are ready, whether digests agree."""
    lines = []
    for shard in sorted({r["shard"] for r in rows if r["shard"] is not None}):
        members = [r for r in rows if r["shard"] == shard]
        leaders = [str(r["node"]) for r in members if r["role"] == "leader"]
        digests = {r["digest"] for r in members if r.get("digest")}
        ready = sum(1 for r in members if r["ready"])
        agreement = "digests agree" if len(digests) == 1 else f"{len(digests)} different digests"
        lines.append(
            f"shard {shard}: leader {', '.join(leaders) or 'NONE'}, {ready}/{len(members)} ready, {agreement}"
        )
    return lines


def render(rows: list[dict[str, Any]]) -> str:
    """The table (digests shortened) and the per-shard summary."""
    shown = [{**r, "digest": (r.get("digest") or "")[:12] or None} for r in rows]
    return "\n".join([format_table(shown, COLUMNS), "", *shard_summaries(rows)])


async def _from_nodes(addresses: list[str], access: NodeAccess) -> list[dict[str, Any]]:
    from vecstore.transport.node_client import NodeClient  # pulls in the command codecs and numpy

    async with NodeClient(addresses, access=access) as client:
        statuses = []
        for address in addresses:
            try:
                statuses.append(await client.status(address))
            except VecStoreError as err:
                statuses.append({"address": address, "role": "unreachable", "error": err.message})
        for status, address in zip(statuses, addresses, strict=True):
            status.setdefault("http_address", address)
        return statuses


async def _from_router(url: str, api_key: str | None, ca_file: Path | None) -> list[dict[str, Any]]:
    async with RouterClient(url, api_key=api_key, deadline_seconds=10, ca_file=ca_file) as client:
        return await client.status()


@click.command()
@click.option("--router", metavar="URL", help="ask this router [env VECSTORE_ROUTER]")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="ask the router in DIR/cluster.json (written by `vecstore up`)",
)
@click.option("--nodes", metavar="ADDR,ADDR", help="ask these nodes' HTTP addresses directly")
@click.option("--api-key", envvar="VECSTORE_API_KEY", help="router API key [env VECSTORE_API_KEY]")
@secret_file_option
@ca_file_option
@json_option
def status(
    router: str | None,
    data_dir: Path | None,
    nodes: str | None,
    api_key: str | None,
    secret_file: Path | None,
    ca_file: Path | None,
    as_json: bool,
) -> None:
    """Shards and nodes: role, term, indexes, lags, readiness and digests."""
    if nodes is not None and (router or data_dir):
        raise CliError("give only one of --nodes, --router or --data-dir")
    if nodes is not None:
        addresses = [a.strip() for a in nodes.split(",") if a.strip()]
        if not addresses:
            raise CliError("--nodes needs at least one host:port")
        statuses = run(_from_nodes(addresses, node_access(secret_file, None)))
    else:
        url = resolve_router(router, data_dir)
        statuses = run(_from_router(url, api_key or None, resolve_ca_file(ca_file, router, data_dir)))
    rows = status_rows(statuses)
    emit(rows, as_json, render)
    unreachable = [str(r["node"] or r["address"]) for r in rows if r["role"] == "unreachable"]
    if unreachable:
        note(f"error: {len(unreachable)} of {len(rows)} node(s) unreachable: {', '.join(unreachable)}")
        click.get_current_context().exit(1)
