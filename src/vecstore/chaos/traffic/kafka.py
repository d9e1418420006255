"""A Kafka producer client: versioned upserts and deletes of its own keys, through the topic.

Records are keyed by point id, so every version of a key lands in one partition, in
order; the log itself is then the truth the validators read back. The producer waits for
each acknowledgement (acks=all), one record at a time, and records where it landed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaError

from vecstore.chaos.model.keyspace import payload_for, vector_for
from vecstore.chaos.traffic.history import History, Outcome, Produced, WriteKind
from vecstore.ingest.producer import kafka_producer
from vecstore.ingest.records import encode_record

log = logging.getLogger(__name__)

KAFKA_KEY_BASE = 900_000_000
"""Kafka keys start here, far from every HTTP writer's keys."""
SEND_SECONDS = 30.0


class KafkaWriter:
    """Produces records of its own keys, one acknowledged send at a time."""

    def __init__(
        self,
        name: str,
        number: int,
        bootstrap: Callable[[], str],
        topic: Callable[[], str],
        collection: str,
        history: History,
        rng: random.Random,
        pause: float = 0.02,
        new_key_share: float = 0.3,
        delete_share: float = 0.12,
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.topic = topic
        self.collection = collection
        self.history = history
        self.rng = rng
        self.pause = pause
        self.new_key_share = new_key_share
        self.delete_share = delete_share
        self.versions: dict[int, int] = {}
        self.keys: list[int] = []
        self._next_key = KAFKA_KEY_BASE + number * 1_000_000

    def next_write(self) -> tuple[int, WriteKind]:
        """The key to write next and whether to upsert or delete it."""
        if not self.keys or self.rng.random() < self.new_key_share:
            self._next_key += 1
            self.keys.append(self._next_key)
            return self._next_key, WriteKind.UPSERT
        key = self.rng.choice(self.keys)
        return key, WriteKind.DELETE if self.rng.random() < self.delete_share else WriteKind.UPSERT

    async def run(self, stop: asyncio.Event) -> None:
        """Produce until `stop` is set; reconnects if the producer fails."""
        while not stop.is_set():
            try:
                async with kafka_producer(self.bootstrap(), client_id=self.name) as producer:
                    await self._produce(producer, stop)
            except (KafkaError, OSError) as err:
                log.warning("producer %s failed: %r; reconnecting", self.name, err)
                await asyncio.sleep(0.5)

    async def _produce(self, producer: Any, stop: asyncio.Event) -> None:
        send = producer.send
        while not stop.is_set():
            key, kind = self.next_write()
            version = self.versions.get(key, 0) + 1
            self.versions[key] = version
            produced = Produced(key, version, kind, None, None, time.monotonic())
            self.history.produced.append(produced)
            if kind is WriteKind.UPSERT:
                record = encode_record(
                    self.collection,
                    "upsert",
                    key,
                    vector=vector_for(key, version),
                    payload=payload_for(key, version, self.name),
                )
            else:
                record = encode_record(self.collection, "delete", key)
            try:
                future = await send(self.topic(), key=record[0], value=record[1])
                metadata = await asyncio.wait_for(future, SEND_SECONDS)
            except TimeoutError:
                History.finish(produced, Outcome.UNKNOWN)
                raise KafkaError("send not acknowledged in time") from None
            except KafkaError:
                History.finish(produced, Outcome.FAILED)
                raise
            produced.partition, produced.offset = int(metadata.partition), int(metadata.offset)
            History.finish(produced, Outcome.OK)
            await asyncio.sleep(self.pause)
