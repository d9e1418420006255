"""`vecstore shards status|add|remove|resume|abort`: change the number of shards online.

The commands talk to the nodes directly (the coordinator in `vecstore.reshard`), reading
their addresses from a cluster spec: `--data-dir` (a `vecstore up` folder, whose spec.json
the supervisor follows: `add` starts the new shard's nodes there, `remove` stops them) or
`--spec` (any other deployment, where the new shard's members are given with `--node`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from vecstore.cli.output import CliError, emit, format_fields, format_table, note, progress_disabled
from vecstore.cli.target import DEFAULT_DATA_DIR, json_option, node_access, run, secret_file_option
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.spec import ClusterSpec, NodeSpec, ShardSpec, read_spec_file
from vecstore.cluster.topology import Topology
from vecstore.launcher.local_cluster import (
    grow_spec,
    new_member_spec,
    shrink_spec,
    swap_member_in_spec,
)
from vecstore.reshard.coordinator import Coordinator, Progress, wait_for_leader, wait_stopped

LEADER_SECONDS = 120.0


@dataclass(frozen=True)
class Where:
    """The cluster a command works on: its spec, the `vecstore up` folder when there is one,
    and what to present to its nodes."""

    spec: ClusterSpec
    folder: Path | None
    access: NodeAccess


def _spec_source(data_dir: Path | None, spec: Path | None, secret_file: Path | None) -> Where:
    """The spec to start from, the `vecstore up` folder, and the node token."""
    if spec is not None:
        return Where(read_spec_file(spec), None, node_access(secret_file, data_dir))
    folder = data_dir or DEFAULT_DATA_DIR
    path = folder / "spec.json"
    if not path.exists():
        raise CliError(f"{path} does not exist: pass --data-dir of a `vecstore up` folder, or --spec FILE")
    return Where(read_spec_file(path), folder, node_access(secret_file, folder))


@contextmanager
def _bars(enabled: bool | None) -> Iterator[Progress]:
    """One tqdm bar per phase of the move (on stderr)."""
    bars: dict[str, tqdm[Any]] = {}

    def report(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit="pt", disable=enabled, leave=True)
        bar.total = max(total, 1)
        bar.n = done
        bar.refresh()

    try:
        yield report
    finally:
        for bar in bars.values():
            bar.close()


REPLACE_WAIT_SECONDS = 1_800.0
"""How long `node replace` waits for the new member to catch up by default: a shard of a
million 128-d vectors is a snapshot of about 1.7 GiB."""
STOP_SECONDS = 60.0
"""How long `node replace` under `vecstore up` waits for the supervisor to stop the old node."""


def _where(func: Callable[..., Any]) -> Callable[..., Any]:
    """--spec, --data-dir and --secret-file, given to the command as one `where` argument."""

    @functools.wraps(func)
    def with_where(
        *args: Any, data_dir: Path | None, spec: Path | None, secret_file: Path | None, **kw: Any
    ) -> Any:
        return func(*args, where=_spec_source(data_dir, spec, secret_file), **kw)

    command = secret_file_option(with_where)
    command = click.option(
        "--spec",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="a cluster spec file (deployments other than `vecstore up`)",
    )(command)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help=f"the `vecstore up` folder [default {DEFAULT_DATA_DIR}]",
    )(command)


def _progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    option = click.option("--progress/--no-progress", default=None, help="progress bars [default: on a tty]")
    return option(func)


def _describe(topology: Topology, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "epoch": topology.epoch,
        "shards": [
            {
                "shard": s.id,
                "nodes": ",".join(n.id for n in s.nodes),
                "http": ",".join(n.http for n in s.nodes),
            }
            for s in topology.shards
        ],
        "move": state["moving_to"],
        "per_shard": state["per_shard"],
    }


def _render(data: dict[str, Any]) -> str:
    lines = [f"topology epoch {data['epoch']}", format_table(data["shards"], ["shard", "nodes", "http"])]
    move = data.get("move")
    if move is not None:
        ids = [s["id"] for s in move["shards"]]
        lines.append(f"a move to epoch {move['epoch']} (shards {ids}) is under way: `vecstore shards resume`")
        lines.append("finishes it, `vecstore shards abort` rolls it back")
    return "\n".join(lines)


@click.group()
def shards() -> None:
    """Grow or shrink the cluster online: points move to their new shard, nothing is lost."""


@shards.command(name="status")
@_where
@json_option
def shards_status(where: Where, as_json: bool) -> None:
    """The topology the cluster routes by, and any move under way."""

    async def go() -> dict[str, Any]:
        coordinator = Coordinator(Topology.of_spec(where.spec), access=where.access)
        try:
            state = await coordinator.state()
        finally:
            await coordinator.close()
        return _describe(state.current, state.describe())

    emit(run(go()), as_json, _render)


@shards.command(name="pin")
@_where
@json_option
def shards_pin(where: Where, as_json: bool) -> None:
    """Install the current topology on every shard that has none (idempotent). Do it before
    a deployment's spec names a new shard (a Helm upgrade): routers and workers then keep
    routing by the installed topology until the new shard has joined."""
    topology = _move(where, False, lambda c: c.install_current())
    emit({"epoch": topology.epoch, "shards": list(topology.ids)}, as_json, _done)


@shards.command(name="add")
@_where
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="ID,RAFT,HTTP",
    help="a member of the new shard (with --spec; repeat per member), e.g. s2-n0,10.0.0.7:7000,10.0.0.7:8000",
)
@click.option("--shard-id", type=click.IntRange(min=0), help="the new shard's id (with --spec)")
@_progress_option
@json_option
def shards_add(
    where: Where,
    nodes: tuple[str, ...],
    shard_id: int | None,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Add a shard and move to it the points the new ring gives it (about 1/(S+1))."""
    folder = where.folder
    if folder is not None:
        if nodes or shard_id is not None:
            raise CliError("--node and --shard-id go with --spec; `vecstore up` picks them itself")
        _move(where, False, lambda c: c.install_current())  # before spec.json names the new shard
        grown, new = grow_spec(folder)
        where = Where(grown, folder, where.access)
        note(f"starting shard {new.id} ({', '.join(n.id for n in new.nodes)}) under `vecstore up`")
    else:
        if not nodes or shard_id is None:
            raise CliError("with --spec, give the new shard's --shard-id and its members with --node")
        new = ShardSpec(shard_id, tuple(_parse_node(text) for text in nodes))
    topology = _move(where, progress, lambda c: c.add_shard(new), wait_for=new)
    emit({"epoch": topology.epoch, "shards": list(topology.ids)}, as_json, _done)


