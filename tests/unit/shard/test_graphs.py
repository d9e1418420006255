"""Graphs built once (`vecstore.shard.graphs`): replicas that apply the same commands cut
memtables at the same keys, and a follower adopts its leader's graph of one instead of
building its own, refusing a graph that is not of its rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.shard.conftest import ShardFactory
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.schema import CollectionSchema, Metric, StorageDtype
from vecstore.shard import graphs, memtable
from vecstore.shard.collection import Collection
from vecstore.shard.graphs import (
    GraphAsk,
    GraphMismatch,
    ShippedGraph,
    Verdict,
    adopt_index,
    fallback_rows,
    wanted_rows,
)
from vecstore.shard.merge import Merge
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard

DIM = 16
Matrix = npt.NDArray[np.float32]


@pytest.fixture(autouse=True)
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Publish and ask at the scale of a unit test: every 100 rows, without a pause."""
    monkeypatch.setattr(memtable, "PUBLISH_EVERY_ROWS", 100)
    monkeypatch.setattr(graphs, "MIN_GAIN_ROWS", 50)
    monkeypatch.setattr(graphs, "ASK_EVERY_SECONDS", 0.0)


def create(shard: Shard, dtype: StorageDtype = StorageDtype.F32) -> None:
    shard.apply(CreateCollection(CollectionSchema("c", DIM, Metric.COSINE, dtype)))


def write(shards: list[Shard], first: int, count: int, seed: int = 0) -> Matrix:
    vectors = np.random.default_rng(seed + first).normal(size=(count, DIM)).astype(np.float32)
    command = Upsert.build("c", list(range(first, first + count)), vectors)
    for shard in shards:
        shard.apply(command)
    return vectors


def layout(shard: Shard) -> list[tuple[str, int, int]]:
    """Where each container of collection "c" starts and ends."""
    c = shard.collection("c")
    sealed = [("sealed", s.key_lo, s.key_hi) for s in c.sealed]
    return [*sealed, *[("memtable", m.key_lo, m.key_hi) for m in [*c.frozen, c.active]]]


def merge_of(collection: Collection) -> Merge | None:
    """The merge a collection's indexer is building (a call: not narrowed by mypy)."""
    return collection.merging


def pair(make_shard: ShardFactory, **options: object) -> tuple[Shard, Shard]:
    options = {"index_chunk": 50, **options}
    leader = make_shard("leader", **options)
    follower = make_shard("follower", **options)
    for shard in (leader, follower):
        create(shard)
    follower.graph_source = leader.graph_for
    return leader, follower


def test_wanted_rows_grow_with_the_graph_and_take_all_of_a_frozen_memtable() -> None:
    assert wanted_rows(0, 30, frozen=False) == 30  # never more than the rows held
    assert wanted_rows(0, 1_000, frozen=False) == 50  # MIN_GAIN_ROWS, patched
    assert wanted_rows(800, 5_000, frozen=False) == 1_000  # a quarter of the graph held
    assert wanted_rows(10, 700, frozen=True) == 700


def test_a_follower_lets_wait_what_its_leaders_backpressure_admits(tmp_path: Path) -> None:
    settings = ShardSettings(tmp_path, graph_fallback_rows=1_000, max_unindexed_bytes=4 << 20)
    assert fallback_rows(settings, 128) == 1_000 + 8_192
    assert fallback_rows(replace(settings, max_unindexed_bytes=0), 128) == 1_000


def test_memtables_end_at_the_same_keys_whatever_the_indexer_did(make_shard: ShardFactory) -> None:
    leader, follower = pair(make_shard, seal_threshold=300)
    for first, count in ((0, 120), (120, 250), (370, 10), (380, 400), (780, 30)):
        write([leader, follower], first, count)
        leader.maintain(seal=True, compact=False)  # the leader seals at once, the follower later
    assert [m[1:] for m in layout(leader)] == [(0, 370), (370, 780), (780, 810)]
    follower.maintain(seal=True, compact=False)
    assert layout(follower) == layout(leader)


