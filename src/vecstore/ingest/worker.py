"""The ingest worker: an aiokafka consumer group member that writes batches into shards.

Poll a batch (by size and time), plan it (`batcher`), send each shard its one command
through that shard's ordered writer, dead-letter the invalid records, and commit Kafka
offsets only for batches every shard acknowledged. Correctness rests on the shards'
offset fence and on per-shard order, never on Kafka's committed offsets (docs/ingest.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from vecstore.cluster.credentials import NO_ACCESS, NodeAccess
from vecstore.cluster.errors import VecStoreError, WrongShard
from vecstore.cluster.spec import ClusterSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.ingest.batcher import BatchPlan, PolledRecord, RejectedRecord, plan_batch
from vecstore.ingest.dlq import DeadLetters
from vecstore.ingest.formats import value_format_named
from vecstore.ingest.ledger import OffsetLedger
from vecstore.ingest.metrics import IngestMetrics
from vecstore.ingest.producer import kafka_producer
from vecstore.ingest.schemas import SchemaCache
from vecstore.ingest.settings import WorkerSettings
from vecstore.ingest.shard_writer import ShardWriter
from vecstore.ingest.topics import check_topics
from vecstore.transport.node_client import NodeClient
from vecstore.transport.topology import newest_topology

log = logging.getLogger(__name__)

Position = tuple[str, int]
IDLE_POLL_MS = 500
RETRY_SECONDS = 1.0
TOPOLOGY_CHECK_SECONDS = 5.0
DLQ_PART = "dlq"


class IngestWorker:
    """One worker process's consume -> apply -> commit loop."""

    def __init__(
        self,
        settings: WorkerSettings,
        spec: ClusterSpec,
        metrics: IngestMetrics | None = None,
        access: NodeAccess = NO_ACCESS,
    ):
        self.settings = settings.validate()
        self.spec = spec
        self.access = access
        """What this worker presents to the nodes (the cluster's node token)."""
        self.metrics = metrics or IngestMetrics()
        self.value_format = value_format_named(
            self.settings.value_format,
            None if self.settings.avro_schema is None else Path(self.settings.avro_schema),
        )
        """How record values are encoded (None: JSON or msgpack, told apart per record)."""
        self.topology = Topology.of_spec(spec)
        """Routing: the spec's, replaced at start by the newest any shard holds. A shard that
        refuses a batch as not its own (after a resharding) stops the worker, whose restart
        routes by the new topology; the replayed records are fenced by offset."""
        self.ledger = OffsetLedger()
        self.generation = 0
        """Bumped when partitions are revoked; batches polled before it are never sent."""
        self.assigned: set[Position] = set()
        self.committed: dict[Position, int] = {}
        self.totals = dict.fromkeys(("consumed", "applied", "skipped", "rejected", "dead_lettered"), 0)
        self.ready = False
        self.failure: VecStoreError | None = None
        self._stop = asyncio.Event()
        self._abandon_now = False
        self._progress = asyncio.Event()
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._dead_letter_tasks: set[asyncio.Task[None]] = set()
        self._consumer: Any = None
        self._writers: dict[int, ShardWriter] = {}
        self._dead_letters: DeadLetters | None = None
        self._schemas: SchemaCache | None = None

    # ---- control ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop polling; in-flight batches get `shutdown_grace_seconds` to be acknowledged.
        A second call abandons them at once (their records are replayed later, and fenced)."""
        if self._stop.is_set():
            self._abandon_now = True
        self._stop.set()
        self._progress.set()

    async def run(self) -> None:
        """Consume until stopped; raises the shard error that stopped it, if any."""
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
            )
            self.topology = await self._load_topology(session)
            self._writers = {shard.id: self._writer(shard, session) for shard in self.topology.shards}
            every_node = [node.http for shard in self.topology.shards for node in shard.nodes]
            self._schemas = SchemaCache(
                NodeClient(every_node, session=session, deadline_seconds=5.0, access=self.access)
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.bootstrap,
                group_id=settings.group,
                client_id=settings.client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_records=settings.batch_max_records,
                fetch_max_wait_ms=min(settings.batch_max_ms, 500),
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            self._consumer = consumer
            needed = [*settings.topics, *([settings.dlq_topic] if settings.dlq_topic else [])]
            check_topics(await consumer.topics(), needed)
            if settings.dlq_topic:
                producer = await stack.enter_async_context(kafka_producer(settings.bootstrap, "vecstore-dlq"))
                self._dead_letters = DeadLetters(producer, settings.dlq_topic)
            await self._load_schemas()
            consumer.subscribe(list(settings.topics), listener=_Rebalance(self))
            for writer in self._writers.values():
                writer.start()
                stack.push_async_callback(writer.close)
            committer = asyncio.create_task(self._commit_loop(), name="ingest-commit")
            watcher = asyncio.create_task(self._watch_topology(session), name="ingest-topology")
            self.ready = True
            log.info(
                "ingest worker consuming",
                extra={"topics": ",".join(settings.topics), "group": settings.group},
            )
            try:
                await self._consume()
            finally:
                self.ready = False
                await self._finish()
                committer.cancel()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await committer
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        if self.failure is not None:
            raise self.failure

    def _writer(self, shard: ShardSpec, session: aiohttp.ClientSession) -> ShardWriter:
        shard_id = shard.id
        client = NodeClient(
            [node.http for node in shard.nodes],
            session=session,
            deadline_seconds=self.settings.shard_deadline_seconds,
            request_seconds=self.settings.shard_deadline_seconds,
            on_retry=self.metrics.shard_retries.labels(str(shard_id)).inc,
            access=self.access,
        )
        return ShardWriter(shard_id, client, self._on_ack, self._on_fatal)

    async def _load_topology(self, session: aiohttp.ClientSession) -> Topology:
        """The newest topology the shards hold (the spec's until one is reachable)."""
        while not self._stop.is_set():
            try:
                topology = await newest_topology(self.topology, self.access, session)
            except VecStoreError as err:
                log.warning("cannot read the topology; retrying", extra={"error": err.message})
                await self._sleep(RETRY_SECONDS)
                continue
            log.info("routing by topology epoch %d: shards %s", topology.epoch, list(topology.ids))
            return topology
        return self.topology

    async def _watch_topology(self, session: aiohttp.ClientSession) -> None:
        """Every few seconds, whether the shards hold a newer topology: a batch for a shard
        that was removed (and stopped) would otherwise be retried forever, never refused."""
        while not self._stop.is_set():
            await self._sleep(TOPOLOGY_CHECK_SECONDS)
            try:
                newest = await newest_topology(self.topology, self.access, session, deadline_seconds=2.0)
            except VecStoreError:
                continue
            if newest.epoch > self.topology.epoch:
                self._on_fatal(-1, WrongShard(f"the cluster moved to topology epoch {newest.epoch}"))
                return

    async def _load_schemas(self) -> None:
        assert self._schemas is not None
        while not self._stop.is_set():
            try:
                await self._schemas.refresh()
                return
            except VecStoreError as err:
                log.warning("cluster not reachable yet; retrying", extra={"error": err.message})
                await self._sleep(RETRY_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # ---- the loop -----------------------------------------------------------------------

    async def _consume(self) -> None:
        while not self._stop.is_set():
            await self._wait_for_room()
            if self._stop.is_set():
                return
            records, generation = await self._collect()
            if not records or self._stop.is_set():
                continue
            plan = await self._plan(records)
            # a rebalance while planning ended this assignment: its batches must not be sent
            if plan is not None and generation == self.generation and not self._stop.is_set():
                self._dispatch(plan)

    async def _wait_for_room(self) -> None:
        """Backpressure: poll again only when a full batch fits under max_in_flight."""
        limit = self.settings.max_in_flight - self.settings.batch_max_records
        while self.ledger.in_flight_records > limit and not self._stop.is_set():
            self._progress.clear()
            await self._progress.wait()

    async def _collect(self) -> tuple[list[PolledRecord], int]:
        """Poll until the batch is full by records or bytes, or batch_max_ms after its first record."""
        settings = self.settings
        records: list[PolledRecord] = []
        size = 0
        generation = self.generation
        deadline: float | None = None
        while not self._stop.is_set():
            wait_ms = IDLE_POLL_MS if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            polled = await self._consumer.getmany(
                timeout_ms=wait_ms, max_records=settings.batch_max_records - len(records)
            )
            if generation != self.generation:
                # partitions were revoked: what was gathered belongs to the old assignment
                records, size, deadline, generation = [], 0, None, self.generation
            for batch in polled.values():
                records.extend(batch)
                size += sum(len(r.key or b"") + len(r.value or b"") for r in batch)
            if records and deadline is None:
                deadline = time.monotonic() + settings.batch_max_ms / 1000
            if (
                len(records) >= settings.batch_max_records
                or size >= settings.batch_max_bytes
                or (deadline is not None and time.monotonic() >= deadline)
            ):
                break
        self.totals["consumed"] += len(records)
        self.metrics.consumed.inc(len(records))
        return records, generation

    async def _plan(self, records: list[PolledRecord]) -> BatchPlan | None:
        """Plan a batch, refreshing schemas when records name unknown collections."""
        assert self._schemas is not None
        while not self._stop.is_set():
            plan = plan_batch(
                records,
                self.topology.ring,
                self._schemas.schemas,
                max_payload_bytes=self.settings.max_payload_bytes,
                value_format=self.value_format,
            )
            if not plan.unknown_collections:
                return plan
            try:
                if not await self._schemas.refresh_for(plan.unknown_collections):
                    return plan
            except VecStoreError as err:
                log.warning("cannot refresh schemas; retrying the batch", extra={"error": err.message})
                await self._sleep(RETRY_SECONDS)
        return None

    def _dispatch(self, plan: BatchPlan) -> None:
        """Hand a planned batch to the shard writers and the dead-letter topic. Synchronous,
        so a rebalance cannot come between the generation check and the hand-over."""
        parts: set[object] = {("shard", shard) for shard in plan.commands}
        if plan.rejected and self._dead_letters is not None:
            parts.add(DLQ_PART)
        batch_id = self.ledger.open(plan.next_offsets, parts, plan.records, time.monotonic())
        self.metrics.in_flight.set(self.ledger.in_flight_records)
        for shard, command in plan.commands.items():
            self._writers[shard].submit(batch_id, command)
        if plan.rejected:
            self._reject(batch_id, plan.rejected)
        if not parts:
            self._after_finish()

    def _reject(self, batch_id: int, rejected: tuple[RejectedRecord, ...]) -> None:
        self.totals["dead_lettered"] += len(rejected)
        self.metrics.records.labels("dead_lettered").inc(len(rejected))
        self.metrics.dead_letters.inc(len(rejected))
        first = rejected[0]
        log.warning(
            "invalid records in a batch; the first one",
            extra={
                "invalid": len(rejected),
                "dead_letter_topic": self.settings.dlq_topic,
                "topic": first.topic,
                "partition": first.partition,
                "offset": first.offset,
                "code": first.rejection.code,
                "error": first.rejection.reason,
            },
        )
        for record in rejected[1:]:
            log.debug(
                "invalid record",
                extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
            )
        if self._dead_letters is not None:
            task = asyncio.create_task(self._send_dead_letters(batch_id, rejected))
            self._dead_letter_tasks.add(task)
            task.add_done_callback(self._dead_letter_tasks.discard)

    async def _send_dead_letters(self, batch_id: int, rejected: tuple[RejectedRecord, ...]) -> None:
        assert self._dead_letters is not None
        while True:
            try:
                await self._dead_letters.send(rejected)
                break
            except KafkaError as err:
                log.warning("dead-letter topic unavailable; retrying", extra={"error": str(err)})
                await asyncio.sleep(RETRY_SECONDS)
        self.ledger.finish(batch_id, DLQ_PART)
        self._after_finish()

    # ---- acknowledgements and commits ---------------------------------------------------

    def _on_ack(self, batch_id: int, shard: int, result: dict[str, Any]) -> None:
        for part in result.get("partitions", []):
            rejected = part.get("rejected") or []
            self._count("applied", int(part.get("applied", 0)))
            self._count("skipped", int(part.get("skipped", 0)))
            self._count("rejected", len(rejected))
            for refused in rejected:
                log.warning(
                    "shard rejected an ingested record",
                    extra={
                        "shard": shard,
                        "topic": part.get("topic"),
                        "partition": part.get("partition"),
                        **refused,
                    },
                )
        self.ledger.finish(batch_id, ("shard", shard))
        self._after_finish()

    def _count(self, outcome: str, count: int) -> None:
        if count:
            self.totals[outcome] += count
            self.metrics.records.labels(outcome).inc(count)

    def _on_fatal(self, shard: int, error: VecStoreError) -> None:
        if isinstance(error, WrongShard):
            log.warning(
                "the cluster was resharded: stopping, so that the restarted worker routes by the "
                "new topology (unacknowledged records are replayed and fenced by offset)",
                extra={"shard": shard, "epoch": self.topology.epoch},
            )
        self.failure = error
        self._abandon_now = True
        self.stop()

    def _after_finish(self) -> None:
        released = self.ledger.release()
        now = time.monotonic()
        for batch in released.batches:
            self.metrics.acknowledged(batch.records, now - batch.opened_at)
        self.metrics.in_flight.set(self.ledger.in_flight_records)
        if released.offsets:
            self._commit_wanted.set()
        self._progress.set()

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self.commit()

    async def commit(self) -> None:
        """Commit every safe offset of an assigned partition that moved since the last commit.
        A failed commit only means more replay later; it is logged and counted."""
        async with self._commit_lock:
            offsets = {
                TopicPartition(*position): offset
                for position, offset in self.ledger.safe.items()
                if position in self.assigned and self.committed.get(position) != offset
            }
            if not offsets:
                return
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as err:
                log.warning("offset commit failed; those records will be replayed", extra={"error": str(err)})
                self.metrics.commits.labels("failed").inc()
                return
            self.metrics.commits.labels("ok").inc()
            for tp, offset in offsets.items():
                self.committed[(tp.topic, tp.partition)] = offset

    async def _drain(self, seconds: float) -> bool:
        """Wait up to `seconds` for every dispatched batch to be acknowledged."""
        deadline = time.monotonic() + seconds
        while len(self.ledger) and not self._abandon_now and time.monotonic() < deadline:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), max(0.0, deadline - time.monotonic()))
        return not len(self.ledger)

    async def _abandon(self) -> None:
        """Forget unacknowledged batches: nothing queued behind them is ever sent."""
        dropped = self.ledger.abandon()
        for writer in self._writers.values():
            await writer.abandon()
        for task in list(self._dead_letter_tasks):
            task.cancel()
        self.metrics.in_flight.set(0)
        if dropped:
            log.info(
                "abandoned unacknowledged batches; their records will be replayed", extra={"batches": dropped}
            )

    async def _finish(self) -> None:
        drained = await self._drain(self.settings.shutdown_grace_seconds)
        await self.commit()
        if not drained:
            await self._abandon()

    # ---- rebalances ---------------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        """Partitions leave this worker: finish what is nearly done, commit it, drop the rest."""
        positions = {(tp.topic, tp.partition) for tp in revoked}
        if not positions:
            return  # the first join of the group revokes nothing
        self.generation += 1
        self.metrics.rebalances.inc()
        log.info("partitions revoked", extra={"batches_in_flight": len(self.ledger)})
        await self._drain(self.settings.session_timeout_ms / 2000)
        await self.commit()
        await self._abandon()
        self.assigned -= positions
        self.ledger.forget(positions)
        for topic, partition in positions:
            self.committed.pop((topic, partition), None)
            for gauge in (self.metrics.lag, self.metrics.safe_offset):
                with contextlib.suppress(KeyError):
                    gauge.remove(topic, str(partition))

    async def on_assigned(self, assigned: Iterable[Any]) -> None:
        """Partitions join this worker. aiokafka gives every new assignment fresh positions,
        fetched from the committed offsets (or the log start), so consumption resumes where
        everything before is applied; seeking here again would only replay records that
        may already be polled. Only the committed offsets are recorded, for status and lag."""
        partitions = [(tp, (tp.topic, tp.partition)) for tp in assigned]
        self.assigned.update(position for _, position in partitions)
        for tp, position in partitions:
            committed = await self._consumer.committed(tp)
            if committed is not None:
                self.committed.setdefault(position, committed)
                self.ledger.safe[position] = max(self.ledger.safe.get(position, -1), committed)
        log.info("partitions assigned", extra={"partitions": sorted(self.assigned)})

    # ---- observation --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The worker's status document (served at /v1/status)."""
        partitions = []
        for topic, partition in sorted(self.assigned):
            highwater = self._highwater((topic, partition))
            safe = self.ledger.safe.get((topic, partition))
            partitions.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "safe_offset": safe,
                    "committed": self.committed.get((topic, partition)),
                    "highwater": highwater,
                    "lag": None if highwater is None else highwater - (safe or 0),
                }
            )
        return {
            "group": self.settings.group,
            "ready": self.ready,
            "generation": self.generation,
            "partitions": partitions,
            "records": dict(self.totals),
            "in_flight_records": self.ledger.in_flight_records,
            "batches_in_flight": len(self.ledger),
            "records_per_second": round(self.metrics.rate.rate(), 1),
        }

    def refresh_gauges(self) -> None:
        """Copy lag and safe offsets into the gauges before a scrape."""
        for row in self.status()["partitions"]:
            labels = (row["topic"], str(row["partition"]))
            if row["lag"] is not None:
                self.metrics.lag.labels(*labels).set(row["lag"])
            if row["safe_offset"] is not None:
                self.metrics.safe_offset.labels(*labels).set(row["safe_offset"])

    def _highwater(self, position: Position) -> int | None:
        if self._consumer is None:
            return None
        try:
            value = self._consumer.highwater(TopicPartition(*position))
        except IllegalStateError:
            return None
        return None if value is None else int(value)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards aiokafka's rebalance callbacks to the worker."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.worker.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.worker.on_assigned(assigned)
