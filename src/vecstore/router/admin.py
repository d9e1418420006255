"""`/v1/admin/shards`: resharding through the router (admin scope), as `vecstore shards` does.

The router cannot start processes: a new shard's nodes are started first (by the operator,
or the Helm chart after a values change), then `POST /v1/admin/shards` names them. The move
runs as a task of this router, one at a time (409 otherwise), and `GET /v1/admin/shards`
shows its progress. A router restarted mid-move loses only its view of the move: the move
itself is on the shards, and `POST /v1/admin/shards/resume` (or `vecstore shards resume`)
finishes it. These routes are left out of fuzzing (tests/integration/test_openapi_schemathesis.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from vecstore.cluster.errors import Conflict, InvalidRequest, VecStoreError
from vecstore.cluster.spec import NodeSpec, ShardSpec, check_address
from vecstore.cluster.topology import Topology
from vecstore.reshard.coordinator import ClusterState, Coordinator, wait_for_leader
from vecstore.router.auth import Scope
from vecstore.router.context import SHARDS, RouteInfo, add_route
from vecstore.router.operation import Operation
from vecstore.router.qdrant.schemas import INTEGER, STRING, Schema, array
from vecstore.transport.server import body_of, respond

log = logging.getLogger(__name__)

LEADER_SECONDS = 60.0


@dataclass
class Move:
    """The move this router runs (or ran last)."""

    kind: str
    shard: int | None
    started: float = field(default_factory=time.time)
    phase: str = "starting"
    done: int = 0
    total: int = 0
    finished: float | None = None
    error: str | None = None
    epoch: int | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether the move's task is still going."""
        return self.task is not None and not self.task.done()

    def describe(self) -> dict[str, Any]:
        """The move as the API shows it."""
        return {
            "kind": self.kind,
            "shard": self.shard,
            "state": "running" if self.running else ("failed" if self.error else "done"),
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "epoch": self.epoch,
        }


@dataclass
class Desk:
    """The router's one move slot."""

    move: Move | None = None


DESK = web.AppKey("reshard_desk", Desk)
Step = Callable[[Coordinator], Awaitable[Topology]]


def _coordinator(app: web.Application, move: Move) -> Coordinator:
    shards = app[SHARDS]

    def report(phase: str, done: int, total: int) -> None:
        move.phase, move.done, move.total = phase, done, total

    return Coordinator(shards.topology, access=shards.access, progress=report)


def _start(
    app: web.Application, kind: str, shard: int | None, step: Step, wait_for: ShardSpec | None
) -> Move:
    _check_busy(app)  # again: no await since, so two requests cannot both pass
    move = Move(kind, shard)

    async def run() -> None:
        coordinator = _coordinator(app, move)
        try:
            if wait_for is not None:
                move.phase = "waiting for the new shard's leader"
                await wait_for_leader(wait_for, app[SHARDS].access, LEADER_SECONDS)
            topology = await step(coordinator)
            move.epoch = topology.epoch
            move.phase = "done"
        except (VecStoreError, TimeoutError) as err:
            move.error = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
            log.warning("move failed", extra={"kind": kind, "error": move.error})
        except Exception as err:  # a task's failure must show in GET, not vanish with the task
            move.error = f"internal error: {type(err).__name__}: {err}"
            log.exception("move failed", extra={"kind": kind})
        finally:
            move.finished = time.time()
            await coordinator.close()
            with contextlib.suppress(VecStoreError):
                await app[SHARDS].refresh_topology()

    move.task = asyncio.get_running_loop().create_task(run(), name=f"reshard-{kind}")
    app[DESK].move = move
    return move


def _node(raw: object, position: int) -> NodeSpec:
    if not isinstance(raw, dict) or set(raw) != {"id", "raft", "http"}:
        raise InvalidRequest(f"nodes[{position}] must be an object with exactly 'id', 'raft' and 'http'")
    if not isinstance(raw["id"], str) or not raw["id"]:
        raise InvalidRequest(f"nodes[{position}].id must be a non-empty string")
    return NodeSpec(raw["id"], check_address(raw["raft"], "raft"), check_address(raw["http"], "http"))


async def _cluster(app: web.Application) -> ClusterState:
    """What the shards say now: the topology they route by and any move under way."""
    shards = app[SHARDS]
    coordinator = Coordinator(shards.topology, access=shards.access)
    try:
        return await coordinator.state()
    finally:
        await coordinator.close()


def _refuse_if_moving(state: ClusterState) -> None:
    if state.moving:
        epoch = state.pending.epoch if state.pending is not None else state.current.epoch
        raise Conflict(
            f"a move to epoch {epoch} is under way (started elsewhere or by a restarted router): "
            "POST /v1/admin/shards/resume finishes it"
            + ("" if state.behind else ", POST /v1/admin/shards/abort rolls it back")
        )


def _check_busy(app: web.Application) -> None:
    move = app[DESK].move
    if move is not None and move.running:
        raise Conflict(f"this router is already running a move ({move.kind}); see GET /v1/admin/shards")


async def _state(app: web.Application) -> dict[str, Any]:
    state = await _cluster(app)
    move = app[DESK].move
    return {
        "status": "ok",
        "epoch": state.current.epoch,
        "shards": [{"id": s.id, "nodes": [n.id for n in s.nodes]} for s in state.current.shards],
        "moving": state.moving,
        "cluster": state.describe(),
        "operation": None if move is None else move.describe(),
    }


async def shards_state(request: web.Request) -> web.Response:
    """GET /v1/admin/shards."""
    return respond(request, await _state(request.app))


