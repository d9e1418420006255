"""`vecstore`: the admin CLI. Human-readable tables by default, `--json` on every command.

Commands that run a process (`node run`, `router run`, `ingest`) exec it, so this
package imports no room beyond `cluster`. Failures print one `error: ...` line on stderr
and exit non-zero.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from vecstore.cli.collections import collections
from vecstore.cli.output import CliError, emit, note
from vecstore.cli.points import points
from vecstore.cli.search import search
from vecstore.cli.shards import replace, shards
from vecstore.cli.snapshot import snapshot
from vecstore.cli.status import status
from vecstore.cli.target import DEFAULT_DATA_DIR, json_option, node_access, run, secret_file_option
from vecstore.cluster.errors import VecStoreError

if TYPE_CHECKING:
    from vecstore.launcher.local_cluster import LocalCluster

PASSTHROUGH = {
    "context_settings": {"ignore_unknown_options": True, "allow_extra_args": True},
    "add_help_option": False,
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """VecStore Cluster admin CLI.

    Router commands find the router from --router, --data-dir DIR/cluster.json,
    VECSTORE_ROUTER, ./vecstore-data/cluster.json, then http://127.0.0.1:6333.
    """


def exec_module(module: str, arguments: tuple[str, ...]) -> NoReturn:
    """Replace this process with `python -m <module> <arguments>`."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *arguments])  # noqa: S606 - our interpreter


# ---- up --------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@cli.command()
@click.option("--shards", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--replicas", type=click.IntRange(min=1), default=3, show_default=True, help="nodes per shard")
@click.option("--port", type=click.IntRange(1, 65535), default=6333, show_default=True, help="router port")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="where nodes keep their data; running `up` again on it restarts the same cluster",
)
@click.option("--with-kafka", is_flag=True, help="also run a Kafka-protocol broker and an ingest worker")
@click.option(
    "--tls",
    is_flag=True,
    help="serve the router and the nodes over HTTPS with a new local CA (DATA_DIR/tls/ca.pem; "
    "kept on restarts)",
)
@json_option
def up(
    shards: int, replicas: int, port: int, data_dir: Path, with_kafka: bool, tls: bool, as_json: bool
) -> None:
    """Run a whole local cluster in the foreground, restarting crashed processes.

    Ctrl-C or SIGTERM stops every process cleanly. An existing data dir keeps its shape:
    --shards, --replicas and --port apply only to a new one.
    """
    from vecstore.launcher.local_cluster import LocalCluster

    try:
        cluster = LocalCluster(
            data_dir, shards=shards, replicas=replicas, port=port, with_kafka=with_kafka, tls=tls
        )
    except RuntimeError as err:  # no broker binary, for one
        raise CliError(str(err)) from None
    signal.signal(signal.SIGTERM, _interrupt)  # until run_forever takes over: stop what started
    try:
        cluster.start()
        emit(_endpoints(cluster), as_json, _describe_endpoints)
        sys.stdout.flush()
        cluster.run_forever()  # returns after SIGINT/SIGTERM, every process stopped
    except BaseException as err:
        cluster.stop()  # never leave processes behind (stopping twice is harmless)
        if isinstance(err, RuntimeError):
            raise CliError(f"the cluster did not start: {err}") from None
        raise
    note("cluster stopped")


def _endpoints(cluster: LocalCluster) -> dict[str, Any]:
    kafka = cluster.kafka
    return {
        "router": cluster.router_url,
        "shards": len(cluster.spec.shards),
        "replicas": len(cluster.spec.shards[0].nodes),
        "nodes": cluster.node_addresses(),
        "kafka": {"bootstrap": kafka.bootstrap, "topic": kafka.topic} if kafka is not None else None,
        "data_dir": str(cluster.data_dir),
        "manifest": str(cluster.manifest_path),
        "ca_file": str(cluster.tls.ca) if cluster.tls else None,
        "supervisor_pid": os.getpid(),
    }