@settings(max_examples=30, deadline=None)
@given(
    batches=st.lists(st.integers(1, 90), min_size=1, max_size=30),
    forced_at=st.integers(0, 29),
)
def test_layouts_agree_again_after_a_forced_seal(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], forced_at: int
) -> None:
    """A forced seal on one replica (a mostly deleted memtable) cuts its memtable early; from
    the next multiple of seal_threshold both replicas cut at the same keys again."""
    from vecstore.shard.settings import GpuMode, ShardSettings

    threshold = 100
    shards = [
        Shard(ShardSettings(tmp_path_factory.mktemp(name), seal_threshold=threshold, gpu=GpuMode.OFF))
        for name in ("a", "b")
    ]
    try:
        for shard in shards:
            create(shard)
        first = 0
        forced_key = None
        for number, count in enumerate(batches):
            write(shards, first, count)
            first += count
            if number == forced_at:
                shards[0].collection("c").seal(force=True)
                forced_key = first
        cuts = [{hi for kind, _, hi in layout(s)[:-1]} | {layout(s)[-1][1]} for s in shards]
        if forced_key is not None:
            realigned = (forced_key // threshold + 1) * threshold
            cuts = [{key for key in keys if key > realigned} for keys in cuts]
        assert cuts[0] == cuts[1]
    finally:
        for shard in shards:
            shard.close()


def test_a_follower_adopts_the_leaders_graph_and_answers_alike(make_shard: ShardFactory) -> None:
    leader, follower = pair(make_shard, seal_threshold=10_000)
    vectors = write([leader, follower], 0, 450)
    leader.index_until_idle()
    published = leader.collection("c").active.published().rows
    assert published == 400  # copies every 100 rows; the last 50 wait for the next one
    follower.index_until_idle()
    c = follower.collection("c")
    assert c.graph_rows == {"built": 0, "adopted": 400}
    assert c.active.searchable == 400  # the 50 past it are scored exactly, as on the leader
    queries = vectors[::37] + 0.01
    for query in queries:
        mine = follower.search("c", query[None], 10)[0]
        theirs = leader.search("c", query[None], 10)[0]
        assert [(h.id, round(h.score, 5)) for h in mine] == [(h.id, round(h.score, 5)) for h in theirs]
    assert follower.digest() == leader.digest()


def test_a_frozen_memtable_is_adopted_whole_even_after_the_leader_sealed_it(make_shard: ShardFactory) -> None:
    leader, follower = pair(make_shard, seal_threshold=300)
    write([leader, follower], 0, 320)  # memtable [0, 320) frozen in apply on both
    leader.index_until_idle()  # indexed, published, written out as a segment
    assert [kind for kind, _, _ in layout(leader)] == ["sealed", "memtable"]
    follower.index_until_idle()
    c = follower.collection("c")
    assert c.graph_rows == {"built": 0, "adopted": 320}
    assert layout(follower) == layout(leader)
    probe = np.random.default_rng(5).normal(size=(3, DIM)).astype(np.float32)
    for query in probe:
        assert [h.id for h in follower.search("c", query[None], 5)[0]] == [
            h.id for h in leader.search("c", query[None], 5)[0]
        ]


def test_a_follower_builds_when_no_leader_answers(make_shard: ShardFactory) -> None:
    follower = make_shard("follower", seal_threshold=10_000)
    create(follower)
    follower.graph_source = lambda ask: Verdict.BUILD
    write([follower], 0, 200)
    follower.index_until_idle()
    assert follower.collection("c").graph_rows == {"built": 200, "adopted": 0}


def test_a_follower_waits_for_the_leader_until_its_backlog_is_too_long(make_shard: ShardFactory) -> None:
    follower = make_shard(  # a leader without backpressure: only graph_fallback_rows may wait
        "follower", seal_threshold=10_000, graph_fallback_rows=300, index_chunk=50, max_unindexed_bytes=0
    )
    create(follower)
    asked: list[GraphAsk] = []

    def waiting(ask: GraphAsk) -> Verdict:
        asked.append(ask)
        return Verdict.WAIT

    follower.graph_source = waiting
    write([follower], 0, 200)
    assert not follower.index_step()  # waits: nothing indexed
    assert asked and asked[-1] == GraphAsk("c", 0, 50, None)
    assert follower.collection("c").pending() == 200
    write([follower], 200, 150)  # 350 waiting: past the fallback, it builds below it, then waits
    follower.index_until_idle()
    assert follower.collection("c").graph_rows == {"built": 100, "adopted": 0}
    assert follower.collection("c").pending() == 250


def test_a_graph_of_other_rows_is_refused_and_built_here(make_shard: ShardFactory) -> None:
    leader, follower = pair(make_shard, seal_threshold=10_000)
    write([leader], 0, 200, seed=1)  # the leader's rows differ from the follower's
    write([follower], 0, 200, seed=2)
    leader.index_until_idle()
    follower.index_until_idle()
    c = follower.collection("c")
    assert c.graph_rows == {"built": 200, "adopted": 0}
    assert c.active.local_graph  # not asked again for this memtable
    vectors = np.random.default_rng(2).normal(size=(200, DIM)).astype(np.float32)
    [hits] = follower.search("c", vectors[17][None], 1)
    assert hits[0].id == 17


def test_a_leader_without_that_memtable_says_absent(make_shard: ShardFactory) -> None:
    leader, _ = pair(make_shard, seal_threshold=10_000)
    write([leader], 0, 150)
    leader.index_until_idle()
    assert leader.graph_for(GraphAsk("c", 7, 10)) is Verdict.ABSENT
    assert leader.graph_for(GraphAsk("c", 150, 10)) is Verdict.WAIT  # not applied that far yet
    assert leader.graph_for(GraphAsk("c", 0, 10, key_hi=170)) is Verdict.WAIT  # nor that
    assert leader.graph_for(GraphAsk("nope", 0, 10)) is Verdict.ABSENT
    assert leader.graph_for(GraphAsk("c", 0, 10, key_hi=149)) is Verdict.ABSENT  # not frozen there
    assert leader.graph_for(GraphAsk("c", 0, 120)) is Verdict.WAIT  # 100 published
    shipped = leader.graph_for(GraphAsk("c", 0, 100))
    assert isinstance(shipped, ShippedGraph) and shipped.rows == 100


@pytest.mark.parametrize("dtype", [StorageDtype.F32, StorageDtype.F16, StorageDtype.I8])
def test_adopt_index_checks_keys_and_vectors(make_shard: ShardFactory, dtype: StorageDtype) -> None:
    leader = make_shard("leader", seal_threshold=10_000)
    create(leader, dtype)
    vectors = write([leader], 0, 200)
    leader.index_until_idle()
    shipped = leader.graph_for(GraphAsk("c", 0, 200))
    if shipped is Verdict.WAIT:  # 200 rows: published at 200 exactly
        pytest.fail("the leader published no graph of 200 rows")
    assert isinstance(shipped, ShippedGraph)
    schema = leader.collection("c").schema
    keys = np.arange(200, dtype=np.uint64)
    index = adopt_index(shipped.data, keys, vectors, schema)
    assert len(index) == 200
    with pytest.raises(GraphMismatch, match="keys"):
        adopt_index(shipped.data, keys + 1, vectors, schema)
    with pytest.raises(GraphMismatch, match="rows"):
        adopt_index(shipped.data, keys[:199], vectors[:199], schema)
    with pytest.raises(GraphMismatch, match="vectors"):
        adopt_index(shipped.data, keys, -vectors, schema)
    with pytest.raises(GraphMismatch, match="does not load"):
        adopt_index(b"\x00" * 64, keys, vectors, schema)


def test_a_follower_adopts_its_leaders_merged_graphs(make_shard: ShardFactory) -> None:
    leader, follower = pair(make_shard, seal_threshold=100)
    for first in range(0, 400, 100):
        write([leader, follower], first, 100)
    leader.index_until_idle()  # seals four segments, merges them into one
    assert [m[1:] for m in layout(leader)] == [(0, 400), (400, 400)]
    follower.index_until_idle()
    assert layout(follower) == layout(leader)
    c = follower.collection("c")
    # memtables: 400 rows adopted; merges 0-100+100-200, then +200-300, then +300-400 would
    # have inserted 100 rows each beside the reused larger graph: adopted instead
    assert c.graph_rows == {"built": 0, "adopted": 400 + 300}
    assert leader.collection("c").graph_rows == {"built": 400 + 300, "adopted": 0}
    assert follower.digest() == leader.digest()
    probe = np.random.default_rng(9).normal(size=(5, DIM)).astype(np.float32)
    for query in probe:
        assert [h.id for h in follower.search("c", query[None], 10)[0]] == [
            h.id for h in leader.search("c", query[None], 10)[0]
        ]


def test_a_follower_waits_for_its_leaders_merge_then_builds_if_it_never_comes(
    make_shard: ShardFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader, follower = pair(make_shard, seal_threshold=100)
    for first in range(0, 200, 100):
        write([leader, follower], first, 100)
    while leader.collection("c").frozen:  # seal, but do not merge yet
        leader.collection("c").index_pending()
        leader.collection("c").write_frozen()
    follower.index_until_idle()  # its merge is planned, and waits for the leader's
    c = follower.collection("c")
    planned = merge_of(c)
    assert planned is not None and planned.remaining == 100
    assert leader.graph_for(GraphAsk("c", 0, 200, key_hi=200, merged=True)) is Verdict.WAIT
    monkeypatch.setattr(graphs, "MERGE_WAIT_SECONDS", 0.0)
    follower.index_until_idle()  # waited long enough: merges here
    assert merge_of(c) is None
    assert c.graph_rows["built"] == 100
    assert [m[1:] for m in layout(follower)] == [(0, 200), (200, 200)]
    # a span the leader holds in pieces that do not fit it: it will never write that segment
    assert leader.graph_for(GraphAsk("c", 0, 150, key_hi=150, merged=True)) is Verdict.ABSENT
