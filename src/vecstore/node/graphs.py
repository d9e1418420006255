"""Graphs built once, the node's side (`vecstore.shard.graphs` is the shard's): every node
ships the graphs it has published (`POST /v1/collections/{name}/graph`), and a follower's
indexer fetches them from its leader (`LeaderGraphs`) instead of building its own.

The body is usearch's own serialisation (no pickle), sent only to callers that present the
node token (the node API's middleware), and a follower checks every key and a sample of the
vectors against its own rows before searching it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.errors import InvalidRequest
from vecstore.cluster.tls import CA_ENV
from vecstore.node.config import NodeConfig
from vecstore.shard.graphs import GraphAsk, ShippedGraph, Verdict
from vecstore.shard.state import Shard

log = logging.getLogger(__name__)

GRAPH_PATH = "/v1/collections/{name}/graph"
ROWS_HEADER = "X-Vecstore-Graph-Rows"
VERDICT_HEADER = "X-Vecstore-Graph"
FETCH_TIMEOUT_SECONDS = 30.0
"""Per socket operation (urllib's timeout), not for the whole transfer."""
SPOOL_BYTES = 64 << 20
"""A graph larger than this is written to disk as it arrives instead of read into memory."""
SPOOL_CHUNK = 1 << 20
WARN_EVERY_SECONDS = 60.0


def parse_ask(collection: str, body: dict[str, Any]) -> GraphAsk:
    """A graph request's body: {"key_lo": int, "min_rows": int, "key_hi": int | null,
    "merged": bool (optional)}."""
    values: dict[str, int | None] = {}
    for field in ("key_lo", "min_rows", "key_hi"):
        value = body.get(field)
        if value is None and field == "key_hi":
            values[field] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidRequest(f"{field!r} must be a non-negative integer")
        values[field] = value
    key_lo, min_rows, key_hi = values["key_lo"], values["min_rows"], values["key_hi"]
    assert key_lo is not None and min_rows is not None
    merged = body.get("merged", False)
    if not isinstance(merged, bool) or (merged and key_hi is None):
        raise InvalidRequest("'merged' must be a boolean, and a merged graph needs 'key_hi'")
    return GraphAsk(collection, key_lo, min_rows, key_hi, merged)


async def ship_graph(
    shard: Shard, run: Callable[..., Any], collection: str, body: dict[str, Any]
) -> web.StreamResponse:
    """Answer a follower: the graph (200, octet-stream, rows in a header) or a verdict (204)."""
    ask = parse_ask(collection, body)
    answer = await run(lambda: shard.graph_for(ask))
    if isinstance(answer, Verdict):
        return web.Response(status=204, headers={VERDICT_HEADER: answer.value})
    headers = {ROWS_HEADER: str(answer.rows), "Content-Type": "application/octet-stream"}
    if isinstance(answer.data, Path):  # a kept segment graph: sent from disk, never read whole
        return web.FileResponse(answer.data, headers=headers)
    return web.Response(body=answer.data, headers=headers)


def graph_access(config: NodeConfig) -> NodeAccess:
    """How this node reaches its leader: the node token of its cluster secret, over TLS
    verified with VECSTORE_TLS_CA_FILE when its nodes serve HTTPS."""
    ca_file = os.environ.get(CA_ENV) or None if config.tls_cert_file else None
    try:
        return NodeAccess.of_secret(config.cluster_secret, ca_file)
    except (OSError, ValueError) as err:  # an unusable CA file: graphs are built here instead
        log.warning("cannot use the CA file to fetch graphs from the leader", extra={"error": str(err)[:200]})
        return NodeAccess.of_secret(config.cluster_secret)


class LeaderGraphs:
    """A follower's graph source: asks the leader this node knows (blocking: it runs in the
    indexer thread). BUILD when this node leads, no leader is known, or the leader did not
    answer."""

    def __init__(
        self,
        is_leader: Callable[[], bool],
        leader_http: Callable[[], str | None],
        access: NodeAccess,
        spool: Path | None = None,
    ) -> None:
        """`spool`: where graphs over SPOOL_BYTES are written as they arrive (emptied here)."""
        self._is_leader = is_leader
        self._leader_http = leader_http
        self._access = access
        self._spool = spool
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)  # graphs a previous run left unloaded
            spool.mkdir(parents=True, exist_ok=True)
        self._warned = 0.0
        self.shipped_bytes = 0
        """Bytes of graphs received so far."""

    def __call__(self, ask: GraphAsk) -> ShippedGraph | Verdict:
        if self._is_leader():
            return Verdict.BUILD
        leader = self._leader_http()
        if leader is None:
            return Verdict.BUILD
        url = self._access.url(leader) + GRAPH_PATH.format(name=ask.collection)
        fields = {"key_lo": ask.key_lo, "min_rows": ask.min_rows, "key_hi": ask.key_hi, "merged": ask.merged}
        body = json.dumps(fields).encode()
        request = urllib.request.Request(  # noqa: S310 - a node URL built from the cluster spec
            url, data=body, headers={"Content-Type": "application/json", **self._access.headers()}
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=FETCH_TIMEOUT_SECONDS, context=self._access.tls
            ) as response:
                if response.status == 204:
                    return Verdict(response.headers.get(VERDICT_HEADER, Verdict.BUILD.value))
                rows = int(response.headers[ROWS_HEADER])
                size = int(response.headers.get("Content-Length") or 0)
                if self._spool is not None and size > SPOOL_BYTES:
                    return self._spooled(response, rows)
                data = response.read()
        except (OSError, ValueError, KeyError) as err:  # urllib's errors are OSErrors
            self._warn(leader, err)
            return Verdict.BUILD
        self.shipped_bytes += len(data)
        return ShippedGraph(rows, data)

    def _spooled(self, response: Any, rows: int) -> ShippedGraph:
        """A large graph written to a file as it arrives (the collection loads it, then
        `release` deletes it): never held whole in memory twice."""
        assert self._spool is not None
        handle, name = tempfile.mkstemp(dir=self._spool, suffix=".usearch")
        try:
            with os.fdopen(handle, "wb") as out:
                shutil.copyfileobj(response, out, SPOOL_CHUNK)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        path = Path(name)
        self.shipped_bytes += path.stat().st_size
        return ShippedGraph(rows, path, temporary=True)

    def _warn(self, leader: str, err: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            log.warning(
                "could not fetch a graph from the leader; building graphs here",
                extra={"leader": leader, "error": str(err)[:200]},
            )
