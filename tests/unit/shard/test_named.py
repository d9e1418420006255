"""Collections of named vectors in one shard: rows plus one space per vector, against a
brute-force model of what each point holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.shard.conftest import ShardFactory
from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import (
    Command,
    CreateCollection,
    DeletePoints,
    DeleteVectors,
    DropCollection,
    NamedVectors,
    Selector,
    SetPayload,
    UpdateVectors,
    Upsert,
)
from vecstore.cluster.errors import InvalidRequest, InvalidVector, NotFound
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema, Metric, VectorSpec
from vecstore.shard import named, reads
from vecstore.shard.state import Shard

SCHEMA = CollectionSchema.with_named(
    "docs", {"text": VectorSpec(4, Metric.COSINE), "image": VectorSpec(3, Metric.L2)}
)


def _upsert(
    ids: list[int], text: dict[int, list[float]], image: dict[int, list[float]], **extra: object
) -> Upsert:
    def part(vectors: dict[int, list[float]]) -> tuple[list[int], np.ndarray]:
        rows = [p for p, i in enumerate(ids) if i in vectors]
        return rows, np.array([vectors[ids[p]] for p in rows], dtype=np.float32)

    payloads = [{"n": i, **extra} for i in ids]
    return Upsert.build_named("docs", ids, {"text": part(text), "image": part(image)}, payloads)


def _shard(shard: Shard) -> Shard:
    shard.apply(CreateCollection(SCHEMA))
    return shard


def test_points_may_lack_vectors_and_searches_read_one_space(shard: Shard) -> None:
    _shard(shard)
    rng = np.random.default_rng(3)
    text = {i: rng.normal(size=4).tolist() for i in range(0, 40, 2)}
    image = {i: rng.normal(size=3).tolist() for i in range(0, 40, 3)}
    shard.apply(_upsert(list(range(40)), text, image))
    assert reads.count(shard.collection("docs")) == 40
    spaces = shard.spaces("docs")
    assert sorted(spaces["text"].id_map) == sorted(text)
    assert sorted(spaces["image"].id_map) == sorted(image)
    query = rng.normal(size=(1, 3)).astype(np.float32)
    hits = shard.search("docs", query, 5, using="image", exact=True)[0]
    expected = sorted(image, key=lambda i: float(np.sum((np.array(image[i]) - query[0]) ** 2)))[:5]
    assert [h.id for h in hits] == expected
    # a filter reads the space's copy of the payload
    condition = parse_filter({"must": [{"key": "n", "range": {"lt": 20}}]})
    filtered = shard.search("docs", query, 40, condition, using="image", exact=True)[0]
    assert sorted(h.id for h in filtered) == sorted(i for i in image if i < 20)
    with pytest.raises(InvalidRequest, match="say which to search with 'using'"):
        shard.search("docs", query, 5)
    with pytest.raises(InvalidRequest, match="no vector named 'audio'"):
        shard.search("docs", query, 5, using="audio")


def test_upsert_replaces_the_whole_point_and_payload_changes_reach_every_space(shard: Shard) -> None:
    _shard(shard)
    shard.apply(_upsert([1, 2], {1: [1, 0, 0, 0], 2: [0, 1, 0, 0]}, {1: [1, 1, 1]}))
    shard.apply(_upsert([1], {}, {1: [2, 2, 2]}))  # point 1 has no text vector any more
    spaces = shard.spaces("docs")
    assert 1 not in spaces["text"].id_map and 2 in spaces["text"].id_map
    shard.apply(
        SetPayload("docs", Selector.of_filter(parse_filter({"must": [{"has_id": [1, 2]}]})), {"tag": "x"})
    )
    for space in spaces.values():
        for point_id, key in space.id_map.items():
            assert space.payload_of(key)["tag"] == "x", point_id
    records = reads.get(shard.collection("docs"), [1, 2])
    found = named.attach_vectors(shard.collection("docs"), spaces, records, ["text", "image"])
    assert found[0].vector == {"image": [2.0, 2.0, 2.0]}
    assert found[1].vector == {"text": [0.0, 1.0, 0.0, 0.0]}
    normalized = named.attach_vectors(shard.collection("docs"), spaces, records, ["text"], normalize=True)
    assert normalized[1].vector == {"text": [0.0, 1.0, 0.0, 0.0]}


def test_vector_updates_and_deletes(shard: Shard) -> None:
    _shard(shard)
    shard.apply(_upsert([1, 2, 3], {1: [1, 0, 0, 0]}, {2: [1, 1, 1]}))
    shard.apply(UpdateVectors("docs", (3,), (NamedVectors.build("text", [0], [[3, 4, 0, 0]]),)))
    spaces = shard.spaces("docs")
    text = spaces["text"]
    assert text.payload_of(text.id_map[3]) == {"n": 3}
    with pytest.raises(NotFound, match="No point with id 9"):
        shard.apply(UpdateVectors("docs", (9,), (NamedVectors.build("text", [0], [[1, 0, 0, 0]]),)))
    with pytest.raises(InvalidVector, match="expects 4"):
        shard.apply(UpdateVectors("docs", (1,), (NamedVectors.build("text", [0], [[1, 0]]),)))
    shard.apply(DeleteVectors("docs", Selector.of_ids([1, 3]), ("text",)))
    assert not text.id_map and reads.count(shard.collection("docs")) == 3
    shard.apply(DeletePoints("docs", Selector.of_ids([2])))
    assert not spaces["image"].id_map and reads.count(shard.collection("docs")) == 2


def test_refused_commands_change_nothing(shard: Shard) -> None:
    _shard(shard)
    shard.apply(_upsert([1], {1: [1, 0, 0, 0]}, {}))
    before = shard.digest()
    bad = Upsert.build_named(
        "docs", [1, 2], {"text": ([0, 1], [[1, 1, 1, 1], [2, 2, 2, 2]]), "image": ([1], [[1.0, 2.0]])}
    )
    with pytest.raises(InvalidVector, match="expects 3"):
        shard.apply(bad)
    with pytest.raises(InvalidVector, match="give each point's vectors by name"):
        shard.apply(Upsert.build("docs", [5], [[1.0]]))
    assert shard.digest() == before
    shard.apply(CreateCollection(CollectionSchema("plain", 2)))
    with pytest.raises(InvalidVector, match="one unnamed vector"):
        shard.apply(UpdateVectors("plain", (1,), (NamedVectors.build("text", [0], [[1, 0]]),)))


def test_the_unnamed_vector_of_a_plain_collection_is_updated_in_place(make_shard: ShardFactory) -> None:
    """Qdrant's `PUT .../points/vectors` with a plain list on a collection of one unnamed
    vector: the vector changes, the payload stays; replicas agree."""
    replicas = [make_shard(), make_shard()]
    for replica in replicas:
        replica.apply(CreateCollection(CollectionSchema("plain", 2)))
        replica.apply(Upsert.build("plain", [1, 2], [[1.0, 0.0], [0.0, 1.0]], [{"a": 1}, {"a": 2}]))
        before = replica.digest()
        with pytest.raises(NotFound, match="No point with id 9"):
            replica.apply(UpdateVectors("plain", (2, 9), (NamedVectors.build("", [0, 1], [[1, 1], [2, 2]]),)))
        with pytest.raises(InvalidVector, match="expected dim: 2, got 3"):
            replica.apply(UpdateVectors("plain", (2,), (NamedVectors.build("", [0], [[1, 1, 1]]),)))
        assert replica.digest() == before  # a refused update changes nothing
        replica.apply(UpdateVectors("plain", (2,), (NamedVectors.build("", [0], [[3.0, 4.0]]),)))
        collection = replica.collection("plain")
        key = collection.id_map[2]
        assert collection.payload_of(key) == {"a": 2}
        assert collection.vectors_of(np.array([key])).tolist() == [[3.0, 4.0]]
        assert reads.count(collection) == 2
    assert replicas[0].digest() == replicas[1].digest()


def test_commands_round_trip_the_codec() -> None:
    commands: list[Command] = [
        _upsert([1, 2], {1: [1, 0, 0, 0]}, {1: [1, 2, 3], 2: [3, 2, 1]}),
        UpdateVectors("docs", (7,), (NamedVectors.build("image", [0], [[1, 2, 3]]),)),
        DeleteVectors("docs", Selector.of_ids([1]), ("text", "image")),
        CreateCollection(SCHEMA),
    ]
    for command in commands:
        assert decode_command(encode_command(command)) == command


def test_replicas_agree_and_snapshots_restore_every_space(make_shard: ShardFactory, tmp_path: Path) -> None:
    first, second = _shard(make_shard("a")), _shard(make_shard("b"))
    rng = np.random.default_rng(5)
    for batch in range(4):  # past the seal threshold of 50: sealed segments too
        ids = list(range(batch * 30, batch * 30 + 30))
        text = {i: rng.normal(size=4).tolist() for i in ids if i % 2}
        image = {i: rng.normal(size=3).tolist() for i in ids if i % 5}
        for replica in (first, second):
            replica.apply(_upsert(ids, text, image))
            replica.maintain()
    assert first.digest() == second.digest()
    first.snapshot(tmp_path / "snap")
    restored = make_shard("c")
    restored.restore(tmp_path / "snap")
    assert restored.digest() == first.digest()
    query = rng.normal(size=(1, 4)).astype(np.float32)
    assert [h.id for h in restored.search("docs", query, 5, using="text", exact=True)[0]] == [
        h.id for h in first.search("docs", query, 5, using="text", exact=True)[0]
    ]
    first.apply(CreateCollection(SCHEMA))  # the same schema twice: a no-op
    first.apply(DropCollection("docs"))
    assert not first.collections


def test_has_vector_filters_are_resolved_in_writes_and_reads(shard: Shard) -> None:
    _shard(shard)
    shard.apply(_upsert([1, 2, 3, 4], {1: [1, 0, 0, 0], 2: [0, 1, 0, 0]}, {2: [1, 1, 1], 3: [2, 2, 2]}))
    having_image = parse_filter({"must": [{"has_vector": "image"}]})
    assert reads.count(shard.collection("docs"), shard.resolve("docs", having_image)) == 2
    shard.apply(
        DeletePoints("docs", Selector.of_filter(parse_filter({"must_not": [{"has_vector": "text"}]})))
    )
    assert sorted(shard.collection("docs").id_map) == [1, 2]
    with pytest.raises(InvalidRequest, match="no vector named 'audio'"):
        shard.resolve("docs", parse_filter({"must": [{"has_vector": "audio"}]}))
    shard.apply(CreateCollection(CollectionSchema("plain", 2)))
    shard.apply(Upsert.build("plain", [7], [[1.0, 2.0]]))
    assert (
        reads.count(
            shard.collection("plain"), shard.resolve("plain", parse_filter({"must": [{"has_vector": ""}]}))
        )
        == 1
    )


def test_points_without_any_vector_survive_the_codec(shard: Shard) -> None:
    _shard(shard)
    command = Upsert.build_named("docs", [5, 6], {}, [{"a": 1}, None])
    assert decode_command(encode_command(command)) == command
    shard.apply(decode_command(encode_command(command)))
    assert sorted(shard.collection("docs").id_map) == [5, 6]
    assert not shard.spaces("docs")["text"].id_map