@shards.command(name="remove")
@click.argument("shard_id", type=click.IntRange(min=0))
@_where
@_progress_option
@json_option
def shards_remove(shard_id: int, where: Where, progress: bool | None, as_json: bool) -> None:
    """Drain shard SHARD_ID into the others, then drop it (its nodes stop under `vecstore up`)."""
    topology = _move(where, progress, lambda c: c.remove_shard(shard_id))
    if where.folder is not None:
        removed = shrink_spec(where.folder, shard_id)
        note(f"stopping shard {removed.id}'s nodes; their data folders are kept in {where.folder}")
    emit({"epoch": topology.epoch, "shards": list(topology.ids)}, as_json, _done)


@shards.command(name="resume")
@_where
@_progress_option
@json_option
def shards_resume(where: Where, progress: bool | None, as_json: bool) -> None:
    """Finish a move that was interrupted (every step is safe to repeat)."""
    topology = _move(where, progress, lambda c: c.resume())
    emit({"epoch": topology.epoch, "shards": list(topology.ids)}, as_json, _done)


@shards.command(name="abort")
@_where
@json_option
def shards_abort(where: Where, as_json: bool) -> None:
    """Roll back a move no shard has cut over to yet."""
    topology = _move(where, False, lambda c: c.abort())
    if where.folder is not None:
        for shard in where.spec.shards:
            if shard.id not in topology.ids and shard.id > max(topology.ids):
                shrink_spec(where.folder, shard.id)
                note(f"stopping shard {shard.id}'s nodes (it never joined)")
    emit({"epoch": topology.epoch, "shards": list(topology.ids)}, as_json, _done)


