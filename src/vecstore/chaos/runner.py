"""Runs scenarios: a fresh cluster, traffic, fault streams, healing, then every validator.

One scenario = start a cluster, create the collection, start clients, inject faults for
the scenario's share of the time (one stream per shard, plus one for cluster-wide
failpoints), heal everything, let traffic run a little longer, stop it, wait for the
replicas to converge, read everything back and validate. The cluster is always stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from vecstore.chaos.cluster import ChaosCluster, ClusterShape
from vecstore.chaos.failpoint.base import Failpoint, FaultRecord, FaultTiming
from vecstore.chaos.failpoint.membership import restore_members
from vecstore.chaos.failpoint.reshard import settle_topology
from vecstore.chaos.model.keyspace import DIMENSION, KeyModel, Violation
from vecstore.chaos.scenario import Scenario, without_kafka
from vecstore.chaos.traffic.clients import KeyStore, Reader, RouterClient, TrafficShape, Writer
from vecstore.chaos.traffic.history import History
from vecstore.chaos.traffic.kafka import KafkaWriter
from vecstore.chaos.validate.availability import Availability, measure
from vecstore.chaos.validate.checks import (
    check_final_state,
    check_placement,
    check_reads,
    check_replicas_agree,
)
from vecstore.chaos.validate.convergence import ShardConvergence, wait_converged
from vecstore.chaos.validate.ingest import (
    IngestFigures,
    check_ingested_state,
    kafka_bootstrap,
    read_topic,
    wait_ingested,
)
from vecstore.chaos.validate.logs import audit_logs
from vecstore.chaos.validate.replicas import read_all_replicas, read_through_router
from vecstore.chaos.validate.search_index import check_search_index
from vecstore.cluster.hash_ring import ShardRing

log = logging.getLogger(__name__)

COLLECTION = "chaos"
CATEGORIES = {
    "lost": ("lost",),
    "duplicated": ("duplicate", "misplaced", "ingest_duplicate"),
    "divergent": ("divergent", "unconverged"),
    "stale_reads": ("stale_read", "future_read"),
    "other": ("phantom", "corrupt", "ingest_missing", "unavailable_after_heal", "node_error"),
}
EXAMPLES_PER_KIND = 20


def derive(rng: random.Random) -> random.Random:
    """An independent generator seeded from `rng` (one per client and fault stream)."""
    return random.Random(rng.random())  # noqa: S311 - reproducible schedules, not secrets


@dataclass(frozen=True)
class RunSettings:
    """Everything `make chaos` can tune."""

    workdir: Path
    duration: float = 1200.0
    """Seconds for the whole suite, setup and validation included."""
    scenarios: tuple[str, ...] = ()
    """Names to run (all when empty)."""
    seed: int = 0
    shape: ClusterShape = field(default_factory=ClusterShape)
    traffic: TrafficShape = field(default_factory=TrafficShape)
    fault_interval: float | None = None
    """Overrides every scenario's seconds between faults (per stream)."""
    hold: float | None = None
    """Overrides every scenario's partition hold time."""
    overhead: float = 35.0
    """Seconds a scenario spends outside its fault phase (start, heal, validate): an estimate."""
    min_fault_seconds: float = 10.0
    recovery_seconds: float = 3.0
    convergence_bound: float = 60.0
    ingest_bound: float = 90.0
    """Seconds after healing for the ingest worker to apply every record in the topic."""
    kafka_producers: int = 1
    keep: bool = False
    """Keep every scenario's data directory (they are kept anyway when something failed)."""


