"""Reproducer (found by the chaos suite): a read that resolved its collection before a snapshot
was installed ran against the closed collection.

A follower installing the leader's dump closes and replaces every collection. A read that
had already looked its collection up then found ids whose sealed segments were gone: an
IndexError (HTTP 500) for `get`, or silently the pre-snapshot state for searches. Reads of
a closed collection now fail with a retriable error, and the retry reads the new state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.errors import Unavailable, VecStoreError
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.shard import reads, search
from vecstore.shard.collection import Collection
from vecstore.shard.state import Shard

ShardFactory = Callable[..., Shard]
DIM = 4


def loaded(shard: Shard) -> None:
    shard.apply(CreateCollection(CollectionSchema("c", DIM, Metric.L2)))
    vectors = np.arange(120 * DIM, dtype=np.float32).reshape(120, DIM)
    shard.apply(Upsert.build("c", list(range(120)), vectors, [{"n": i} for i in range(120)]))
    shard.maintain(seal=True, compact=False, force=True)  # most points now live in sealed segments
    assert shard.collection("c").sealed


@pytest.mark.parametrize(
    "read",
    [
        lambda c: reads.get(c, list(range(120))),
        lambda c: reads.scroll(c, limit=200, with_payload=True),
        reads.count,
        lambda c: search.search(c, np.zeros((1, DIM), dtype=np.float32), 5),
        lambda c: search.explain(c, 5, None),
    ],
    ids=["get", "scroll", "count", "search", "explain"],
)
def test_a_read_of_a_collection_replaced_by_a_snapshot_is_retriable(
    make_shard: ShardFactory, tmp_path: Path, read: Callable[[Collection], object]
) -> None:
    shard = make_shard()
    loaded(shard)
    shard.snapshot(tmp_path / "snapshot")
    stale = shard.collection("c")  # what a request holds while the dump is installed

    shard.restore(tmp_path / "snapshot")

    with pytest.raises(VecStoreError) as raised:
        read(stale)
    assert isinstance(raised.value, Unavailable) and raised.value.retriable
    assert len(reads.get(shard.collection("c"), list(range(120)))) == 120  # the retry's view
