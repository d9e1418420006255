"""Shard.dry_run: a payload change is judged exactly as apply would judge it, and changes nothing."""

from __future__ import annotations

import pytest

from tests.unit.shard.test_apply import create, fill
from vecstore.cluster.commands import DeletePayloadKeys, OverwritePayload, Selector, SetPayload
from vecstore.cluster.errors import CollectionNotFound, PayloadTooLarge
from vecstore.cluster.filters import parse_filter
from vecstore.shard.state import Shard

EVERYTHING = Selector.of_filter(parse_filter({"must": [{"key": "n", "range": {"gte": 0}}]}))


def test_a_change_that_fits_is_counted_and_not_applied(shard: Shard) -> None:
    create(shard)
    fill(shard, 10)
    before = shard.digest()
    answer = shard.dry_run(SetPayload("c", EVERYTHING, {"tag": "x"}))
    assert answer["would_update"] == 10
    assert shard.digest() == before
    assert shard.dry_run(DeletePayloadKeys("c", Selector.of_ids([1, 2, 99]), ("n",)))["would_update"] == 2


def test_the_dry_run_raises_what_apply_raises(shard: Shard) -> None:
    create(shard)
    fill(shard, 10)
    shard.apply(SetPayload("c", Selector.of_ids([3]), {"blob": "x" * 60_000}))
    before = shard.digest()
    overflow = SetPayload("c", EVERYTHING, {"more": "y" * 8_000})
    with pytest.raises(PayloadTooLarge):
        shard.dry_run(overflow)
    with pytest.raises(PayloadTooLarge):
        shard.apply(overflow)
    assert shard.digest() == before
    assert shard.dry_run(OverwritePayload("c", EVERYTHING, {"more": "y" * 8_000}))["would_update"] == 10
    with pytest.raises(CollectionNotFound):
        shard.dry_run(SetPayload("missing", EVERYTHING, {}))
