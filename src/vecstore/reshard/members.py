"""Raft membership as a shard's leader sees it, and changes to it that survive a retry.

A membership change in pysyncobj takes effect on the leader when it is appended and counts
towards commits at once: adding a member to a group of three with one member dead makes a
group of four that needs three acknowledgements, the newcomer's among them, and a newcomer
acknowledges nothing until it has installed the leader's snapshot (minutes for a large
shard). Until then the leader refuses any other change (REQUEST_DENIED). So a dead member
is removed before its successor is added: each change then commits with the live members.
"""

from __future__ import annotations

from vecstore.cluster.errors import VecStoreError
from vecstore.transport.node_client import NodeClient


async def members(client: NodeClient) -> dict[str, bool]:
    """Raft address -> connected to the leader, for every member the shard's leader counts
    (the leader itself included, as connected)."""
    leader = await client.find_leader()
    status = await client.status(leader)
    seen = {str(peer["raft_address"]): bool(peer.get("connected")) for peer in status.get("peers", [])}
    own = (status.get("leader") or {}).get("raft_address")
    if isinstance(own, str):
        seen[own] = True
    return seen


async def change(client: NodeClient, action: str, raft_address: str) -> None:
    """Add or remove a member; done if the leader already counts it in (or out). A change
    whose acknowledgement was lost (a timeout) but which the leader holds is done too: it
    commits with the members that can acknowledge it."""
    wanted = action == "add"
    if (raft_address in await members(client)) == wanted:
        return
    try:
        await client.change_membership(action, raft_address)
    except VecStoreError as err:
        if not err.retriable or (raft_address in await members(client)) != wanted:
            raise
