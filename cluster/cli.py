"""`vecstore`: the admin CLI. Human-readable tables by default, `--json` for scripts.

Subcommands that run a process (`node run`) exec it, so this module imports no room
beyond `cluster`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from vecstore.cluster.client import NodeClient
from vecstore.cluster.errors import VecStoreError


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _addresses(raw: str) -> list[str]:
    return [a.strip() for a in raw.split(",") if a.strip()]


async def _status(args: argparse.Namespace) -> int:
    async with NodeClient(_addresses(args.nodes)) as client:
        rows: list[dict[str, Any]] = []
        for address in client.addresses:
            try:
                status = await client.status(address)
            except VecStoreError as err:
                rows.append({"address": address, "role": "unreachable", "error": err.message})
                continue
            points = sum(c["points"] for c in status["collections"].values())
            rows.append(
                {
                    "address": address,
                    "node": status["node_id"],
                    "shard": status["shard_id"],
                    "role": status["role"],
                    "term": status["term"],
                    "commit": status["commit_index"],
                    "applied": status["last_applied"],
                    "indexing_lag": status["indexing_lag"],
                    "points": points,
                    "digest": status["digest"][:12],
                    "ready": status["ready"],
                    "ingest": status["ingest"],
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        columns = ["address", "node", "shard", "role", "term", "commit", "applied"]
        print(_table(rows, [*columns, "indexing_lag", "points", "digest", "ready"]))
    return 0 if all(r.get("role") != "unreachable" for r in rows) else 1


async def _membership(args: argparse.Namespace) -> int:
    async with NodeClient(_addresses(args.nodes)) as client:
        await client.change_membership(args.action, args.raft_address)
    print(f"{args.action}: {args.raft_address} done")
    return 0


def _run_process(module: str, argv: list[str]) -> NoReturn:
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])  # noqa: S606


def _up(args: argparse.Namespace) -> int:
    from vecstore.cluster.local_cluster import LocalCluster

    cluster = LocalCluster(args.data_dir, shards=args.shards, replicas=args.replicas, port=args.port)
    cluster.start()
    print(f"VecStore cluster: {len(cluster.spec.shards)} shard(s) x {len(cluster.spec.shards[0].nodes)}")
    print(f"  router    {cluster.router_url}  (native /v1 API and Qdrant-compatible API)")
    print(f"  nodes     {', '.join(cluster.node_addresses())}")
    print(f"  data      {cluster.data_dir}  (cluster.json lists every process)")
    print("Ctrl-C stops the cluster.", flush=True)
    cluster.run_forever()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (also used to check the docs' commands)."""
    parser = argparse.ArgumentParser(prog="vecstore", description="VecStore Cluster admin CLI.")
    commands = parser.add_subparsers(dest="command", required=True)

    status = commands.add_parser("status", help="status of nodes: role, term, indexes, digest")
    status.add_argument("--nodes", required=True, help="comma-separated node HTTP addresses")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    up = commands.add_parser("up", help="run a whole local cluster in the foreground")
    up.add_argument("--shards", type=int, default=2, help="number of shards (default 2)")
    up.add_argument("--replicas", type=int, default=3, help="nodes per shard (default 3)")
    up.add_argument("--port", type=int, default=6333, help="router port (default 6333)")
    up.add_argument("--data-dir", type=Path, default=Path("vecstore-data"), help="data directory")
    up.set_defaults(handler=_up, sync=True)

    node = commands.add_parser("node", help="run a node, or change a shard's membership")
    node_commands = node.add_subparsers(dest="node_command", required=True)
    node_commands.add_parser(
        "run", help="run a node process (see `vecstore node run --help`)", add_help=False
    )
    for action, verb in (("add", "add a member to"), ("remove", "remove a member from")):
        sub = node_commands.add_parser(action, help=f"{verb} a shard's Raft group")
        sub.add_argument("--nodes", required=True, help="HTTP addresses of the shard's nodes")
        sub.add_argument("--raft-address", required=True, help="the member's Raft host:port")
        sub.set_defaults(handler=_membership, action=action)
    router = commands.add_parser("router", help="run a router")
    router.add_subparsers(dest="router_command", required=True).add_parser(
        "run", help="run a router process (see `vecstore router run --help`)", add_help=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vecstore` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["node", "run"]:
        _run_process("vecstore.node", argv[2:])
    if argv[:2] == ["router", "run"]:
        _run_process("vecstore.router", argv[2:])
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "sync", False):
            return int(args.handler(args))
        result: int = asyncio.run(args.handler(args))
    except VecStoreError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
