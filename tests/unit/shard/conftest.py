"""Shard fixtures: every shard a test creates lives under tmp_path and is closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vecstore.shard.settings import GpuMode, ShardSettings
from vecstore.shard.state import Shard

ShardFactory = Callable[..., Shard]


@pytest.fixture
def make_shard(tmp_path: Path) -> Iterator[ShardFactory]:
    """Build shards with small thresholds (no indexer thread: tests step by hand); close them all."""
    created: list[Shard] = []

    def factory(name: str = "shard", **overrides: Any) -> Shard:
        options: dict[str, Any] = {
            "seal_threshold": 50,
            "gpu": GpuMode.OFF,
            **overrides,
        }
        shard = Shard(ShardSettings(data_dir=tmp_path / name, **options))
        created.append(shard)
        return shard

    yield factory
    for shard in created:
        shard.close()


@pytest.fixture
def shard(make_shard: ShardFactory) -> Shard:
    """One shard with seal_threshold=50."""
    return make_shard()
