"""Creating topics explicitly, and checking that the topics a worker needs exist.

Topics are never left to broker auto-creation: their partition count decides how far
ingestion can be spread over workers, so it is chosen on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

TOPIC_ALREADY_EXISTS = 36


class MissingTopics(Exception):
    """Topics the worker needs do not exist on the broker."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = sorted(missing)
        names = ", ".join(self.missing)
        super().__init__(
            f"topics {names} do not exist; create them first: "
            "python -m vecstore.ingest create-topic --bootstrap HOST:PORT --topic NAME --partitions N"
        )


async def create_topic(bootstrap: str, topic: str, partitions: int, replication_factor: int = 1) -> bool:
    """Create `topic`; True if created, False if it already existed. Other errors raise."""
    if partitions < 1 or replication_factor < 1:
        raise ValueError("partitions and replication_factor must be at least 1")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vecstore-admin")
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, replication_factor)])
    finally:
        await admin.close()
    for entry in response.topic_errors:
        code = int(entry[1])
        if code == TOPIC_ALREADY_EXISTS:
            return False
        if code != 0:
            error: Any = for_code(code)
            raise error(f"creating topic {topic!r} failed: {entry[2] if len(entry) > 2 else code}")
    return True


def check_topics(existing: Iterable[str], needed: Iterable[str]) -> None:
    """Raise MissingTopics unless every needed topic exists."""
    missing = set(needed) - set(existing)
    if missing:
        raise MissingTopics(missing)