@dataclass
class ScenarioResult:
    """What one scenario did and found."""

    name: str
    description: str
    seconds: float = 0.0
    fault_seconds: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)
    availability: Availability = field(default_factory=Availability)
    convergence: list[ShardConvergence] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Problems of the harness itself (the cluster did not start, a failpoint crashed)."""
    skipped: str = ""
    workdir: str = ""
    ingest: IngestFigures | None = None

    def count(self, category: str) -> int:
        """Violations in one report column."""
        kinds = CATEGORIES[category]
        return sum(1 for v in self.violations if v.kind in kinds)

    @property
    def safe(self) -> bool:
        """No safety violation of any kind."""
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        """The JSON report entry."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for violation in self.violations:
            examples = by_kind.setdefault(violation.kind, [])
            if len(examples) < EXAMPLES_PER_KIND:
                examples.append({"key": violation.key, "detail": violation.detail})
        started = min((f.injected for f in self.faults), default=0.0)
        return {
            "name": self.name,
            "description": self.description,
            "skipped": self.skipped or None,
            "seconds": round(self.seconds, 1),
            "fault_seconds": round(self.fault_seconds, 1),
            "faults_injected": len(self.faults),
            "faults_by_failpoint": dict(Counter(f.failpoint for f in self.faults)),
            "counts": {category: self.count(category) for category in CATEGORIES},
            "violations_by_kind": dict(Counter(v.kind for v in self.violations)),
            "violation_examples": by_kind,
            "availability": vars(self.availability),
            "convergence": [vars(c) for c in self.convergence],
            "ingest": vars(self.ingest) if self.ingest is not None else None,
            "errors": self.errors,
            "workdir": self.workdir,
            "faults": [
                {
                    "failpoint": f.failpoint,
                    "target": f.target,
                    "shard": f.shard,
                    "at": round(f.injected - started, 2),
                    "lasted": round(f.healed - f.injected, 2) if f.healed is not None else None,
                    "detail": f.detail,
                }
                for f in self.faults
            ],
        }


def timing_for(scenario: Scenario, settings: RunSettings) -> FaultTiming:
    """The scenario's fault timing with the run's overrides applied."""
    timing = scenario.timing
    changes: dict[str, float] = {}
    if settings.fault_interval is not None:
        changes["interval"] = settings.fault_interval
    if settings.hold is not None:
        changes["hold"] = settings.hold
    return FaultTiming(**{**vars(timing), **changes}) if changes else timing


async def fault_stream(
    cluster: ChaosCluster,
    failpoints: Sequence[Failpoint],
    shard: int | None,
    rng: random.Random,
    timing: FaultTiming,
    deadline: float,
    result: ScenarioResult,
) -> None:
    """Inject faults one after another until the deadline, waiting for recovery in between."""
    while time.monotonic() < deadline:
        if shard is not None:
            await cluster.wait_healthy(shard, timing.recovery_wait)
        else:
            await cluster.wait_router(timing.recovery_wait)
        if time.monotonic() >= deadline:
            return
        failpoint = rng.choice(list(failpoints))
        try:
            record = await failpoint.inject(cluster, shard, rng, timing)
        except Exception as err:  # a harness bug: report it, keep the scenario going
            log.exception("failpoint %s crashed", failpoint.name)
            result.errors.append(f"failpoint {failpoint.name} crashed: {err!r}")
            record = None
        if record is None:
            await asyncio.sleep(0.3)
        else:
            result.faults.append(record)
        await asyncio.sleep(timing.interval)


async def heal_everything(cluster: ChaosCluster, within: float = 60.0) -> list[str]:
    """Open every link, resume every process, restore membership, restart what is down.

    Returns what could not be healed in time.
    """
    cluster.rules.heal()
    for process in cluster.local.processes:
        cluster.signal(process.name, signal.SIGCONT)
    problems: list[str] = []

    restored = await restore_members(cluster)
    if restored:
        log.info("re-added members %s", restored)
    problems += await settle_topology(cluster)
    for name in list(cluster.held):
        cluster.held.discard(name)
        await cluster.start_now(name)
    deadline = time.monotonic() + within
    for shard in range(cluster.shape.shards):
        healthy = await cluster.wait_healthy(shard, max(1.0, deadline - time.monotonic()))
        problems += [] if healthy else [f"shard {shard} not healthy {within:.0f}s after healing"]
    if not await cluster.wait_router(max(1.0, deadline - time.monotonic())):
        problems.append("router not ready after healing")
    return problems


async def create_collection(cluster: ChaosCluster, within: float = 60.0) -> None:
    """Create the chaos collection (l2, so stored vectors are exactly the written ones)."""
    deadline = time.monotonic() + within
    body = {"dimension": DIMENSION, "metric": "l2"}
    last = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with cluster.session.put(
                f"{cluster.router_url}/v1/collections/{COLLECTION}",
                json=body,
                timeout=aiohttp.ClientTimeout(total=20),
            ) as response:
                if response.status == 200:
                    return
                last = await response.text()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"could not create the chaos collection: {last}")


