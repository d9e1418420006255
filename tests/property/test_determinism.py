"""Replicas that apply the same commands answer the same, whatever their physical layout.

Two shards with different data directories and seal thresholds, one stepped by hand and
one with its background indexer, receive one random command sequence; their reads and
digests must agree, also after snapshot/restore, and the per-collection digest must equal
one recomputed from the final points alone.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    IngestBatch,
    IngestRecord,
    OverwritePayload,
    PartitionBatch,
    PointCommand,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.filters import Filter, parse_filter
from vecstore.cluster.ids import PointId
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.node.indexer import Indexer, start_indexer
from vecstore.shard import collection as collection_module
from vecstore.shard.segment import SealedSegment, write_segment
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

NAME = "docs"
DIM = 8
IDS: list[PointId] = [*range(120), *(str(uuid.UUID(int=n * 7919 + 1)) for n in range(30))]
FILTERS: list[Filter | None] = [
    None,
    parse_filter({"must": [{"key": "n", "range": {"gte": 5}}]}),
    parse_filter(
        {"should": [{"key": "tag", "match": {"text": "a"}}, {"key": "deep.x", "match": {"value": 2}}]}
    ),
    parse_filter(
        {"must_not": [{"is_empty": {"key": "deep"}}], "must": [{"key": "n", "op": "!=", "value": 3}]}
    ),
]
MAINTENANCE = ("seal", "compact", "compact_step", "index", "index_chunk")
EXAMPLES = int(os.environ.get("VECSTORE_PROPERTY_EXAMPLES", "8"))
"""Set VECSTORE_PROPERTY_EXAMPLES higher for a longer hunt (the defaults keep the suite fast)."""

Step = Command | str
"""A command for every replica, or a maintenance step for the hand-stepped one only."""
Answers = dict[str, Any]


# ---- random command sequences -----------------------------------------------------------


def random_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "n": rng.randint(0, 9),
        "tag": rng.choice(["a", "b", "ab", ""]),
        "deep": {"x": rng.randint(0, 3)},
        "list": [rng.randint(0, 3) for _ in range(rng.randint(0, 3))],
    }
    return {key: value for key, value in payload.items() if rng.random() < 0.8}


def random_selector(rng: random.Random) -> Selector:
    if rng.random() < 0.3:
        condition = rng.choice(FILTERS[1:])
        assert condition is not None
        return Selector.of_filter(condition)
    return Selector.of_ids(rng.sample(IDS, rng.randint(1, 8)))


def random_point_command(rng: random.Random, nprng: np.random.Generator) -> PointCommand:
    roll = rng.random()
    if roll < 0.55:
        ids = rng.sample(IDS, rng.randint(1, 30))
        vectors = nprng.normal(size=(len(ids), DIM)).astype(np.float32)
        return Upsert.build(NAME, ids, vectors, [random_payload(rng) for _ in ids])
    if roll < 0.7:
        return DeletePoints(NAME, random_selector(rng))
    if roll < 0.8:
        return SetPayload(NAME, random_selector(rng), random_payload(rng))
    if roll < 0.9:
        return OverwritePayload(NAME, random_selector(rng), random_payload(rng))
    return DeletePayloadKeys(NAME, random_selector(rng), tuple(rng.sample(["n", "tag", "deep", "list"], 2)))


def command_sequence(seed: int, length: int) -> list[Step]:
    """Commands (some in ingest batches, some replayed) with maintenance steps mixed in."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    steps: list[Step] = []
    offsets = {0: -1, 1: -1}
    sent: list[IngestBatch] = []
    for _ in range(length):
        roll = rng.random()
        if roll < 0.12:
            steps.append(rng.choice(MAINTENANCE))
        elif roll < 0.22:
            partition = rng.choice([0, 1])
            records = []
            for _ in range(rng.randint(1, 4)):
                offsets[partition] += rng.randint(1, 3)
                records.append(IngestRecord(offsets[partition], random_point_command(rng, nprng)))
            sent.append(IngestBatch((PartitionBatch("points", partition, tuple(records)),)))
            steps.append(sent[-1])
        elif roll < 0.26 and sent:
            steps.append(rng.choice(sent))  # a replay: every record is at or below the mark
        else:
            steps.append(random_point_command(rng, nprng))
    return steps