def _done(data: dict[str, Any]) -> str:
    return format_fields({"topology epoch": data["epoch"], "shards": data["shards"]})


def _parse_node(text: str) -> NodeSpec:
    parts = text.split(",")
    if len(parts) != 3 or not all(parts):
        raise CliError(f"--node {text!r}: expected ID,RAFT_HOST:PORT,HTTP_HOST:PORT")
    return NodeSpec(*parts)


def _move(
    where: Where,
    progress: bool | None,
    step: Callable[[Coordinator], Any],
    wait_for: ShardSpec | None = None,
) -> Topology:
    joined = tuple(s for s in where.spec.shards if wait_for is None or s.id != wait_for.id)
    seed = Topology.of_spec(ClusterSpec(joined, where.spec.router))

    async def go() -> Topology:
        if wait_for is not None:
            note(f"waiting for shard {wait_for.id} to elect a leader")
            try:
                await wait_for_leader(wait_for, where.access, LEADER_SECONDS)
            except TimeoutError:
                raise CliError(
                    f"shard {wait_for.id} elected no leader in {LEADER_SECONDS:.0f} s; "
                    "is `vecstore up` running?"
                ) from None
        with _bars(progress_disabled(progress)) as report:
            coordinator = Coordinator(seed, access=where.access, progress=report)
            try:
                topology: Topology = await step(coordinator)
            finally:
                await coordinator.close()
        return topology

    return run(go())


@click.command()
@click.argument("old")
@click.option(
    "--with",
    "new",
    metavar="ID,RAFT,HTTP",
    help="the new member (with --spec; start it when asked); `vecstore up` picks one itself",
)
@click.option(
    "--wait",
    "wait_seconds",
    metavar="SECONDS",
    type=click.FloatRange(min=1),
    default=REPLACE_WAIT_SECONDS,
    show_default=True,
    help="seconds to wait for the new member to catch up (a large shard's snapshot takes minutes)",
)
@_where
@_progress_option
@json_option
def replace(
    old: str, new: str | None, wait_seconds: float, where: Where, progress: bool | None, as_json: bool
) -> None:
    """Replace member OLD (a dead node) of its shard: add the new member, let it catch up
    from the leader's snapshot, remove OLD, and publish the members to routers."""
    folder = where.folder
    if folder is not None:
        if new is not None:
            raise CliError("--with goes with --spec; `vecstore up` picks the new member itself")
        member = new_member_spec(folder, old)
    else:
        if new is None:
            raise CliError("with --spec, name the new member: --with ID,RAFT_HOST:PORT,HTTP_HOST:PORT")
        member = _parse_node(new)

    async def start_new() -> None:
        if folder is not None:
            leaving = read_spec_file(folder / "spec.json").node(old)[1]
            swap_member_in_spec(folder, old, member)
            note(f"vecstore up stops {old} and starts {member.id} ({member.http})")
            await wait_stopped(leaving.http, STOP_SECONDS, where.access)  # then removed first
        else:
            note(f"start {member.id} now (raft {member.raft}, http {member.http}); waiting for it")

    topology = _move(where, progress, lambda c: c.replace_member(old, member, start_new, wait_seconds))
    shard = next(s for s in topology.shards if any(n.id == member.id for n in s.nodes))
    result = {"epoch": topology.epoch, "shard": shard.id, "members": [n.id for n in shard.nodes]}
    emit(result, as_json, format_fields)
