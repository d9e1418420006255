"""Snapshots: a directory or one file that restores to the same logical state and answers."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

import vecstore.shard.collection as collection_module
from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    IngestBatch,
    IngestRecord,
    OverwritePayload,
    PartitionBatch,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.errors import MalformedCommand
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema, HnswConfig, Metric, StorageDtype
from vecstore.shard.segment import write_segment as real_write_segment
from vecstore.shard.state import Shard

ShardFactory = Callable[..., Shard]
DIM = 5
WIDE = HnswConfig(connectivity=16, expansion_add=200, expansion_search=400)
UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"
QUERIES = np.random.default_rng(123).normal(size=(4, DIM)).astype(np.float32)
FILTERS: list[dict[str, Any]] = [
    {},
    {"must": [{"key": "group", "match": {"value": 1}}]},
    {"must_not": [{"is_empty": {"key": "note"}}]},
]


def upsert(ids: list[Any], seed: int, collection: str = "c") -> Upsert:
    vectors = np.random.default_rng(seed).normal(size=(len(ids), DIM))
    return Upsert.build(collection, ids, vectors, [{"group": len(str(i)) % 3, "seed": seed} for i in ids])


def rich_history() -> list[Command]:
    """Sealed points with tombstones and payload overrides, plus an unindexed memtable tail."""
    return [
        CreateCollection(CollectionSchema("c", DIM, Metric.COSINE, StorageDtype.F32, WIDE)),
        CreateCollection(CollectionSchema("q8", DIM, Metric.L2, StorageDtype.I8, WIDE)),
        upsert(list(range(80)), seed=1),
        upsert(list(range(60)), seed=2, collection="q8"),
    ]


def rich_tail() -> list[Command]:
    """Applied after the first maintain: changes to sealed points, and memtable rows."""
    return [
        DeletePoints("c", Selector.of_ids(range(0, 80, 5))),
        SetPayload("c", Selector.of_ids([1, 2, 3]), {"note": "override"}),
        OverwritePayload("q8", Selector.of_ids([7]), {"note": "only"}),
        DeletePayloadKeys("c", Selector.of_ids([4]), ("group",)),
        upsert([6, 100, 101, UUID_TEXT], seed=3),  # 6 replaces a sealed point
        DeletePoints("c", Selector.of_ids([101])),
        SetPayload("c", Selector.of_ids([100]), {"note": "in memtable"}),
        IngestBatch(
            (
                PartitionBatch("events", 0, (IngestRecord(41, upsert([200], seed=4)),)),
                PartitionBatch("events", 2, (IngestRecord(7, upsert([201], seed=5, collection="q8")),)),
            )
        ),
        IngestBatch((PartitionBatch("events", 0, (IngestRecord(40, upsert([202], seed=6)),)),)),
    ]


def build(shard: Shard) -> None:
    for command in rich_history():
        shard.apply(command)
    shard.maintain()
    for command in rich_tail():
        shard.apply(command)


def answers(shard: Shard, hnsw: bool = True) -> dict[str, Any]:
    """Everything a client can observe.

    HNSW answers are compared only between shards that share their graphs (restored from the
    same snapshot): graphs built separately may differ within HNSW's approximation.
    """
    result: dict[str, Any] = {"digest": shard.digest(), "ingest": shard.status()["ingest"]}
    for name in sorted(shard.collections):
        page, _ = shard.scroll(name, limit=10_000, with_vector=True)
        result[name] = {
            "schema": shard.collection(name).schema,
            "points": [record.to_dict() for record in page],
            "counts": [shard.count(name, parse_filter(f)) for f in FILTERS],
            "search": [
                [
                    [hit.to_dict() for hit in hits]
                    for hits in shard.search(name, QUERIES, 6, parse_filter(f), exact=exact)
                ]
                for f in FILTERS
                for exact in ((False, True) if hnsw else (True,))
            ],
        }
    return result


@pytest.fixture
def source(make_shard: ShardFactory) -> Shard:
    shard = make_shard("source")
    build(shard)
    collection = shard.collection("c")
    assert collection.sealed and collection.tombstones and collection.overrides
    assert collection.active.count > collection.active.indexed
    return shard


def test_directory_snapshot_restores_equal_state(
    source: Shard, make_shard: ShardFactory, tmp_path: Path
) -> None:
    expected = answers(source)
    source.snapshot(tmp_path / "snap")
    assert (tmp_path / "snap" / "manifest.msgpack").is_file()
    replica = make_shard("replica")
    replica.restore(tmp_path / "snap")
    assert answers(replica) == expected
    assert replica.fence.applied == {("events", 0): 41, ("events", 2): 7}


def test_file_snapshot_restores_equal_state(source: Shard, make_shard: ShardFactory, tmp_path: Path) -> None:
    expected = answers(source)
    source.snapshot_to_file(tmp_path / "snap.tar")
    assert tarfile.is_tarfile(tmp_path / "snap.tar")
    assert not (tmp_path / "snap.tar.partial").exists()
    replica = make_shard("replica")
    replica.restore_from_file(tmp_path / "snap.tar")
    assert answers(replica) == expected
    assert answers(source) == expected


def test_restore_replaces_existing_state(source: Shard, make_shard: ShardFactory, tmp_path: Path) -> None:
    source.snapshot(tmp_path / "snap")
    replica = make_shard("replica")
    replica.apply(CreateCollection(CollectionSchema("other", 3)))
    replica.apply(CreateCollection(CollectionSchema("c", 3)))
    replica.apply(IngestBatch((PartitionBatch("events", 9, (IngestRecord(99, upsert([1], 0, "other")),)),)))
    replica.restore(tmp_path / "snap")
    assert sorted(replica.collections) == ["c", "q8"]
    assert ("events", 9) not in replica.fence.applied
    assert answers(replica) == answers(source)


def test_replicas_stay_equal_after_more_commands(
    source: Shard, make_shard: ShardFactory, tmp_path: Path
) -> None:
    source.snapshot_to_file(tmp_path / "snap.tar")
    replica = make_shard("replica")
    replica.restore_from_file(tmp_path / "snap.tar")
    more: list[Command] = [
        SetPayload("c", Selector.of_ids([1, 100, 200]), {"more": 1}),
        DeletePayloadKeys("c", Selector.of_ids([1, 100]), ("note",)),
        DeletePoints("c", Selector.of_ids([2, UUID_TEXT])),
        upsert(list(range(300, 360)), seed=9),
        IngestBatch(
            (
                PartitionBatch(
                    "events", 0, (IngestRecord(41, upsert([1], 0)), IngestRecord(42, upsert([3], 0)))
                ),
            )
        ),
    ]
    for shard in (source, replica):
        for command in more:
            shard.apply(command)
    assert answers(replica) == answers(source)
    for shard in (source, replica):
        shard.maintain(force=True)
    assert answers(replica, hnsw=False) == answers(source, hnsw=False)


def test_snapshot_hard_links_sealed_files_and_outlives_its_source(
    source: Shard, make_shard: ShardFactory, tmp_path: Path
) -> None:
    snap = tmp_path / "snap"
    source.snapshot(snap)
    segment = source.collection("c").sealed[0]
    linked = snap / "collection-0" / segment.path.name  # collections are numbered in name order
    for item in segment.path.iterdir():
        assert item.stat().st_ino == (linked / item.name).stat().st_ino
    expected = answers(source)
    replica = make_shard("replica")
    replica.restore(snap)
    shutil.rmtree(snap)
    source.apply(CreateCollection(CollectionSchema("gone", 2)))
    assert answers(replica) == expected


def test_snapshot_of_an_empty_shard(make_shard: ShardFactory, tmp_path: Path) -> None:
    empty = make_shard("empty")
    empty.snapshot_to_file(tmp_path / "empty.tar")
    replica = make_shard("replica")
    replica.apply(CreateCollection(CollectionSchema("c", 3)))
    replica.restore_from_file(tmp_path / "empty.tar")
    assert replica.collections == {}
    assert replica.digest() == empty.digest()


def test_snapshot_target_must_not_exist(source: Shard, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        source.snapshot(tmp_path / "taken")


def test_a_snapshot_taken_while_a_segment_is_being_sealed(
    make_shard: ShardFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payload changes to a freezing memtable become overrides, which must not shadow later writes."""
    source = make_shard("source")
    source.apply(CreateCollection(CollectionSchema("c", DIM)))
    source.apply(upsert(list(range(60)), seed=1))

    def write_segment_while_traffic_arrives(*args: Any, **kwargs: Any) -> Any:
        source.apply(SetPayload("c", Selector.of_ids([3]), {"note": "during seal"}))
        source.snapshot(tmp_path / "snap")
        return real_write_segment(*args, **kwargs)

    monkeypatch.setattr(collection_module, "write_segment", write_segment_while_traffic_arrives)
    source.maintain()
    monkeypatch.setattr(collection_module, "write_segment", real_write_segment)
    replica = make_shard("replica")
    replica.restore(tmp_path / "snap")
    assert answers(replica, hnsw=False) == answers(source, hnsw=False)
    for command in (
        SetPayload("c", Selector.of_ids([3]), {"after": 1}),
        DeletePayloadKeys("c", Selector.of_ids([3]), ("note",)),
    ):
        source.apply(command)
        replica.apply(command)
        assert answers(replica, hnsw=False) == answers(source, hnsw=False)
    assert replica.get("c", [3])[0].payload == {"group": 1, "seed": 1, "after": 1}


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    "corruption",
    [
        "random",
        "empty",
        "truncated",
        "no_manifest",
        "manifest_not_msgpack",
        "manifest_not_a_map",
        "wrong_format",
    ],
)
def test_a_corrupt_snapshot_file_is_rejected_and_changes_nothing(
    source: Shard, make_shard: ShardFactory, tmp_path: Path, corruption: str
) -> None:
    good = tmp_path / "good.tar"
    source.snapshot_to_file(good)
    bad = tmp_path / "bad.tar"
    if corruption == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(20_000))
    elif corruption == "empty":
        bad.write_bytes(b"")
    elif corruption == "truncated":
        bad.write_bytes(good.read_bytes()[:700])
    elif corruption == "no_manifest":
        write_tar(bad, {"snapshot/readme.txt": b"hello"})
    elif corruption == "manifest_not_msgpack":
        write_tar(bad, {"snapshot/manifest.msgpack": b"\xc1\xc1"})
    elif corruption == "manifest_not_a_map":
        write_tar(bad, {"snapshot/manifest.msgpack": msgpack.packb([1, 2, 3])})
    else:
        write_tar(bad, {"snapshot/manifest.msgpack": msgpack.packb({"format": 99, "collections": []})})
    replica = make_shard("replica")
    replica.restore_from_file(good)
    before = answers(replica)
    with pytest.raises(MalformedCommand):
        replica.restore_from_file(bad)
    assert answers(replica) == before


def test_a_missing_snapshot_directory_is_rejected(shard: Shard, tmp_path: Path) -> None:
    with pytest.raises(MalformedCommand, match="unreadable"):
        shard.restore(tmp_path / "nowhere")