class Traffic:
    """The writers and readers of one scenario (and its Kafka producers, if it has a broker)."""

    def __init__(
        self, cluster: ChaosCluster, shape: TrafficShape, rng: random.Random, kafka_producers: int = 0
    ) -> None:
        self.history = History()
        self.stop = asyncio.Event()
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        client = RouterClient(self.session, lambda: cluster.router_url, shape.client_timeout)
        ring = ShardRing(cluster.shape.shards)
        keys = KeyStore()
        self.clients: list[Writer | Reader | KafkaWriter] = []
        for shard in range(cluster.shape.shards):
            for index in range(shape.writers_per_shard):
                number = 1 + shard * shape.writers_per_shard + index
                self.clients.append(
                    Writer(
                        f"w{number}",
                        number,
                        shard,
                        ring,
                        client,
                        COLLECTION,
                        self.history,
                        keys,
                        shape,
                        derive(rng),
                    )
                )
        levels = ["strong"] * shape.strong_readers + ["eventual"] * shape.eventual_readers
        for index, level in enumerate(levels):
            self.clients.append(
                Reader(
                    f"r{index}-{level}",
                    level,
                    client,
                    COLLECTION,
                    self.history,
                    keys,
                    shape,
                    derive(rng),
                )
            )
        kafka = kafka_bootstrap(cluster)
        for number in range(kafka_producers if kafka is not None else 0):
            self.clients.append(
                KafkaWriter(
                    f"k{number}",
                    number,
                    lambda: kafka_bootstrap(cluster)[0],  # type: ignore[index]
                    lambda: kafka_bootstrap(cluster)[1],  # type: ignore[index]
                    COLLECTION,
                    self.history,
                    derive(rng),
                )
            )
        self.tasks: list[asyncio.Task[None]] = []
        self.client_timeout = shape.client_timeout

    def start(self) -> None:
        """Start every client."""
        self.tasks = [asyncio.create_task(c.run(self.stop)) for c in self.clients]

    async def finish(self) -> None:
        """Stop the clients after their current operation (cancel them if it never ends)."""
        self.stop.set()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=self.client_timeout + 5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.history.stopped = time.monotonic()
        await self.session.close()


async def run_scenario(
    scenario: Scenario, settings: RunSettings, fault_seconds: float, rng: random.Random
) -> ScenarioResult:
    """Run one scenario end to end; the cluster is stopped whatever happens."""
    result = ScenarioResult(scenario.name, scenario.description, fault_seconds=fault_seconds)
    started = time.monotonic()
    workdir = settings.workdir / scenario.name
    shutil.rmtree(workdir, ignore_errors=True)
    result.workdir = str(workdir)
    shape = replace(settings.shape, with_kafka=scenario.kafka, spare_shards=scenario.spare_shards)
    cluster = ChaosCluster(workdir, shape, rng)
    traffic: Traffic | None = None
    try:
        await cluster.start()
        await create_collection(cluster)
        traffic = Traffic(cluster, settings.traffic, rng, settings.kafka_producers if scenario.kafka else 0)
        traffic.start()
        await asyncio.sleep(1.0)
        faults_started = time.monotonic()
        deadline = faults_started + fault_seconds
        timing = timing_for(scenario, settings)
        per_shard = [f for f in scenario.failpoints if f.per_shard]
        cluster_wide = [f for f in scenario.failpoints if not f.per_shard]
        streams = [
            fault_stream(cluster, per_shard, shard, derive(rng), timing, deadline, result)
            for shard in range(shape.shards)
            if per_shard
        ]
        if cluster_wide:
            streams.append(fault_stream(cluster, cluster_wide, None, derive(rng), timing, deadline, result))
        await asyncio.gather(*streams)
        result.errors += await heal_everything(cluster)
        if cluster.broker_died:
            result.errors.append("the Kafka broker died (its log is in memory): ingest checks are void")
        await asyncio.sleep(settings.recovery_seconds)
        await traffic.finish()
        result.availability = measure(
            traffic.history, shape.shards, faults_started, traffic.history.stopped or time.monotonic()
        )
        kafka_violations: list[Violation] = []
        if scenario.kafka:
            result.ingest, kafka_violations = await check_ingestion(cluster, settings.ingest_bound)
        result.convergence = [
            await wait_converged(cluster, shard, settings.convergence_bound) for shard in range(shape.shards)
        ]
        result.violations = kafka_violations + await validate(
            cluster, traffic.history, result.convergence, rng
        )
        write_stories(workdir / "violations.json", traffic.history, result.violations)
    except Exception as err:
        log.exception("scenario %s failed to run", scenario.name)
        result.errors.append(f"{type(err).__name__}: {err}")
    finally:
        if traffic is not None and not traffic.stop.is_set():
            await traffic.finish()
        await cluster.stop()
        result.violations += audit_logs(workdir / "logs")
        result.seconds = time.monotonic() - started
        if result.safe and not result.errors and not settings.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def write_stories(path: Path, history: History, violations: Sequence[Violation]) -> None:
    """For debugging: every violation with the full story (writes, reads) of its key."""
    if violations:
        stories = [
            {**v._asdict(), "story": history.key_story(v.key) if v.key is not None else []}
            for v in violations[:200]
        ]
        path.write_text(json.dumps(stories, indent=1))


