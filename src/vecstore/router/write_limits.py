"""What one shard accepts in a write, as its nodes report it, and the check of every part
of a multi-shard write against its shard's limits before any part is sent: a part that one
shard would refuse then stops the whole request, and no shard applies anything.

Pure: the router's shard set fetches the limits (node status `limits`) and calls this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vecstore.cluster.codec import encode_command
from vecstore.cluster.commands import DEFAULT_MAX_PAYLOAD_BYTES, Command, Upsert, canonical_payload
from vecstore.cluster.errors import PayloadTooLarge, VecStoreError


@dataclass(frozen=True)
class ShardLimits:
    """A shard's write limits (its nodes' settings; equal on every replica)."""

    max_command_bytes: int
    """An encoded command above this is refused (node `max_command_bytes`)."""
    max_payload_bytes: int
    """A point's payload above this (canonical JSON) is refused (VECSTORE_MAX_PAYLOAD_BYTES)."""

    @classmethod
    def of_status(cls, status: Mapping[str, Any]) -> ShardLimits | None:
        """The limits in a node's status document (None from a node that does not say)."""
        limits = status.get("limits")
        if not isinstance(limits, dict):
            return None
        command, payload = limits.get("max_command_bytes"), limits.get("max_payload_bytes")
        if not isinstance(command, int) or not isinstance(payload, int):
            return None
        return cls(command, payload)


def check_parts(parts: Mapping[int, Command], limits: Mapping[int, ShardLimits]) -> None:
    """Raise what a shard would raise for its part (PayloadTooLarge), before anything is
    sent anywhere. Shards whose limits are unknown are not checked."""
    for shard in sorted(parts):
        limit = limits.get(shard)
        if limit is None:
            continue
        try:
            _check_part(parts[shard], limit)
        except VecStoreError as err:
            err.details.update({"shard": shard, "partial": False})
            raise


def _check_part(command: Command, limit: ShardLimits) -> None:
    if isinstance(command, Upsert) and limit.max_payload_bytes < DEFAULT_MAX_PAYLOAD_BYTES:
        for payload in command.payloads:  # the router already checked the default limit
            canonical_payload(payload, limit.max_payload_bytes)
    size = len(encode_command(command))
    if size > limit.max_command_bytes:
        raise PayloadTooLarge(
            f"this write's part for one shard is {size} bytes encoded; that shard accepts at most "
            f"{limit.max_command_bytes} per command (send smaller batches)"
        )
