"""`vecstore ingest produce`: records from a JSONL or .npy file into a topic.

Each record is keyed by its point id, so Kafka's default partitioner keeps every version
of a point in one partition, in order. The producer waits for every send (acks=all) and
is neither idempotent nor transactional: exactly-once is the shards' offset fence.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from vecstore.ingest.formats import ValueFormat
from vecstore.ingest.records import encode_record

log = logging.getLogger(__name__)

MAX_UNACKNOWLEDGED = 5_000
"""Sends awaiting the broker's acknowledgement before the producer waits (bounds memory)."""


@dataclass(frozen=True)
class OutgoingRecord:
    """One encoded record to produce."""

    key: bytes
    value: bytes


@asynccontextmanager
async def kafka_producer(bootstrap: str, client_id: str = "vecstore-producer") -> AsyncIterator[Any]:
    """A started AIOKafkaProducer that waits for all in-sync replicas; stopped on exit."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[OutgoingRecord],
    *,
    total: int | None = None,
    progress: bool = True,
) -> int:
    """Send `records` to `topic`; returns how many the broker acknowledged."""
    sent = 0
    async with kafka_producer(bootstrap) as producer:
        with tqdm(total=total, unit="rec", disable=not progress, desc=topic) as bar:
            pending: list[asyncio.Future[Any]] = []
            for record in records:
                pending.append(await producer.send(topic, key=record.key, value=record.value))
                if len(pending) >= MAX_UNACKNOWLEDGED:
                    sent += await _settle(pending, bar)
            sent += await _settle(pending, bar)
    return sent


async def _settle(pending: list[asyncio.Future[Any]], bar: Any) -> int:
    """Wait for every pending send (raising the first failure); returns how many."""
    count = len(pending)
    await asyncio.gather(*pending)
    pending.clear()
    bar.update(count)
    return count


def jsonl_records(path: Path, collection: str, value_format: str | ValueFormat) -> Iterator[OutgoingRecord]:
    """Records from a JSONL file: one object a line with `id` and, per `op` (default
    upsert), `vector`, `payload` or `keys`."""
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not JSON: {err}") from None
            if not isinstance(item, dict) or "id" not in item:
                raise ValueError(f"{path}:{number}: each line must be an object with an 'id'")
            key, value = encode_record(
                item.get("collection", collection),
                item.get("op", "upsert"),
                item["id"],
                vector=item.get("vector"),
                payload=item.get("payload"),
                keys=item.get("keys"),
                value_format=value_format,
            )
            yield OutgoingRecord(key, value)


def npy_records(
    path: Path,
    collection: str,
    value_format: str | ValueFormat,
    *,
    payloads: Path | None = None,
    start_id: int = 0,
) -> tuple[int, Iterator[OutgoingRecord]]:
    """(count, records) upserting the rows of a 2-D .npy file as ids start_id, start_id+1, ...;
    `payloads` is a JSONL file with one payload object per row."""
    matrix = np.load(path, mmap_mode="r")
    if matrix.ndim != 2:
        raise ValueError(f"{path} must hold a 2-D array of vectors, not shape {matrix.shape}")

    def generate() -> Iterator[OutgoingRecord]:
        payload_lines = payloads.open() if payloads is not None else None
        try:
            for row in range(matrix.shape[0]):
                payload = _next_payload(payload_lines, payloads, row) if payload_lines else None
                key, value = encode_record(
                    collection,
                    "upsert",
                    start_id + row,
                    vector=matrix[row],
                    payload=payload,
                    value_format=value_format,
                )
                yield OutgoingRecord(key, value)
        finally:
            if payload_lines is not None:
                payload_lines.close()

    return int(matrix.shape[0]), generate()


def _next_payload(lines: Iterator[str], path: Path | None, row: int) -> dict[str, Any]:
    line = next(lines, None)
    if line is None:
        raise ValueError(f"{path} has fewer payload lines than vectors (row {row} has none)")
    payload = json.loads(line)
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: line {row + 1} must be a JSON object")
    return payload