async def check_ingestion(cluster: ChaosCluster, bound: float) -> tuple[IngestFigures, list[Violation]]:
    """Read the topic back, wait for the shards to apply all of it, check counters and state."""
    kafka = kafka_bootstrap(cluster)
    assert kafka is not None
    records = await read_topic(*kafka)
    figures, violations = await wait_ingested(cluster, kafka[1], records, bound)
    keys = sorted({record.key for record in records})
    found, error = await read_through_router(cluster, COLLECTION, keys)
    if error:
        violations.append(Violation("unavailable_after_heal", None, error))
    else:
        violations += check_ingested_state(records, found)
    return figures, violations


async def validate(
    cluster: ChaosCluster, history: History, convergence: Sequence[ShardConvergence], rng: random.Random
) -> list[Violation]:
    """Every validator over the healed cluster and the history."""
    violations = [
        Violation("unconverged", None, f"shard {c.shard} digests {c.digests}, applied {c.last_applied}")
        for c in convergence
        if not c.converged
    ]
    model = KeyModel(history.writes)
    found, error = await read_through_router(cluster, COLLECTION, model.keys)
    if error:
        violations.append(Violation("unavailable_after_heal", None, error))
    replicas = await read_all_replicas(cluster, COLLECTION)
    produced = {record.key for record in history.produced}  # checked against the topic instead
    for replica in replicas:
        for key, point in replica.points.items():
            if key not in model.timelines and key not in produced:
                found.setdefault(key, point)  # a point nobody wrote: reported as a phantom
    if not error:
        violations += check_final_state(model, found)
    violations += check_reads(model, history.reads)
    violations += check_placement(replicas, ShardRing(cluster.shape.shards))
    violations += check_replicas_agree(replicas)
    violations += await check_search_index(cluster, COLLECTION, replicas, rng)
    return violations


def select(scenarios: Sequence[Scenario], names: Sequence[str]) -> list[Scenario]:
    """The scenarios named (all when none), in suite order; unknown names raise ValueError."""
    known = {s.name for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; known: {sorted(known)}")
    return [s for s in scenarios if not names or s.name in names]


async def run_suite(
    scenarios: Sequence[Scenario], settings: RunSettings, kafka_available: bool
) -> list[ScenarioResult]:
    """Run scenarios one after another, sharing the total duration by weight."""
    rng = random.Random(settings.seed)  # noqa: S311 - a reproducible fault schedule, not a secret
    suite_deadline = time.monotonic() + settings.duration
    results = []
    for position, scenario in enumerate(scenarios):
        runnable = scenario if kafka_available else without_kafka(scenario)
        if runnable is None:
            results.append(
                ScenarioResult(
                    scenario.name, scenario.description, skipped="Kafka ingestion is not available"
                )
            )
            continue
        remaining_weight = sum(s.weight for s in scenarios[position:])
        share = (suite_deadline - time.monotonic()) * scenario.weight / max(remaining_weight, 1e-9)
        fault_seconds = max(settings.min_fault_seconds, share - settings.overhead)
        log.info("scenario %s: %.0fs of faults", scenario.name, fault_seconds)
        results.append(await run_scenario(runnable, settings, fault_seconds, derive(rng)))
    return results
