"""The dead-letter topic: invalid records, unchanged, with why and where they came from.

A record goes there with its original key and value, and headers naming the error and
its original topic, partition and offset. Its batch's offsets are committed only after
the broker acknowledged the dead letter, so an invalid record is never silently lost
(after a crash it may be dead-lettered twice; readers can deduplicate on the headers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from vecstore.ingest.batcher import RejectedRecord

log = logging.getLogger(__name__)

HEADER_ERROR = "vecstore-error"
HEADER_CODE = "vecstore-error-code"
HEADER_TOPIC = "vecstore-topic"
HEADER_PARTITION = "vecstore-partition"
HEADER_OFFSET = "vecstore-offset"


def dead_letter_headers(record: RejectedRecord) -> list[tuple[str, bytes]]:
    """The headers of one dead letter."""
    return [
        (HEADER_ERROR, record.rejection.reason.encode()),
        (HEADER_CODE, record.rejection.code.encode()),
        (HEADER_TOPIC, record.topic.encode()),
        (HEADER_PARTITION, str(record.partition).encode()),
        (HEADER_OFFSET, str(record.offset).encode()),
    ]


class DeadLetters:
    """Sends rejected records to one topic through a started AIOKafkaProducer."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(self, records: Sequence[RejectedRecord]) -> None:
        """Send every record and wait until the broker acknowledged all of them."""
        futures = [
            await self.producer.send(
                self.topic, key=record.key, value=record.value, headers=dead_letter_headers(record)
            )
            for record in records
        ]
        await asyncio.gather(*futures)
