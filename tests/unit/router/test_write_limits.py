"""Each part of a multi-shard write against its shard's limits, before anything is sent."""

from __future__ import annotations

import pytest

from vecstore.cluster.commands import Upsert
from vecstore.cluster.errors import PayloadTooLarge
from vecstore.router.write_limits import ShardLimits, check_parts


def upsert(count: int, pad: int) -> Upsert:
    return Upsert.build("c", list(range(count)), [[0.0, 1.0]] * count, [{"pad": "p" * pad}] * count)


def test_limits_come_from_the_node_status() -> None:
    status = {"limits": {"max_command_bytes": 1024, "max_payload_bytes": 512}}
    assert ShardLimits.of_status(status) == ShardLimits(1024, 512)
    assert ShardLimits.of_status({}) is None
    assert ShardLimits.of_status({"limits": {"max_command_bytes": "big"}}) is None


def test_the_part_a_shard_would_refuse_is_named() -> None:
    limits = {0: ShardLimits(4096, 65536), 1: ShardLimits(4096, 100)}
    check_parts({0: upsert(3, 50), 1: upsert(1, 10)}, limits)
    with pytest.raises(PayloadTooLarge) as over_command:
        check_parts({0: upsert(10, 500), 1: upsert(1, 10)}, limits)
    assert over_command.value.details == {"shard": 0, "partial": False}
    with pytest.raises(PayloadTooLarge) as over_payload:
        check_parts({0: upsert(1, 10), 1: upsert(1, 200)}, limits)
    assert over_payload.value.details["shard"] == 1
    check_parts({0: upsert(1, 10), 7: upsert(10, 5000)}, limits)  # shard 7: limits unknown
