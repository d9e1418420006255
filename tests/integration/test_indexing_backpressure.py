"""Backpressure: a leader holds new points while too many vectors wait for HNSW.

Searches score unindexed vectors exactly, so their number bounds what a search costs while
replicas index. A 3-node shard group with a small `VECSTORE_MAX_UNINDEXED_BYTES` and a slow
graph takes writes faster than it indexes them: writes are held (the metric counts them),
the backlog every node reports stays near the bound, and every acknowledged point is found.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.integration.conftest import NODE_READY_SECONDS, SECRET, TEST_ENV, wait_converged
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema, HnswConfig
from vecstore.launcher.processes import LocalShardGroup
from vecstore.launcher.readiness import readyz_url, wait_ready
from vecstore.transport.node_client import NodeClient

DIM = 128
LIMIT_ROWS = 300
BATCH = 150
WRITERS = 3
BATCHES = 24
# a wide, slow graph: each node indexes far slower than the writers send
SLOW = HnswConfig(connectivity=32, expansion_add=1_000, expansion_search=64)


@pytest.fixture
def slow_group(tmp_path: Path) -> Iterator[LocalShardGroup]:
    env = {
        **TEST_ENV,
        "VECSTORE_SEAL_THRESHOLD": "100000",
        "VECSTORE_MAX_UNINDEXED_BYTES": str(LIMIT_ROWS * DIM * 4),
    }
    group = LocalShardGroup(tmp_path / "group", replicas=3, secret=SECRET, extra_env=env)
    group.start()
    try:
        for address in group.http_addresses:
            wait_ready(readyz_url(address), NODE_READY_SECONDS)
        yield group
    finally:
        group.stop()


async def held_writes(address: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/metrics") as response:
        text = await response.text()
    match = re.search(r"^vecstore_write_backpressure_total (\S+)$", text, re.MULTILINE)
    assert match is not None, "the node exports vecstore_write_backpressure_total"
    return float(match.group(1))


async def test_writes_wait_for_the_indexer_and_every_point_is_found(slow_group: LocalShardGroup) -> None:
    vectors = np.random.default_rng(3).normal(size=(BATCH * BATCHES, DIM)).astype(np.float32)
    addresses = slow_group.http_addresses
    async with NodeClient(addresses, deadline_seconds=120, access=slow_group.access) as client:
        leader = await client.find_leader()
        await client.apply(CreateCollection(CollectionSchema("docs", DIM, hnsw=SLOW)))
        observed: list[int] = []
        writing = True

        async def watch() -> None:
            while writing:
                observed.append((await client.status(leader))["indexing_lag"])
                await asyncio.sleep(0.02)

        batches = iter(range(BATCHES))

        async def writer() -> None:
            for number in batches:
                rows = range(number * BATCH, (number + 1) * BATCH)
                await client.apply(Upsert.build("docs", list(rows), vectors[rows.start : rows.stop]))

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(writer() for _ in range(WRITERS)))
        writing = False
        await watcher

        assert await held_writes(leader) > 0
        # a writer that passes the check adds its batch: the leader's backlog never exceeds the
        # bound by more than one batch per concurrent writer
        assert max(observed) <= LIMIT_ROWS + WRITERS * BATCH
        await wait_converged(client, slow_group.http_addresses, timeout=120)
        assert await client.count("docs", consistency="strong") == BATCH * BATCHES
        sample = np.arange(0, BATCH * BATCHES, 97)
        for address in slow_group.http_addresses:  # every replica finds every sampled point
            async with NodeClient([address], access=slow_group.access) as member:
                for row in sample.tolist():
                    [hits] = await member.search("docs", [vectors[row].tolist()], 1)
                    assert hits[0]["id"] == row