# ---- shards -------------------------------------------------------------------------------


@pytest.fixture
def root() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="vecstore-determinism-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def new_shard(data_dir: Path, seal_threshold: int, background: bool) -> Shard:
    shard = Shard(
        ShardSettings(
            data_dir=data_dir,
            seal_threshold=seal_threshold,
            index_chunk=16,
            exact_limit=30,
            gpu=GpuMode.OFF,
        )
    )
    if background:
        INDEXERS[shard] = start_indexer(shard)
    shard.apply(CreateCollection(CollectionSchema(NAME, DIM, Metric.COSINE)))
    return shard


INDEXERS: dict[Shard, Indexer] = {}
"""The node's indexer thread of each shard built with background=True."""


def close(shard: Shard) -> None:
    indexer = INDEXERS.pop(shard, None)
    if indexer is not None:
        indexer.stop()
    shard.close()


def run(shard: Shard, steps: list[Step]) -> list[dict[str, Any]]:
    results = []
    for step in steps:
        if step == "seal":
            shard.maintain(seal=True, compact=False, force=True)
        elif step == "compact":
            shard.maintain(force=True)
        elif step == "index":
            shard.maintain(seal=False, compact=False)
        elif step == "index_chunk":
            shard.collection(NAME).index_pending()
        elif step == "compact_step":
            shard.collection(NAME).compact_step()
        else:
            assert not isinstance(step, str)
            results.append(shard.apply(step))
    return results


def answers(shard: Shard, queries: npt.NDArray[np.float32]) -> Answers:
    """Everything a client can read, in a comparable form."""
    pages = []
    offset: PointId | None = None
    while True:
        page, offset = shard.scroll(NAME, offset=offset, limit=7, with_vector=True)
        pages.append([record.to_dict() for record in page])
        if offset is None:
            break
    return {
        "get": [r.to_dict() for r in shard.get(NAME, list(IDS), with_vector=True)],
        "count": [shard.count(NAME, condition) for condition in FILTERS],
        "scroll": pages,
        "search": [
            [[hit.to_dict() for hit in hits] for hits in results]
            for results in (shard.search(NAME, queries, 10, f, exact=True) for f in FILTERS)
        ],
        "digest": shard.digest(),
    }


def restored_copy(shard: Shard, root: Path, name: str) -> Shard:
    shard.snapshot(root / f"{name}-snapshot")
    copy = new_shard(root / name, seal_threshold=35, background=False)
    copy.restore(root / f"{name}-snapshot")
    shutil.rmtree(root / f"{name}-snapshot")
    return copy


# ---- tests ----------------------------------------------------------------------------


@settings(
    max_examples=max(1, EXAMPLES * 3 // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_replicas_with_different_layouts_agree(root: Path, seed: int) -> None:
    base = root / f"seed-{seed}"
    steps = command_sequence(seed, length=70)
    queries = np.random.default_rng(seed + 1).normal(size=(3, DIM)).astype(np.float32)
    by_hand = new_shard(base / "by-hand", seal_threshold=20, background=False)
    background = new_shard(base / "background", seal_threshold=45, background=True)
    copies: list[Shard] = []
    try:
        half = len(steps) // 2
        assert run(by_hand, steps[:half]) == run(background, steps[:half])
        assert answers(by_hand, queries) == answers(background, queries)
        assert run(by_hand, steps[half:]) == run(background, steps[half:])
        expected = answers(by_hand, queries)
        assert answers(background, queries) == expected
        assert background.wait_indexed(timeout=30)
        background.maintain(force=True)
        assert answers(background, queries) == expected

        copies = [restored_copy(by_hand, base, "from-by-hand"), restored_copy(background, base, "from-bg")]
        for copy in copies:
            assert copy.digest() == by_hand.digest()
            assert answers(copy, queries) == expected
        # a restored replica keeps applying the log like the others
        tail = command_sequence(seed + 2, length=25)
        outcomes = [run(shard, tail) for shard in (by_hand, background, *copies)]
        assert all(outcome == outcomes[0] for outcome in outcomes)
        expected = answers(by_hand, queries)
        for shard in (background, *copies):
            assert answers(shard, queries) == expected
    finally:
        for shard in (by_hand, background, *copies):
            close(shard)
        shutil.rmtree(base, ignore_errors=True)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 40))
