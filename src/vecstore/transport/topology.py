"""Learning the cluster's current topology from its shards (ingest workers at start-up).

Each shard's leader reports the topology it fences writes by (`POST /v1/topology`); the
newest epoch among them, or the seed when no shard has one installed, is the one to route
by. Shards named by a newer topology than the seed are asked too.
"""

from __future__ import annotations

import logging

import aiohttp

from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.topology import Topology, newest_installed
from vecstore.transport.node_client import NodeClient

log = logging.getLogger(__name__)


async def newest_topology(
    seed: Topology,
    access: NodeAccess,
    session: aiohttp.ClientSession | None = None,
    deadline_seconds: float = 10.0,
) -> Topology:
    """The newest topology any reachable shard's leader holds; `seed` (the spec's) only when
    no shard has one installed: an installed topology beats the spec at the same epoch (the
    spec may already name a shard that is still joining). Unreachable shards are skipped."""
    installed: list[Topology] = []
    asked: set[int] = set()
    while True:
        todo = [shard for shard in newest_installed(seed, installed).shards if shard.id not in asked]
        if not todo:
            return newest_installed(seed, installed)
        for shard in todo:
            asked.add(shard.id)
            client = NodeClient(
                [n.http for n in shard.nodes],
                session=session,
                deadline_seconds=deadline_seconds,
                access=access,
            )
            try:
                answer = await client.read("/v1/topology", {}, "leader")
            except VecStoreError as err:
                log.warning("cannot read shard %d's topology: %s", shard.id, err.message)
                continue
            finally:
                # always: a shared session stays open, but this client's RPC connection must
                # go (left open, one leaked per check filled the session's pool within minutes
                # and the ingest worker then timed out connecting to every node)
                await client.close()
            ownership = answer.get("ownership")
            if ownership is not None:
                installed.append(Topology.from_dict(ownership["topology"]))