async def add_shard(request: web.Request) -> web.Response:
    """POST /v1/admin/shards {"id": N, "nodes": [{"id", "raft", "http"}, ...]}."""
    _check_busy(request.app)
    body = await body_of(request)
    if set(body) != {"id", "nodes"}:
        raise InvalidRequest("the body must be {'id': N, 'nodes': [{'id', 'raft', 'http'}, ...]}")
    shard_id, nodes = body["id"], body["nodes"]
    if isinstance(shard_id, bool) or not isinstance(shard_id, int) or not 0 <= shard_id < 2**31:
        raise InvalidRequest(f"id must be a non-negative integer, got {shard_id!r}")
    if not isinstance(nodes, list) or not nodes:
        raise InvalidRequest("nodes must be a non-empty list of the new shard's started members")
    new = ShardSpec(shard_id, tuple(_node(raw, i) for i, raw in enumerate(nodes)))
    state = await _cluster(request.app)
    _refuse_if_moving(state)
    if shard_id in state.current.ids:
        raise Conflict(f"shard {shard_id} is already in the topology (epoch {state.current.epoch})")
    _check_members(new, state)
    move = _start(request.app, "add", shard_id, lambda c: c.add_shard(new), new)
    return respond(request, {"status": "accepted", "operation": move.describe()}, status=202)


def _check_members(new: ShardSpec, state: ClusterState) -> None:
    """The new members' ids and addresses are distinct, and none is a known node's."""
    taken: dict[str, str] = {}
    for shard in state.specs.values():
        for node in shard.nodes:
            for value in (node.id, node.raft, node.http):
                taken[value] = f"node {node.id} of shard {shard.id}"
    for node in new.nodes:
        for value in (node.id, node.raft, node.http):
            if value in taken:
                raise InvalidRequest(f"{value!r} of the new node {node.id} is already used by {taken[value]}")
            taken[value] = f"new node {node.id}"


async def remove_shard(request: web.Request) -> web.Response:
    """DELETE /v1/admin/shards/{id}: drain the shard into the others, then drop it."""
    _check_busy(request.app)
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidRequest(f"shard id must be a non-negative integer, got {raw!r}")
    shard_id = int(raw)
    state = await _cluster(request.app)
    _refuse_if_moving(state)
    state.current.without_shard(shard_id)  # InvalidRequest: not in the topology, or the last one
    move = _start(request.app, "remove", shard_id, lambda c: c.remove_shard(shard_id), None)
    return respond(request, {"status": "accepted", "operation": move.describe()}, status=202)


async def resume(request: web.Request) -> web.Response:
    """POST /v1/admin/shards/resume: finish an interrupted move."""
    move = _start(request.app, "resume", None, lambda c: c.resume(), None)
    return respond(request, {"status": "accepted", "operation": move.describe()}, status=202)


async def abort(request: web.Request) -> web.Response:
    """POST /v1/admin/shards/abort: roll back a move no shard has cut over to yet."""
    _check_busy(request.app)
    if (await _cluster(request.app)).behind:
        raise Conflict("the cutover has begun; only POST /v1/admin/shards/resume can finish the move")
    move = _start(request.app, "abort", None, lambda c: c.abort(), None)
    return respond(request, {"status": "accepted", "operation": move.describe()}, status=202)


STATE: Schema = {"type": "object", "properties": {"status": STRING, "epoch": INTEGER, "operation": {}}}
ERROR: Schema = {"type": "object", "properties": {"status": STRING, "error": STRING, "code": STRING}}
ACCEPTED: Schema = {"type": "object", "properties": {"status": STRING, "operation": {"type": "object"}}}
NEW_SHARD: Schema = {
    "type": "object",
    "properties": {
        "id": INTEGER,
        "nodes": array(
            {
                "type": "object",
                "properties": {"id": STRING, "raft": STRING, "http": STRING},
                "required": ["id", "raft", "http"],
            }
        ),
    },
    "required": ["id", "nodes"],
}


def _operation(
    method: str, path: str, summary: str, response: Schema, request: Schema | None = None
) -> Operation:
    return Operation(
        method, path, summary, "admin", response, ERROR, request, extra_statuses=((202, ACCEPTED),)
    )


ADMIN_ROUTES = (
    (
        _operation("GET", "/v1/admin/shards", "Topology, shard states and this router's move", STATE),
        shards_state,
    ),
    (
        _operation(
            "POST", "/v1/admin/shards", "Add a started shard and move its points to it", ACCEPTED, NEW_SHARD
        ),
        add_shard,
    ),
    (
        _operation(
            "DELETE", "/v1/admin/shards/{id}", "Drain a shard into the others, then drop it", ACCEPTED
        ),
        remove_shard,
    ),
    (_operation("POST", "/v1/admin/shards/resume", "Finish an interrupted move", ACCEPTED), resume),
    (_operation("POST", "/v1/admin/shards/abort", "Roll back a move not yet cut over", ACCEPTED), abort),
)


async def _stop_move(app: web.Application) -> None:
    """On shutdown: stop this router's move (it is resumable from where it stopped)."""
    move = app[DESK].move
    if move is not None and move.task is not None and not move.task.done():
        move.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await move.task


def add_routes(app: web.Application) -> None:
    """Register the admin routes (admin scope)."""
    app[DESK] = Desk()
    app.on_shutdown.append(_stop_move)
    for operation, handler in ADMIN_ROUTES:
        add_route(app, RouteInfo(operation.method, operation.path, Scope.ADMIN, operation), handler)
