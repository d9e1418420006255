"""A snapshot with a valid format but broken entries leaves the shard as it was."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest

from vecstore.cluster.codec import decode_command, encode_command
from vecstore.cluster.commands import CreateCollection, Upsert
from vecstore.cluster.errors import MalformedCommand, UnsupportedVersion
from vecstore.cluster.schema import CollectionSchema
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard


def test_broken_manifest_entries_change_nothing(tmp_path: Path) -> None:
    shard = Shard(ShardSettings(data_dir=tmp_path / "shard"))
    try:
        shard.apply(CreateCollection(CollectionSchema("c", 4)))
        shard.apply(Upsert.build("c", [1, 2], np.eye(2, 4)))
        before = shard.digest()
        snapshot = tmp_path / "snap"
        shard.snapshot(snapshot)
        manifest = msgpack.unpackb((snapshot / "manifest.msgpack").read_bytes(), strict_map_key=False)
        del manifest["collections"][0]["next_key"]
        (snapshot / "manifest.msgpack").write_bytes(msgpack.packb(manifest))
        with pytest.raises(MalformedCommand, match="inconsistent"):
            shard.restore(snapshot)
        assert shard.digest() == before
        assert [r.id for r in shard.get("c", [1, 2])] == [1, 2]
    finally:
        shard.close()


def test_boolean_version_is_not_version_one() -> None:
    encoded = msgpack.unpackb(encode_command(CreateCollection(CollectionSchema("c", 4))))
    encoded[0] = True
    with pytest.raises(UnsupportedVersion):
        decode_command(msgpack.packb(encoded))
