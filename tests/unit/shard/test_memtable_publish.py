"""Searches read a published graph and never wait for the indexer; nothing acknowledged is missed.

The memtable's indexer grows a graph of its own and publishes it for searches (a copy every
so many rows, the graph itself when frozen or idle); rows past the published ones are
scored exactly.
"""

from __future__ import annotations

import threading
import time

import hypothesis.strategies as st
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings

from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema, HnswConfig, Metric
from vecstore.shard import memtable as memtable_module
from vecstore.shard.memtable import PUBLISH_EVERY_ROWS, MemTable
from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

Matrix = npt.NDArray[np.float32]


def vectors(count: int, dim: int, seed: int = 0) -> Matrix:
    return np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)


def filled(count: int, dim: int = 8, hnsw: HnswConfig | None = None) -> MemTable:
    schema = CollectionSchema("c", dim, Metric.COSINE, hnsw=hnsw or HnswConfig())
    memtable = MemTable(schema, key_lo=0)
    memtable.append(list(range(count)), vectors(count, dim), [{} for _ in range(count)])
    return memtable


def graph_keys(memtable: MemTable) -> set[int]:
    return {int(key) for key in memtable._view.index.keys}


def test_a_graph_nobody_searches_is_not_copied_until_the_indexer_is_idle() -> None:
    memtable = filled(3_000)
    assert memtable.index_step(3_000) == 3_000
    assert memtable.searchable == 0  # no search paid for a copy; the indexer may still be busy
    assert memtable.index_step(100) == 0  # nothing to add: idle from now on
    assert memtable.searchable == 0
    memtable._idle_since = time.monotonic() - memtable_module.SHARE_AFTER_IDLE_SECONDS
    assert memtable.index_step(100) == 0
    assert memtable.searchable == 3_000
    assert memtable._view.index is memtable.index  # shared, not copied
    assert graph_keys(memtable) == set(range(3_000))


def test_a_copy_is_published_every_so_many_rows() -> None:
    memtable = filled(PUBLISH_EVERY_ROWS + 500)
    while memtable.searchable == 0 and memtable.index_step(1_000):
        pass
    assert memtable.searchable == memtable.indexed >= PUBLISH_EVERY_ROWS
    assert memtable._view.index is not memtable.index
    assert graph_keys(memtable) == set(range(memtable.searchable))


def test_a_published_copy_never_grows() -> None:
    memtable = filled(PUBLISH_EVERY_ROWS + 2_000)
    memtable.index_step(PUBLISH_EVERY_ROWS)
    assert memtable.searchable == PUBLISH_EVERY_ROWS
    assert memtable._view.index is not memtable.index  # a copy: the indexer keeps adding to its own
    memtable.index_step(2_000)
    assert memtable.searchable == PUBLISH_EVERY_ROWS
    assert graph_keys(memtable) == set(range(PUBLISH_EVERY_ROWS))
    assert len(memtable.index) == PUBLISH_EVERY_ROWS + 2_000


def test_the_next_add_copies_a_shared_graph_first() -> None:
    memtable = filled(500)
    memtable.frozen = True  # a frozen memtable shares as soon as it is fully indexed
    memtable.index_step(500)
    memtable.index_step(1)
    shared = memtable._view.index
    assert shared is memtable.index
    memtable.frozen = False
    memtable.append(list(range(500, 600)), vectors(100, 8, seed=1), [{} for _ in range(100)])
    memtable.index_step(100)
    assert memtable._view.index is shared  # searches keep the graph they had
    assert len(shared) == 500
    assert memtable.index is not shared and len(memtable.index) == 600


def test_a_search_does_not_wait_for_an_add_in_progress() -> None:
    """usearch serialises calls on one index: a search of the graph being added to would wait
    for the whole add. Searches read the published graph instead."""
    memtable = filled(20_000, dim=64, hnsw=HnswConfig(connectivity=16, expansion_add=400))
    memtable.index_step(PUBLISH_EVERY_ROWS)  # publishes a copy of the first rows
    assert memtable.searchable == PUBLISH_EVERY_ROWS
    adder = threading.Thread(target=memtable.index_step, args=(20_000 - PUBLISH_EVERY_ROWS,))
    adder.start()
    searched_during_the_add = 0
    try:
        while adder.is_alive():
            keys, _ = memtable.search(vectors(1, 64, seed=9), 10)
            assert len(keys[0]) == 10
            searched_during_the_add += adder.is_alive()
    finally:
        adder.join()
    assert memtable.indexed == 20_000
    assert searched_during_the_add > 0


def shard_with(tmp_path_factory: pytest.TempPathFactory) -> Shard:
    settings = ShardSettings(
        data_dir=tmp_path_factory.mktemp("shard"), seal_threshold=400, index_chunk=37, gpu=GpuMode.OFF
    )
    shard = Shard(settings)
    shard.apply(CreateCollection(CollectionSchema("c", 8, Metric.COSINE, hnsw=HnswConfig(16, 200, 400))))
    return shard


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.integers(1, 90)),
        st.tuples(st.just("index"), st.integers(1, 6)),
        st.tuples(st.just("search"), st.integers(0, 10_000)),
        st.tuples(st.just("idle"), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_acknowledged_point_is_found_whatever_was_indexed_or_published(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]]
) -> None:
    shard = shard_with(tmp_path_factory)
    stored: list[Matrix] = []
    try:
        for op, amount in ops:
            if op == "upsert":
                first = sum(len(batch) for batch in stored)
                batch = vectors(amount, 8, seed=first + 1)
                shard.apply(Upsert.build("c", list(range(first, first + amount)), batch))
                stored.append(batch)
            elif op == "index":
                for _ in range(amount):
                    shard.index_step()
            elif op == "idle":
                for memtable in [*shard.collection("c").frozen, shard.collection("c").active]:
                    memtable._idle_since = time.monotonic() - memtable_module.SHARE_AFTER_IDLE_SECONDS
                shard.index_step()
            elif stored:
                every = np.concatenate(stored)
                target = amount % len(every)
                [hits] = shard.search("c", every[target][None], 3, with_payload=False)
                assert hits[0].id == target
                assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        if stored:
            every = np.concatenate(stored)
            found = shard.search("c", every, 1, with_payload=False)
            assert [row[0].id for row in found] == list(range(len(every)))
    finally:
        shard.close()
