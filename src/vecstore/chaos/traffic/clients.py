"""Clients that write versioned points and read them back through the router.

Each writer owns the keys it creates (all on one shard, so a stalled shard stalls only
its own writers) and writes one key at a time: version v+1 of a key is sent only after
the answer for version v. A writer never resends a version. When the client itself gives
up on a request (no answer at all), the key is retired: the router might still be
retrying it, so a later version could be overtaken.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from vecstore.chaos.model.keyspace import payload_for, vector_for
from vecstore.chaos.traffic.history import History, Outcome, WriteKind
from vecstore.cluster.hash_ring import ShardRing

log = logging.getLogger(__name__)

KEY_SPACE = 1_000_000
"""Keys of writer number w are w * KEY_SPACE + n."""
FAILURE_PAUSE_SECONDS = 0.1


@dataclass(frozen=True)
class TrafficShape:
    """How much traffic, and of which kind."""

    writers_per_shard: int = 2
    strong_readers: int = 2
    eventual_readers: int = 1
    keys_per_read: int = 4
    new_key_share: float = 0.3
    delete_share: float = 0.12
    client_timeout: float = 30.0
    """Longer than the router can spend on one request, so an answer nearly always comes."""
    pause_between_ops: float = 0.0
    eventual_read_pause: float = 0.02
    """Eventual reads are only checked for phantoms: pace them so they leave CPU to the cluster."""


@dataclass
class KeyStore:
    """The keys written so far, shared with readers (recent ones first in line)."""

    keys: list[int] = field(default_factory=list)

    def add(self, key: int) -> None:
        """Remember a newly written key."""
        self.keys.append(key)

    def sample(self, rng: random.Random, count: int) -> tuple[int, ...]:
        """Keys to read: mostly recently written ones, where staleness would show."""
        if not self.keys:
            return ()
        recent = self.keys[-200:]
        chosen = {rng.choice(recent) if rng.random() < 0.7 else rng.choice(self.keys) for _ in range(count)}
        return tuple(sorted(chosen))


class RouterClient:
    """Minimal JSON calls to the router; every failure becomes (None, reason)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: Callable[[], str], timeout: float) -> None:
        self.session = session
        self.base_url = base_url
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, method: str, path: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(answer, "") on 200; (None, reason) otherwise. Raises TimeoutError if no answer came."""
        try:
            async with self.session.request(
                method, f"{self.base_url()}{path}", json=body, timeout=self.timeout
            ) as response:
                text = await response.text()
                if response.status != 200:
                    return None, f"HTTP {response.status}: {text[:200]}"
                answer: dict[str, Any] = await response.json(content_type=None)
                return answer, ""
        except TimeoutError:
            raise  # aiohttp's read timeouts are ClientErrors too: no answer is not an error answer
        except aiohttp.ClientError as err:
            return None, f"{type(err).__name__}: {err}"


class Writer:
    """Writes keys of one shard, one at a time, each write carrying the key's next version."""

    def __init__(
        self,
        name: str,
        number: int,
        shard: int,
        ring: ShardRing,
        client: RouterClient,
        collection: str,
        history: History,
        keys: KeyStore,
        shape: TrafficShape,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.shard = shard
        self.ring = ring
        self.client = client
        self.collection = collection
        self.history = history
        self.keys = keys
        self.shape = shape
        self.rng = rng
        self.versions: dict[int, int] = {}
        self.live: list[int] = []
        self._next_candidate = number * KEY_SPACE

    def _new_key(self) -> int:
        while True:
            self._next_candidate += 1
            if self.ring.shard_for(self._next_candidate) == self.shard:
                return self._next_candidate

    def next_write(self) -> tuple[int, WriteKind]:
        """The key to write next and whether to upsert or delete it."""
        if not self.live or self.rng.random() < self.shape.new_key_share:
            key = self._new_key()
            self.live.append(key)
            self.keys.add(key)
            return key, WriteKind.UPSERT
        key = self.rng.choice(self.live)
        kind = WriteKind.DELETE if self.rng.random() < self.shape.delete_share else WriteKind.UPSERT
        return key, kind

    async def run(self, stop: asyncio.Event) -> None:
        """Write until `stop` is set."""
        while not stop.is_set():
            key, kind = self.next_write()
            version = self.versions.get(key, 0) + 1
            self.versions[key] = version
            write = self.history.begin_write(key, version, kind, self.name, self.shard)
            path = f"/v1/collections/{self.collection}/points"
            body: dict[str, Any]
            if kind is WriteKind.UPSERT:
                point = {
                    "id": key,
                    "vector": vector_for(key, version),
                    "payload": payload_for(key, version, self.name),
                }
                method, body = "PUT", {"points": [point]}
            else:
                method, path, body = "POST", path + "/delete", {"ids": [key]}
            try:
                answer, error = await self.client.call(method, path, body)
            except TimeoutError:
                History.finish(write, Outcome.UNKNOWN, "no answer before the client timeout")
                self.live.remove(key)  # the router may still be retrying this version
                continue
            if answer is not None:
                History.finish(write, Outcome.OK)
            else:
                History.finish(write, Outcome.FAILED, error)
                await asyncio.sleep(FAILURE_PAUSE_SECONDS)
            if self.shape.pause_between_ops:
                await asyncio.sleep(self.shape.pause_between_ops)


class Reader:
    """Reads a few recently written keys at one consistency level, recording versions found."""

    def __init__(
        self,
        name: str,
        consistency: str,
        client: RouterClient,
        collection: str,
        history: History,
        keys: KeyStore,
        shape: TrafficShape,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.consistency = consistency
        self.client = client
        self.collection = collection
        self.history = history
        self.keys = keys
        self.shape = shape
        self.rng = rng

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set."""
        while not stop.is_set():
            keys = self.keys.sample(self.rng, self.shape.keys_per_read)
            if not keys:
                await asyncio.sleep(0.05)
                continue
            read = self.history.begin_read(keys, self.consistency, self.name)
            body = {"ids": list(keys), "consistency": self.consistency, "with_payload": True}
            try:
                answer, error = await self.client.call(
                    "POST", f"/v1/collections/{self.collection}/points/get", body
                )
            except TimeoutError:
                History.finish(read, Outcome.UNKNOWN, "no answer before the client timeout")
                continue
            if answer is None:
                History.finish(read, Outcome.FAILED, error)
                await asyncio.sleep(FAILURE_PAUSE_SECONDS)
                continue
            found: dict[int, int | None] = dict.fromkeys(keys)
            for point in answer.get("points", []):
                payload = point.get("payload") or {}
                found[int(point["id"])] = int(payload.get("version", -1))
            read.found = found
            History.finish(read, Outcome.OK)
            pause = self.shape.pause_between_ops
            if self.consistency == "eventual":
                pause = max(pause, self.shape.eventual_read_pause)
            if pause:
                await asyncio.sleep(pause)
