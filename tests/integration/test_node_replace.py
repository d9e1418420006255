"""`node replace` (Coordinator.replace_member) of a dead member on a real 3-node shard group,
when its successor cannot acknowledge anything for longer than a request's deadline, as a
new member installing a large shard's snapshot cannot (minutes at a million points)."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import wait_converged
from tests.integration.test_raft_node import create, upsert
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.launcher.processes import LocalShardGroup, ManagedProcess
from vecstore.reshard.coordinator import Coordinator
from vecstore.reshard.members import members
from vecstore.transport.node_client import NodeClient

REQUEST_SECONDS = 4.0
"""The coordinator's deadline per request (30 s by default; shortened to keep the test short)."""
SILENT_SECONDS = 3 * REQUEST_SECONDS
"""How long the new member stays silent after it is asked for: longer than any one request."""


def node_spec(node: ManagedProcess) -> NodeSpec:
    return NodeSpec(node.node_id, node.raft_address, node.http_address)


async def test_a_dead_member_is_replaced_by_one_slow_to_catch_up(
    shard_group: LocalShardGroup, client: NodeClient
) -> None:
    await create(client)
    for start in range(0, 300, 50):
        await upsert(client, list(range(start, start + 50)))
    leader = await client.find_leader()
    old = next(n for n in shard_group.nodes if n.http_address != leader)
    old.kill()
    newcomer = shard_group.new_member()
    spec = ShardSpec(0, tuple(node_spec(n) for n in shard_group.nodes[:3]))
    new = node_spec(newcomer)

    async def start_new() -> None:  # the operator starts it late; or its snapshot takes minutes
        asyncio.get_running_loop().call_later(SILENT_SECONDS, newcomer.start)

    seed = Topology(0, (spec,))
    coordinator = Coordinator(seed, access=shard_group.access, request_seconds=REQUEST_SECONDS)
    try:
        target = await coordinator.replace_member(old.node_id, new, start_new, ready_seconds=120)
    finally:
        await coordinator.close()
    remaining = [n for n in shard_group.nodes if n is not old]
    assert [n.id for n in target.shards[0].nodes] == [n.node_id for n in remaining]
    seen = await members(client)
    assert old.raft_address not in seen and newcomer.raft_address in seen
    assert all(seen[n.raft_address] for n in remaining)  # every member connected to the leader
    await upsert(client, list(range(300, 350)))  # the group of three commits writes again
    digests = await wait_converged(client, [n.http_address for n in remaining], timeout=60)
    assert len(set(digests.values())) == 1
    assert (await client.status(newcomer.http_address))["collections"]["docs"]["points"] == 350