def _describe_endpoints(e: dict[str, Any]) -> str:
    kafka = e["kafka"]
    return "\n".join(
        [
            f"VecStore cluster: {e['shards']} shard(s) x {e['replicas']} replica(s)",
            f"  router    {e['router']}  (native /v1 API and Qdrant-compatible API)",
            f"  nodes     {', '.join(e['nodes'])}",
            *([f"  kafka     {kafka['bootstrap']}  (ingest topic {kafka['topic']})"] if kafka else []),
            *(
                [f"  tls CA    {e['ca_file']}  (clients verify the router and the nodes with it)"]
                if e.get("ca_file")
                else []
            ),
            f"  data      {e['data_dir']}  (cluster.json lists every process)",
            "Ctrl-C stops the cluster.",
        ]
    )


# ---- node, router, ingest --------------------------------------------------------------


@cli.group()
def node() -> None:
    """Run a node, or change a shard's Raft membership."""


@node.command(name="run", **PASSTHROUGH)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def node_run(arguments: tuple[str, ...]) -> None:
    """Run one node process (all arguments go to it; see `vecstore node run --help`)."""
    exec_module("vecstore.node", arguments)


def _membership_command(action: str, verb: str) -> click.Command:
    @click.option("--nodes", required=True, metavar="ADDR,ADDR", help="HTTP addresses of the shard's nodes")
    @click.option("--raft-address", required=True, metavar="HOST:PORT", help="the member's Raft address")
    @secret_file_option
    @json_option
    def command(nodes: str, raft_address: str, secret_file: Path | None, as_json: bool) -> None:
        addresses = [a.strip() for a in nodes.split(",") if a.strip()]
        if not addresses:
            raise CliError("--nodes needs at least one host:port")

        async def go() -> None:
            from vecstore.transport.node_client import NodeClient  # pulls in the command codecs and numpy

            async with NodeClient(addresses, access=node_access(secret_file, None)) as client:
                await client.change_membership(action, raft_address)

        run(go())
        result = {"action": action, "raft_address": raft_address, "done": True}
        emit(result, as_json, lambda r: f"{action}: {raft_address} done")

    command.__doc__ = f"{verb.capitalize()} a shard's Raft group (through its leader)."
    return click.command(name=action)(command)


node.add_command(_membership_command("add", "add a member to"))
node.add_command(_membership_command("remove", "remove a member from"))
node.add_command(replace)


@cli.group()
def router() -> None:
    """Run a router."""


@router.command(name="run", **PASSTHROUGH)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def router_run(arguments: tuple[str, ...]) -> None:
    """Run one stateless router (all arguments go to it; see `vecstore router run --help`)."""
    exec_module("vecstore.router", arguments)


@cli.command(**PASSTHROUGH)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def ingest(arguments: tuple[str, ...]) -> None:
    """Run the Kafka ingestion tools (all arguments go to them; see `vecstore ingest --help`)."""
    exec_module("vecstore.ingest", arguments)


cli.add_command(status)
cli.add_command(collections)
cli.add_command(points)
cli.add_command(search)
cli.add_command(snapshot)
cli.add_command(shards)


# ---- entry point -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vecstore` command; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(arguments, prog_name="vecstore", standalone_mode=False)
    except click.exceptions.Abort:
        note("error: aborted")
        return 130
    except click.exceptions.NoArgsIsHelpError as err:
        note(err.ctx.get_help() if err.ctx is not None else err.format_message())
        return 2
    except click.UsageError as err:
        hint = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        note(f"error: {err.format_message()}{hint}")
        return 2
    except click.ClickException as err:
        note(f"error: {err.format_message()}")
        return 1
    except VecStoreError as err:
        note(f"error: {err.message}")
        return 1
    except OSError as err:
        note(f"error: {err}")
        return 1
    except KeyboardInterrupt:
        note("error: interrupted")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
