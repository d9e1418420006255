"""Shard settings from the environment: typed overrides, garbage rejected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vecstore.cluster.errors import InvalidRequest
from vecstore.shard.settings import GpuMode, ShardSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("VECSTORE_", "TEST_")):
            monkeypatch.delenv(name)


def test_defaults_without_environment(tmp_path: Path) -> None:
    assert ShardSettings.from_env(tmp_path) == ShardSettings(data_dir=tmp_path)


def test_environment_overrides_each_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_SEAL_THRESHOLD", "500")
    monkeypatch.setenv("VECSTORE_EXACT_LIMIT", " 77 ")
    monkeypatch.setenv("VECSTORE_COMPACTION_DEAD_RATIO", "0.5")
    monkeypatch.setenv("VECSTORE_MAX_PAYLOAD_BYTES", "1024")
    monkeypatch.setenv("VECSTORE_GPU", " OFF ")
    monkeypatch.setenv("VECSTORE_DATA_DIR", "/somewhere/else")
    settings = ShardSettings.from_env(tmp_path)
    assert settings.seal_threshold == 500
    assert settings.exact_limit == 77
    assert settings.compaction_dead_ratio == 0.5
    assert settings.max_payload_bytes == 1024
    assert settings.gpu is GpuMode.OFF
    assert settings.data_dir == tmp_path
    assert settings.index_chunk == ShardSettings(data_dir=tmp_path).index_chunk


def test_custom_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SEAL_THRESHOLD", "9")
    monkeypatch.setenv("VECSTORE_SEAL_THRESHOLD", "10")
    assert ShardSettings.from_env(tmp_path, prefix="TEST_").seal_threshold == 9


@pytest.mark.parametrize(
    ("name", "raw", "kind"),
    [
        ("VECSTORE_SEAL_THRESHOLD", "lots", "int"),
        ("VECSTORE_SEAL_THRESHOLD", "1.5", "int"),
        ("VECSTORE_SEAL_THRESHOLD", "", "int"),
        ("VECSTORE_COMPACTION_DEAD_RATIO", "half", "float"),
        ("VECSTORE_GPU", "maybe", "GpuMode"),
        ("VECSTORE_GPU", "", "GpuMode"),
    ],
)
def test_garbage_is_rejected(
    name: str, raw: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(InvalidRequest) as caught:
        ShardSettings.from_env(tmp_path)
    assert name in caught.value.message
    assert f"not a valid {kind}" in caught.value.message
