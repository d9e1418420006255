"""A shard's writer: strictly ordered, retried until acknowledged, abandoned cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vecstore.cluster.codec import decode_command
from vecstore.cluster.commands import DeletePoints, IngestBatch, IngestRecord, PartitionBatch, Selector
from vecstore.cluster.errors import InvalidRequest, NotLeader, Timeout, VecStoreError
from vecstore.ingest import shard_writer
from vecstore.ingest.shard_writer import ShardWriter
from vecstore.transport.node_client import NodeClient


def batch(offset: int) -> IngestBatch:
    record = IngestRecord(offset, DeletePoints("c", Selector.of_ids([offset])))
    return IngestBatch((PartitionBatch("t", 0, (record,)),))


class ScriptedClient(NodeClient):
    """Answers apply requests from a script of errors, recording what was sent."""

    def __init__(self, failures: list[VecStoreError]) -> None:
        super().__init__(["127.0.0.1:1"])
        self.failures = failures
        self.sent: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def request(self, pick: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        command = decode_command(kwargs["raw"])
        assert isinstance(command, IngestBatch)
        self.sent.append(command.partitions[0].records[0].offset)
        await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        return {"status": "ok", "partitions": []}


def never_fatal(shard: int, error: VecStoreError) -> None:
    pytest.fail(f"shard {shard} failed: {error.message}")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_writer, "RETRY_BASE_SECONDS", 0.001)


async def test_commands_go_out_in_order_and_failures_are_retried_first() -> None:
    client = ScriptedClient([Timeout("slow"), NotLeader(None)])
    acked: list[int] = []
    writer = ShardWriter(0, client, lambda batch_id, shard, result: acked.append(batch_id), never_fatal)
    writer.start()
    for batch_id in range(3):
        writer.submit(batch_id, batch(batch_id * 10))
    while len(acked) < 3:
        await asyncio.sleep(0.001)
    await writer.close()
    assert acked == [0, 1, 2]
    assert client.sent == [0, 0, 0, 10, 20]  # batch 0 twice more before batch 1 is sent


async def test_a_refused_command_stops_the_writer() -> None:
    client = ScriptedClient([InvalidRequest("no")])
    fatal: list[tuple[int, str]] = []
    writer = ShardWriter(
        1, client, lambda *_: pytest.fail("acked"), lambda s, e: fatal.append((s, e.message))
    )
    writer.start()
    writer.submit(0, batch(0))
    writer.submit(1, batch(1))
    while not fatal:
        await asyncio.sleep(0.001)
    await writer.close()
    assert fatal == [(1, "no")]
    assert client.sent == [0]


async def test_abandoning_drops_the_queue_and_the_command_in_flight() -> None:
    client = ScriptedClient([])
    client.gate.clear()
    acked: list[int] = []
    writer = ShardWriter(0, client, lambda batch_id, shard, result: acked.append(batch_id), never_fatal)
    writer.start()
    writer.submit(0, batch(0))
    writer.submit(1, batch(1))
    while not client.sent:
        await asyncio.sleep(0.001)
    await writer.abandon()
    client.gate.set()
    writer.submit(2, batch(2))
    while not acked:
        await asyncio.sleep(0.001)
    await writer.close()
    assert acked == [2]
    assert client.sent == [0, 2]
