"""Replicas of a collection of named vectors (dense spaces, sparse and multivectors) that
apply the same random commands agree: digests, exact searches of every vector and reads,
whatever their physical layout (seal thresholds, maintenance), also after a snapshot."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePoints,
    DeleteVectors,
    Selector,
    SetPayload,
    UpdateVectors,
    Upsert,
    split_named,
)
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema, Metric, SparseSpec, VectorSpec
from vecstore.shard import reads
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

SCHEMA = CollectionSchema.with_named(
    "docs",
    {
        "text": VectorSpec(4, Metric.COSINE),
        "image": VectorSpec(3, Metric.L2),
        "tokens": VectorSpec(2, Metric.DOT, multivector=True),
    },
    {"words": SparseSpec()},
)
IDS = list(range(40))


def _vectors(rng: random.Random, ids: list[int]) -> dict[str, tuple[list[int], list[Any]]]:
    named: dict[str, tuple[list[int], list[Any]]] = {}
    for name, build in (
        ("text", lambda: [rng.uniform(-1, 1) for _ in range(4)]),
        ("image", lambda: [rng.uniform(-1, 1) for _ in range(3)]),
        ("tokens", lambda: [[rng.uniform(-1, 1) for _ in range(2)] for _ in range(rng.randint(1, 3))]),
        ("words", lambda: {"indices": rng.sample(range(30), 3), "values": [rng.random() for _ in range(3)]}),
    ):
        rows = [p for p in range(len(ids)) if rng.random() < 0.7]
        if rows:
            named[name] = (rows, [build() for _ in rows])
    return named


def _commands(seed: int, length: int) -> list[Command]:
    rng = random.Random(seed)
    commands: list[Command] = [CreateCollection(SCHEMA)]
    for _ in range(length):
        roll = rng.random()
        ids = rng.sample(IDS, rng.randint(1, 8))
        if roll < 0.55:
            payloads = [{"n": rng.randint(0, 5)} for _ in ids]
            commands.append(Upsert.build_named("docs", ids, _vectors(rng, ids), payloads))
        elif roll < 0.7:
            dense, sparse, multi = split_named(_vectors(rng, ids))
            commands.append(UpdateVectors("docs", tuple(ids), dense, sparse, multi))
        elif roll < 0.8:
            names = tuple(rng.sample(["text", "image", "tokens", "words"], 2))
            commands.append(DeleteVectors("docs", Selector.of_ids(ids), names))
        elif roll < 0.9:
            condition = parse_filter({"must": [{"has_vector": rng.choice(["text", "words", "tokens"])}]})
            commands.append(SetPayload("docs", Selector.of_filter(condition), {"tagged": rng.randint(0, 3)}))
        else:
            commands.append(DeletePoints("docs", Selector.of_ids(ids)))
    return commands


def _shard(directory: Path, seal_threshold: int) -> Shard:
    return Shard(ShardSettings(data_dir=directory, seal_threshold=seal_threshold, gpu=GpuMode.OFF))


def _apply(shard: Shard, commands: list[Command], maintain_every: int) -> None:
    for position, command in enumerate(commands):
        try:
            shard.apply(command)
        except Exception as err:  # refused commands (an id that does not exist yet) on both
            assert getattr(err, "http_status", 500) < 500, err
        if maintain_every and position % maintain_every == 0:
            shard.maintain()


def _answers(shard: Shard) -> list[Any]:
    rng = np.random.default_rng(0)
    found: list[Any] = []
    for using, size in (("text", 4), ("image", 3)):
        query = rng.normal(size=(1, size)).astype(np.float32)
        found.append(
            [(h.id, round(h.score, 4)) for h in shard.search("docs", query, 10, using=using, exact=True)[0]]
        )
    sparse = (np.array([1, 5, 9], dtype=np.uint32), np.array([1.0, 0.5, 2.0], dtype=np.float32))
    found.append([(h.id, round(h.score, 4)) for h in shard.sparse_search("docs", "words", [sparse], 10)[0]])
    tokens = rng.normal(size=(2, 2)).astype(np.float32)
    found.append([(h.id, round(h.score, 4)) for h in shard.multi_search("docs", "tokens", [tokens], 10)[0]])
    rows, _ = reads.scroll(shard.collection("docs"), limit=100)
    found.append([(r.id, r.payload) for r in rows])
    return found


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_named_replicas_agree(seed: int) -> None:
    commands = _commands(seed, 40)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        first, second = _shard(root / "a", 5), _shard(root / "b", 1_000)
        try:
            _apply(first, commands, maintain_every=3)
            _apply(second, commands, maintain_every=0)
            assert first.digest() == second.digest()
            assert _answers(first) == _answers(second)
            first.snapshot(root / "snap")
            restored = _shard(root / "c", 7)
            try:
                restored.restore(root / "snap")
                assert restored.digest() == first.digest()
                assert _answers(restored) == _answers(first)
            finally:
                restored.close()
        finally:
            first.close()
            second.close()