def test_digest_sum_depends_only_on_the_live_points(root: Path, seed: int, batch: int) -> None:
    base = root / f"seed-{seed}-{batch}"
    history = new_shard(base / "history", seal_threshold=20, background=False)
    fresh = new_shard(base / "fresh", seal_threshold=1_000, background=False)
    try:
        run(history, command_sequence(seed, length=60))
        records, next_offset = history.scroll(NAME, limit=10_000, with_vector=True)
        assert next_offset is None
        random.Random(seed).shuffle(records)
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            vectors = [r.vector if isinstance(r.vector, list) else [] for r in chunk]
            fresh.apply(Upsert.build(NAME, [r.id for r in chunk], vectors, [r.payload for r in chunk]))
        old, new = history.collection(NAME), fresh.collection(NAME)
        assert new.digest_sum == old.digest_sum
        assert len(new.id_map) == len(old.id_map)
    finally:
        history.close()
        fresh.close()
        shutil.rmtree(base, ignore_errors=True)


def test_snapshot_taken_while_a_seal_is_writing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload change to a frozen (sealing) memtable lives in overrides; a snapshot taken
    then restores those rows into the active memtable, where later changes must still win."""
    shard = new_shard(root / "live", seal_threshold=1_000, background=False)
    copy: Shard | None = None
    ids = list(range(10))
    vectors = np.random.default_rng(3).normal(size=(10, DIM)).astype(np.float32)
    shard.apply(Upsert.build(NAME, ids, vectors, [{"v": 0}] * 10))
    writing, release = threading.Event(), threading.Event()

    def paused_write_segment(*args: Any, **kwargs: Any) -> SealedSegment:
        writing.set()
        assert release.wait(30)
        return write_segment(*args, **kwargs)

    monkeypatch.setattr(collection_module, "write_segment", paused_write_segment)
    sealer = threading.Thread(target=shard.maintain, kwargs={"seal": True, "compact": False, "force": True})
    sealer.start()
    try:
        assert writing.wait(30)
        shard.apply(SetPayload(NAME, Selector.of_ids([1]), {"v": 1}))
        shard.snapshot(root / "snapshot")
    finally:
        release.set()
        sealer.join()
    try:
        copy = new_shard(root / "copy", seal_threshold=1_000, background=False)
        copy.restore(root / "snapshot")
        assert copy.digest() == shard.digest()
        for replica in (shard, copy):
            replica.apply(SetPayload(NAME, Selector.of_ids([1, 2]), {"w": 2}))
            replica.apply(DeletePayloadKeys(NAME, Selector.of_ids([2]), ("v",)))
        expected = [{"v": 1, "w": 2}, {"w": 2}]
        assert [r.payload for r in shard.get(NAME, [1, 2])] == expected
        assert [r.payload for r in copy.get(NAME, [1, 2])] == expected
        assert copy.digest() == shard.digest()
        copy.maintain(force=True)
        assert [r.payload for r in copy.get(NAME, [1, 2])] == expected
    finally:
        shard.close()
        if copy is not None:
            copy.close()
