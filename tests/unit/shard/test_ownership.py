"""The topology fence in the shard state machine: writes only for owned points, the
catch-up record while a migration is prepared, the write fence, copies, and cutover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.shard.conftest import ShardFactory
from vecstore.cluster.commands import (
    CreateCollection,
    DeletePoints,
    FenceMoving,
    IngestBatch,
    IngestRecord,
    InstallTopology,
    MigrateIn,
    PartitionBatch,
    PrepareMigration,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.errors import Conflict, InvalidRequest, Migrating, WrongShard
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema
from vecstore.cluster.spec import NodeSpec, ShardSpec
from vecstore.cluster.topology import Topology
from vecstore.shard.state import Shard

DIM = 2
EVERY = parse_filter({"must": []})


def spec(shard_id: int) -> ShardSpec:
    return ShardSpec(
        shard_id, (NodeSpec(f"s{shard_id}", f"127.0.0.1:{7100 + shard_id}", f"127.0.0.1:{8100 + shard_id}"),)
    )


TWO = Topology(0, (spec(0), spec(1)))
THREE = TWO.with_shard(spec(2))
IDS = list(range(400))


def upsert(ids: list[int], value: float = 1.0) -> Upsert:
    return Upsert.build("c", ids, np.full((len(ids), DIM), value), [{"v": value}] * len(ids))


def owned(topology: Topology, shard_id: int) -> list[int]:
    return [i for i in IDS if topology.owner(i) == shard_id]


def stored(shard: Shard) -> set[int]:
    return {int(r.id) for r in shard.scroll("c", limit=10_000)[0]}


@pytest.fixture
def zero(make_shard: ShardFactory) -> Shard:
    shard = make_shard("zero")
    shard.apply(CreateCollection(CollectionSchema("c", DIM)))
    shard.apply(upsert(IDS))  # no topology yet: everything is accepted, as before topologies
    return shard


def test_installing_a_topology_fences_writes_and_drops_what_is_not_owned(zero: Shard) -> None:
    result = zero.apply(InstallTopology(0, TWO.to_dict()))
    assert result["installed"] and result["ownership"]["epoch"] == 0
    assert stored(zero) == set(owned(TWO, 0))
    mine, theirs = owned(TWO, 0)[0], owned(TWO, 1)[0]
    zero.apply(upsert([mine], 2.0))
    with pytest.raises(WrongShard) as refused:
        zero.apply(upsert([mine, theirs], 3.0))
    assert refused.value.topology == TWO.to_dict()
    assert refused.value.to_dict()["code"] == "wrong_shard"
    assert zero.get("c", [mine])[0].payload == {"v": 2.0}  # nothing of the refused write applied
    with pytest.raises(WrongShard):
        zero.apply(DeletePoints("c", Selector(ids=(theirs,))))


def test_an_ingest_batch_with_a_foreign_point_is_refused_whole(zero: Shard) -> None:
    zero.apply(InstallTopology(0, TWO.to_dict()))
    mine, theirs = owned(TWO, 0)[0], owned(TWO, 1)[0]
    records = (IngestRecord(5, upsert([mine], 9.0)), IngestRecord(6, upsert([theirs], 9.0)))
    with pytest.raises(WrongShard):
        zero.apply(IngestBatch((PartitionBatch("t", 0, records),)))
    assert zero.fence.high(("t", 0)) == -1  # the offsets did not advance: nothing is lost
    assert zero.get("c", [mine])[0].payload == {"v": 1.0}


def test_an_older_topology_is_ignored_and_a_foreign_one_refused(zero: Shard) -> None:
    zero.apply(InstallTopology(0, THREE.to_dict()))
    assert not zero.apply(InstallTopology(0, TWO.to_dict()))["installed"]
    assert zero.ownership is not None and zero.ownership.epoch == 1
    with pytest.raises(Conflict):
        zero.apply(InstallTopology(1, THREE.to_dict()))
    zero.apply(InstallTopology(0, Topology(2, (spec(1),)).to_dict()))  # shard 0 removed
    assert stored(zero) == set()
    with pytest.raises(WrongShard):
        zero.apply(upsert([0]))


def test_a_prepared_migration_records_moving_writes_then_fences_them(zero: Shard) -> None:
    zero.apply(PrepareMigration(0, TWO.to_dict(), THREE.to_dict()))
    staying = [i for i in owned(TWO, 0) if THREE.owner(i) == 0]
    moving = [i for i in owned(TWO, 0) if THREE.owner(i) == 2]
    assert staying and moving
    zero.apply(upsert([staying[0], moving[0]], 4.0))
    zero.apply(SetPayload("c", Selector(ids=(moving[1],)), {"w": 1}))
    assert zero.ownership is not None
    assert zero.ownership.dirty == {"c": {moving[0], moving[1]}}
    zero.apply(
        DeletePoints("c", Selector.of_filter(parse_filter({"must": [{"key": "v", "match": {"value": 4.0}}]})))
    )
    assert zero.ownership.dirty["c"] == {moving[0], moving[1]}  # the filter touched moving[0] again

    zero.apply(FenceMoving(0, THREE.epoch))
    with pytest.raises(Migrating):
        zero.apply(upsert([moving[2]], 5.0))
    with pytest.raises(Migrating):
        zero.apply(SetPayload("c", Selector.of_filter(EVERY), {"x": 1}))
    zero.apply(upsert([staying[1]], 5.0))  # points that stay are written as usual

    result = zero.apply(InstallTopology(0, THREE.to_dict()))
    assert result["ownership"]["pending"] is None and not result["ownership"]["fenced"]
    assert stored(zero).isdisjoint(moving)
    with pytest.raises(WrongShard):
        zero.apply(upsert([moving[2]], 5.0))


def test_re_installing_the_current_epoch_aborts_a_migration(zero: Shard) -> None:
    zero.apply(PrepareMigration(0, TWO.to_dict(), THREE.to_dict()))
    zero.apply(FenceMoving(0, THREE.epoch))
    before = stored(zero)
    zero.apply(InstallTopology(0, TWO.to_dict()))
    assert zero.ownership is not None and zero.ownership.pending is None and not zero.ownership.fenced
    assert stored(zero) == before
    moving = next(i for i in owned(TWO, 0) if THREE.owner(i) == 2)
    zero.apply(upsert([moving], 6.0))


def test_a_target_accepts_copies_only_of_points_moving_to_it(make_shard: ShardFactory) -> None:
    target = make_shard("target")
    target.apply(CreateCollection(CollectionSchema("c", DIM)))
    arriving = [i for i in IDS if THREE.owner(i) == 2]
    with pytest.raises(Conflict):
        target.apply(MigrateIn(upsert(arriving[:3])))
    target.apply(PrepareMigration(2, TWO.to_dict(), THREE.to_dict()))  # owns nothing under TWO
    target.apply(PrepareMigration(2, TWO.to_dict(), THREE.to_dict()))  # idempotent
    target.apply(MigrateIn(upsert(arriving[:10])))
    with pytest.raises(InvalidRequest):
        target.apply(MigrateIn(upsert([owned(THREE, 0)[0]])))
    with pytest.raises(WrongShard):  # router writes wait for the cutover
        target.apply(upsert([arriving[0]]))
    target.apply(MigrateIn(DeletePoints("c", Selector(ids=(arriving[0],)))))
    target.apply(InstallTopology(2, THREE.to_dict()))
    assert stored(target) == set(arriving[1:10])
    target.apply(upsert([arriving[0]]))


def test_ownership_survives_a_snapshot(zero: Shard, make_shard: ShardFactory, tmp_path: Path) -> None:
    zero.apply(PrepareMigration(0, TWO.to_dict(), THREE.to_dict()))
    moving = next(i for i in owned(TWO, 0) if THREE.owner(i) == 2)
    zero.apply(upsert([moving], 7.0))
    zero.apply(PrepareMigration(0, TWO.to_dict(), THREE.to_dict()))  # a resumed coordinator
    assert zero.ownership is not None and zero.ownership.dirty == {"c": {moving}}
    zero.apply(FenceMoving(0, THREE.epoch))
    zero.snapshot(tmp_path / "snap")
    copy = make_shard("copy")
    copy.restore(tmp_path / "snap")
    assert copy.ownership == zero.ownership
    assert copy.digest() == zero.digest()
    with pytest.raises(Migrating):
        copy.apply(upsert([moving], 8.0))


def test_a_target_inherits_each_origins_kafka_offsets(make_shard: ShardFactory, tmp_path: Path) -> None:
    target = make_shard("inherit")
    target.apply(CreateCollection(CollectionSchema("c", DIM)))
    target.apply(PrepareMigration(2, TWO.to_dict(), THREE.to_dict()))
    arriving = [i for i in IDS if THREE.owner(i) == 2]
    from_zero = [i for i in arriving if TWO.owner(i) == 0]
    from_one = [i for i in arriving if TWO.owner(i) == 1]
    # shard 0 had applied partition ("t", 0) up to 9, shard 1 only up to 3
    target.apply(InstallTopology(2, THREE.to_dict(), ((0, "t", 0, 9), (1, "t", 0, 3))))
    records = (
        IngestRecord(5, upsert([from_zero[0]], 5.0)),  # shard 0 applied it: the copy has it
        IngestRecord(7, upsert([from_one[0]], 7.0)),  # shard 1 never did: applied here
        IngestRecord(9, upsert([from_zero[1]], 9.0)),  # shard 0 applied it
        IngestRecord(12, upsert([from_zero[2]], 12.0)),  # nobody had it
    )
    result = target.apply(IngestBatch((PartitionBatch("t", 0, records),)))
    [part] = result["partitions"]
    assert (part["applied"], part["skipped"]) == (2, 2)
    assert stored(target) == {from_one[0], from_zero[2]}
    assert target.fence.high(("t", 0)) == 12
    # what a later receiver inherits from this shard: every record up to 12 is reflected here
    assert target.topology_status()["ownership"]["ingest_marks"] == [["t", 0, 12]]
    target.snapshot(tmp_path / "inherit-snap")
    copy = make_shard("inherit-copy")
    copy.restore(tmp_path / "inherit-snap")
    assert copy.fence.inherited == target.fence.inherited == {0: {("t", 0): 9}, 1: {("t", 0): 3}}
    assert copy.digest() == target.digest()


def test_inherited_offsets_are_minima_when_passed_on(make_shard: ShardFactory) -> None:
    target = make_shard("pass-on")
    target.apply(CreateCollection(CollectionSchema("c", DIM)))
    target.apply(PrepareMigration(2, TWO.to_dict(), THREE.to_dict()))
    target.apply(InstallTopology(2, THREE.to_dict(), ((0, "t", 0, 9), (1, "t", 0, 3))))
    # nothing applied here yet: records up to 3 are reflected for every origin, not up to 9
    assert target.topology_status()["ownership"]["ingest_marks"] == [["t", 0, 3]]
    # the next cutover folds the inherited offsets into the shard's own (their minimum)
    four = THREE.with_shard(spec(3))
    target.apply(PrepareMigration(2, THREE.to_dict(), four.to_dict()))
    target.apply(InstallTopology(2, four.to_dict()))
    assert target.fence.high(("t", 0)) == 3 and target.fence.inherited == {}


def test_a_source_keeps_the_offsets_it_had_at_its_cutover(zero: Shard) -> None:
    mine = owned(TWO, 0)
    zero.apply(InstallTopology(0, TWO.to_dict()))
    records = tuple(IngestRecord(offset, upsert([mine[offset]], 1.0)) for offset in range(4))
    zero.apply(IngestBatch((PartitionBatch("t", 0, records),)))
    zero.apply(PrepareMigration(0, TWO.to_dict(), THREE.to_dict()))
    zero.apply(FenceMoving(0, THREE.epoch))
    zero.apply(InstallTopology(0, THREE.to_dict()))
    staying = [i for i in owned(THREE, 0) if i not in mine[:4]]
    later = (IngestRecord(9, upsert([staying[0]], 2.0)),)
    zero.apply(IngestBatch((PartitionBatch("t", 0, later),)))  # its live offset moves on
    ownership = zero.topology_status()["ownership"]
    assert ownership["ingest_marks"] == [["t", 0, 9]]
    assert ownership["handover"] == {"epoch": THREE.epoch, "marks": [["t", 0, 3]]}
