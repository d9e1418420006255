"""Shard.apply: every write command, and rejected commands that leave no trace."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import (
    CreateCollection,
    DeletePayloadKeys,
    DeletePoints,
    DropCollection,
    OverwritePayload,
    Selector,
    SetPayload,
    Upsert,
)
from vecstore.cluster.errors import (
    CollectionConflict,
    CollectionNotFound,
    InvalidFilter,
    InvalidRequest,
    InvalidSchema,
    InvalidVector,
    PayloadTooLarge,
    UnsupportedVersion,
    VecStoreError,
)
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema, Metric, StorageDtype
from vecstore.shard.state import Shard

ShardFactory = Callable[..., Shard]

DIM = 4
UUID_TEXT = "5f1d3b2a-0c4e-4f7a-9b8c-1d2e3f405162"


def vectors(count: int, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)


def create(shard: Shard, name: str = "c", dimension: int = DIM) -> None:
    shard.apply(CreateCollection(CollectionSchema(name, dimension)))


def fill(shard: Shard, count: int, name: str = "c", seed: int = 0) -> npt.NDArray[np.float32]:
    data = vectors(count, seed)
    shard.apply(
        Upsert.build(name, list(range(count)), data, [{"n": i, "even": i % 2 == 0} for i in range(count)])
    )
    return data


def payloads(shard: Shard, ids: list[object], name: str = "c") -> dict[object, Any]:
    return {record.id: record.payload for record in shard.get(name, ids)}


def snapshot_of(shard: Shard) -> tuple[str, dict[str, Any], list[Any]]:
    records = []
    for name in sorted(shard.collections):
        page, _ = shard.scroll(name, limit=10_000, with_vector=True)
        records.append([name, [record.to_dict() for record in page]])
    return shard.digest(), shard.status(), records


def assert_rejected_without_trace(
    shard: Shard, action: Callable[[], object], error: type[VecStoreError], fragment: str = ""
) -> VecStoreError:
    before = snapshot_of(shard)
    with pytest.raises(error) as caught:
        action()
    assert fragment in caught.value.message
    assert snapshot_of(shard) == before
    return caught.value


# ---- create and drop ------------------------------------------------------------------


def test_create_is_idempotent_and_conflicts_on_a_different_schema(shard: Shard) -> None:
    schema = CollectionSchema("c", DIM, Metric.L2, StorageDtype.F16)
    assert shard.apply(CreateCollection(schema)) == {"status": "ok", "created": True}
    fill(shard, 3)
    digest = shard.digest()
    assert shard.apply(CreateCollection(schema)) == {"status": "ok", "created": False}
    assert shard.digest() == digest
    assert shard.count("c") == 3
    for different in (
        CollectionSchema("c", DIM + 1, Metric.L2, StorageDtype.F16),
        CollectionSchema("c", DIM, Metric.COSINE, StorageDtype.F16),
        CollectionSchema("c", DIM, Metric.L2, StorageDtype.F32),
    ):
        err = assert_rejected_without_trace(
            shard,
            partial(shard.apply, CreateCollection(different)),
            CollectionConflict,
            "different schema",
        )
        assert err.http_status == 409
    assert shard.collection("c").schema == schema


def test_create_validates_a_schema_built_without_checks(shard: Shard) -> None:
    assert_rejected_without_trace(
        shard, lambda: shard.apply(CreateCollection(CollectionSchema("c", 0))), InvalidSchema, "dimension"
    )
    assert shard.collections == {}


def test_drop_removes_the_collection_and_its_files(shard: Shard) -> None:
    create(shard)
    fill(shard, 60)
    shard.maintain()
    directory = shard.collection("c").directory
    assert any(directory.iterdir())
    assert shard.apply(DropCollection("c")) == {"status": "ok", "dropped": True}
    assert not directory.exists()
    with pytest.raises(CollectionNotFound) as caught:
        shard.count("c")
    assert caught.value.name == "c"
    assert shard.apply(DropCollection("c")) == {"status": "ok", "dropped": False}
    create(shard)
    assert shard.count("c") == 0


def test_digest_reflects_schemas_and_content(make_shard: ShardFactory) -> None:
    one, two = make_shard("one"), make_shard("two")
    assert one.digest() == two.digest()
    create(one)
    assert one.digest() != two.digest()
    create(two)
    fill(one, 5)
    fill(two, 5)
    assert one.digest() == two.digest()
    one.apply(SetPayload("c", Selector.of_ids([1]), {"n": 100}))
    assert one.digest() != two.digest()
    two.apply(SetPayload("c", Selector.of_ids([1]), {"n": 100}))
    assert one.digest() == two.digest()


# ---- upsert and delete ----------------------------------------------------------------


def test_upsert_inserts_and_replaces(shard: Shard) -> None:
    create(shard)
    data = fill(shard, 5)
    assert shard.count("c") == 5
    replacement = np.full((1, DIM), 0.5, np.float32)
    result = shard.apply(
        Upsert.build("c", [2, UUID_TEXT], np.vstack([replacement, data[:1]]), [{"v": 2}, None])
    )
    assert result == {"status": "ok", "upserted": 2}
    assert shard.count("c") == 6
    [record] = shard.get("c", [2], with_vector=True)
    assert record.payload == {"v": 2}
    assert record.vector == replacement[0].tolist()
    assert shard.collection("c").stats()["tombstones"] == 1
    assert payloads(shard, [UUID_TEXT.upper()]) == {UUID_TEXT: {}}


def test_replacing_a_point_twice_ends_with_the_latest(shard: Shard) -> None:
    create(shard)
    for round_number in range(3):
        shard.apply(Upsert.build("c", [7], np.full((1, DIM), round_number + 1.0), [{"round": round_number}]))
    [record] = shard.get("c", [7], with_vector=True)
    assert record.payload == {"round": 2}
    assert record.vector == [3.0] * DIM
    assert shard.count("c") == 1
    hits = shard.search("c", np.ones((1, DIM)), 5)
    assert [hit.id for hit in hits[0]] == [7]


def test_delete_by_ids_ignores_missing_ones(shard: Shard) -> None:
    create(shard)
    fill(shard, 10)
    result = shard.apply(DeletePoints("c", Selector.of_ids([1, 3, 3, 99, UUID_TEXT])))
    assert result == {"status": "ok", "deleted": 2}
    assert shard.count("c") == 8
    assert shard.get("c", [1, 3, 4]) == shard.get("c", [4])
    assert shard.apply(DeletePoints("c", Selector.of_ids([1])))["deleted"] == 0


def test_delete_by_filter(shard: Shard) -> None:
    create(shard)
    fill(shard, 10)
    even = parse_filter({"must": [{"key": "even", "match": {"value": True}}]})
    assert shard.apply(DeletePoints("c", Selector.of_filter(even)))["deleted"] == 5
    assert shard.count("c") == 5
    assert shard.count("c", even) == 0
    assert sorted(r.id for r in shard.scroll("c")[0]) == [1, 3, 5, 7, 9]


# ---- payload changes ------------------------------------------------------------------


@pytest.mark.parametrize("sealed", [False, True])
def test_set_overwrite_and_delete_payload_keys(make_shard: ShardFactory, sealed: bool) -> None:
    shard = make_shard(seal_threshold=5)
    create(shard)
    shard.apply(Upsert.build("c", [1, 2, 3], vectors(3), [{"a": 1, "b": {"x": 1}}, {"a": 2}, {}]))
    if sealed:
        shard.maintain(force=True)
        assert shard.collection("c").stats()["segments"] == 1
    assert shard.apply(SetPayload("c", Selector.of_ids([1, 2, 9]), {"b": [1], "c": "new"}))["updated"] == 2
    assert payloads(shard, [1, 2, 3]) == {
        1: {"a": 1, "b": [1], "c": "new"},
        2: {"a": 2, "b": [1], "c": "new"},
        3: {},
    }
    assert shard.apply(OverwritePayload("c", Selector.of_ids([2]), {"only": True}))["updated"] == 1
    assert payloads(shard, [2]) == {2: {"only": True}}
    assert shard.apply(DeletePayloadKeys("c", Selector.of_ids([1, 2]), ("a", "c", "zzz")))["updated"] == 2
    assert payloads(shard, [1, 2]) == {1: {"b": [1]}, 2: {"only": True}}
    has_b = parse_filter({"must": [{"key": "b", "match": {"value": 1}}]})
    assert shard.apply(SetPayload("c", Selector.of_filter(has_b), {"tagged": 1}))["updated"] == 1
    assert payloads(shard, [1]) == {1: {"b": [1], "tagged": 1}}
    hits = shard.search("c", vectors(1, seed=5), 3, has_b)
    assert [(hit.id, hit.payload) for hit in hits[0]] == [(1, {"b": [1], "tagged": 1})]
    assert shard.count("c", parse_filter({"must": [{"key": "a", "match": {"value": 2}}]})) == 0


# ---- rejected commands change nothing -------------------------------------------------


@pytest.fixture
def filled(shard: Shard) -> Shard:
    create(shard)
    fill(shard, 60)
    shard.maintain()
    fill(shard, 8, seed=3)  # ids 0..7 again: replaced, now in the memtable
    return shard


def test_wrong_dimension(filled: Shard) -> None:
    command = Upsert.build("c", [0, 500], vectors(2)[:, :3])
    err = assert_rejected_without_trace(filled, lambda: filled.apply(command), InvalidVector, "3 dimensions")
    assert "expects 4" in err.message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_vectors_built_directly(filled: Shard, bad: float) -> None:
    matrix = vectors(2)
    matrix[1, 2] = bad
    command = Upsert("c", (0, 500), DIM, matrix.astype("<f4").tobytes(), ({}, {}))
    assert_rejected_without_trace(filled, lambda: filled.apply(command), InvalidVector, "finite")


def test_duplicate_ids_built_directly(filled: Shard) -> None:
    command = Upsert("c", (0, 0), DIM, vectors(2).astype("<f4").tobytes(), ({}, {}))
    assert decode_command(encode_command(command)) == command  # the wire does not catch it
    assert_rejected_without_trace(
        filled, lambda: filled.apply(command), InvalidRequest, "same point id twice"
    )


def test_unknown_collection(filled: Shard) -> None:
    for command in (
        Upsert.build("nope", [1], vectors(1)),
        DeletePoints("nope", Selector.of_ids([1])),
        SetPayload("nope", Selector.of_ids([1]), {"a": 1}),
        OverwritePayload("nope", Selector.of_ids([1]), {}),
        DeletePayloadKeys("nope", Selector.of_ids([1]), ("a",)),
    ):
        err = assert_rejected_without_trace(
            filled, partial(filled.apply, command), CollectionNotFound, "'nope' does not exist"
        )
        assert err.http_status == 404
    for read in (
        lambda: filled.search("nope", vectors(1), 1),
        lambda: filled.get("nope", [1]),
        lambda: filled.scroll("nope"),
        lambda: filled.count("nope"),
        lambda: filled.explain("nope", 1),
    ):
        with pytest.raises(CollectionNotFound):
            read()


def test_malformed_filter_is_rejected_at_parse(filled: Shard) -> None:
    def delete_where_price_is_strange() -> None:
        condition = parse_filter({"must": [{"key": "price", "match": {"value": 1}, "range": {"gt": 1}}]})
        filled.apply(DeletePoints("c", Selector.of_filter(condition)))

    assert_rejected_without_trace(filled, delete_where_price_is_strange, InvalidFilter, "'price'")


def test_oversized_payload_on_upsert(make_shard: ShardFactory) -> None:
    shard = make_shard(max_payload_bytes=100)
    create(shard)
    fill(shard, 3)
    command = Upsert.build("c", [0, 50], vectors(2), [{"t": "x" * 200}, {}])
    err = assert_rejected_without_trace(shard, lambda: shard.apply(command), PayloadTooLarge, "limit is 100")
    assert err.http_status == 413


@pytest.mark.parametrize("sealed", [False, True])
def test_set_payload_growing_past_the_limit(make_shard: ShardFactory, sealed: bool) -> None:
    shard = make_shard(max_payload_bytes=100, seal_threshold=3)
    create(shard)
    shard.apply(Upsert.build("c", [1, 2, 3], vectors(3), [{"t": "x"}, {"t": "x" * 60}, {}]))
    if sealed:
        shard.maintain()
    everything = Selector.of_filter(parse_filter({}))
    for command in (
        SetPayload("c", everything, {"u": "y" * 40}),  # fits points 1 and 3, not point 2
        OverwritePayload("c", Selector.of_ids([3]), {"u": "y" * 120}),
    ):
        assert_rejected_without_trace(shard, partial(shard.apply, command), PayloadTooLarge, "limit is 100")
    assert payloads(shard, [1, 2, 3]) == {1: {"t": "x"}, 2: {"t": "x" * 60}, 3: {}}


def test_unstorable_payload_built_directly(filled: Shard) -> None:
    command = Upsert("c", (0,), DIM, vectors(1).astype("<f4").tobytes(), ({"n": 2**70},))
    assert_rejected_without_trace(filled, lambda: filled.apply(command), InvalidRequest, "cannot be stored")


def test_unknown_command_version_is_rejected_at_decode(filled: Shard) -> None:
    encoded = bytearray(encode_command(Upsert.build("c", [1], vectors(1))))
    assert encoded[1] == 1  # fixarray(3), then the version as a positive fixint
    encoded[1] = 2

    def decode_and_apply() -> None:
        filled.apply(decode_command(bytes(encoded)))

    assert_rejected_without_trace(filled, decode_and_apply, UnsupportedVersion, "version 2")


def test_rejected_commands_leave_a_usable_shard(filled: Shard, tmp_path: Path) -> None:
    with pytest.raises(InvalidVector):
        filled.apply(Upsert.build("c", [1], vectors(1)[:, :2]))
    filled.apply(Upsert.build("c", [1000], vectors(1)))
    filled.maintain()
    assert filled.count("c") == 61
    assert [r.id for r in filled.get("c", [1000])] == [1000]
