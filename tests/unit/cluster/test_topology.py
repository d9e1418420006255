"""Topologies as data: the ring they define, their epochs, and what a change of shape moves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import (
    DeletePoints,
    FenceMoving,
    InstallTopology,
    MigrateIn,
    PrepareMigration,
    Selector,
    Upsert,
)
from vecstore.cluster.errors import InvalidRequest, MalformedCommand
from vecstore.cluster.hash_ring import ShardRing
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology, newest_installed


def shard(shard_id: int) -> ShardSpec:
    return ShardSpec(
        shard_id,
        (NodeSpec(f"s{shard_id}-n0", f"127.0.0.1:{7000 + shard_id}", f"127.0.0.1:{8000 + shard_id}"),),
    )


def topology(*ids: int, epoch: int = 0) -> Topology:
    return Topology(epoch, tuple(shard(i) for i in ids))


def test_the_ring_of_ids_0_to_n_is_the_ring_of_a_count() -> None:
    assert all(ShardRing(3).shard_for(i) == ShardRing([0, 1, 2]).shard_for(i) for i in range(2_000))
    assert topology(0, 1, 2).owner(12345) == ShardRing(3).shard_for(12345)


@given(st.lists(st.integers(0, 2**63) | st.uuids().map(str), min_size=1, max_size=200))
def test_adding_a_shard_moves_points_only_to_it(ids: list[int | str]) -> None:
    before = topology(0, 1, 2)
    after = before.with_shard(shard(3))
    assert after.epoch == before.epoch + 1
    for point_id in ids:
        if before.moving(after, point_id):
            assert after.owner(point_id) == 3


@given(st.lists(st.integers(0, 2**63), min_size=1, max_size=200), st.sampled_from([0, 1, 2]))
def test_removing_a_shard_moves_only_its_points(ids: list[int], removed: int) -> None:
    before = topology(0, 1, 2)
    after = before.without_shard(removed)
    for point_id in ids:
        if before.owner(point_id) != removed:
            assert after.owner(point_id) == before.owner(point_id)
        else:
            assert after.owner(point_id) != removed


def test_about_one_in_s_plus_one_points_move() -> None:
    before = topology(0, 1)
    after = before.with_shard(shard(2))
    moved = sum(before.moving(after, i) for i in range(30_000)) / 30_000
    assert 0.2 < moved < 0.45  # ketama with 3 nodes: expect about 1/3


def test_round_trip_and_refusals() -> None:
    original = topology(0, 2, 5, epoch=7)
    assert Topology.from_dict(original.to_dict()) == original
    with pytest.raises(InvalidRequest):
        Topology.from_dict({"epoch": 1})
    with pytest.raises(InvalidRequest):
        Topology.from_dict({"epoch": "1", "shards": []})
    with pytest.raises(InvalidRequest):
        topology(1, 1)
    with pytest.raises(InvalidRequest):
        topology(0).without_shard(0)
    with pytest.raises(InvalidRequest):
        topology(0, 1).with_shard(shard(1))
    with pytest.raises(InvalidRequest):
        topology(0, 1).shard(4)


def test_topology_commands_round_trip_through_the_codec() -> None:
    current, pending = topology(0, 1).to_dict(), topology(0, 1, 2, epoch=1).to_dict()
    upsert = Upsert.build("c", [1, 2], [[1.0, 2.0], [3.0, 4.0]])
    for command in (
        InstallTopology(0, current),
        InstallTopology(2, pending, ((0, "events", 3, 41), (1, "events", 3, 40))),
        PrepareMigration(1, current, pending),
        FenceMoving(0, 1),
        MigrateIn(upsert),
        MigrateIn(DeletePoints("c", Selector(ids=(1, "3f1c1c1e-0000-4000-8000-000000000000")))),
    ):
        assert decode_command(encode_command(command)) == command


def test_malformed_topology_commands_are_refused() -> None:
    bad = InstallTopology(0, {"epoch": -1, "shards": []})
    with pytest.raises(MalformedCommand):
        decode_command(encode_command(bad))
    from vecstore.cluster.filters import parse_filter

    by_filter = MigrateIn(
        DeletePoints("c", Selector.of_filter(parse_filter({"must": [{"key": "a", "match": {"value": 1}}]})))
    )
    with pytest.raises(MalformedCommand):
        decode_command(encode_command(by_filter))


def test_the_newest_installed_topology_wins_and_the_seed_only_without_one() -> None:
    seed = topology(0, 1)
    joining = topology(0, 1, 2)  # installed at epoch 0, naming a shard the spec lacks
    assert newest_installed(seed, []) is seed
    assert newest_installed(seed, [joining]) is joining  # beats the seed at the same epoch
    later = topology(0, 2, epoch=3)
    assert newest_installed(seed, iter([joining, later, topology(0, epoch=1)])) is later
