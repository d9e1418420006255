"""Typed settings of one shard's core, with environment overrides for deployment.

Settings that change what `apply` decides (the payload limit) must be equal on every
replica of a shard; the rest (thresholds, GPU) are physical and may differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from pathlib import Path

from vecstore.cluster.commands import DEFAULT_MAX_PAYLOAD_BYTES
from vecstore.cluster.errors import InvalidRequest


class GpuMode(StrEnum):
    """Whether the scorer uses cupy: `auto` when importable with a device, `on` requires it."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


@dataclass(frozen=True)
class ShardSettings:
    """Tuning of one shard's storage and search."""

    data_dir: Path
    seal_threshold: int = 100_000
    """Points in the mutable segment before it is written out and memory-mapped."""
    max_segment_points: int = 2_000_000
    """Compaction never merges segments beyond this many live points."""
    compaction_dead_ratio: float = 0.2
    """A sealed segment with this fraction of deleted points is rewritten."""
    index_chunk: int = 256
    """Vectors one indexing step adds (between two checks for a graph to publish)."""
    merge_chunk: int = 4_096
    """Rows a compaction merge inserts into its graph per indexer step; fresh rows are
    indexed between two steps, so a long merge does not hold writes back."""
    max_unindexed_bytes: int = 4 << 20
    """Backpressure: a leader holds new writes of points while more than this many bytes of
    vectors wait for HNSW (searches score those exactly); 0 turns it off."""
    exact_limit: int = 4_000
    """Filtered searches estimated to match at most this many points are scored exactly."""
    rescore_factor: int = 4
    """Candidates fetched per result for f16/i8 collections before full-precision re-scoring."""
    follower_graphs: bool = True
    """A follower adopts the HNSW graphs its leader built instead of building its own
    (`vecstore.shard.graphs`); off: every replica builds every graph."""
    graph_fallback_rows: int = 32_768
    """A follower waiting for its leader's graph builds its own once this many rows wait,
    beyond those the leader's backpressure (`max_unindexed_bytes`) lets wait."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    gpu: GpuMode = GpuMode.AUTO

    @classmethod
    def from_env(cls, data_dir: Path, prefix: str = "VECSTORE_") -> ShardSettings:
        """Defaults overridden by VECSTORE_SEAL_THRESHOLD, VECSTORE_GPU, ... when set."""
        settings = cls(data_dir=data_dir)
        overrides: dict[str, object] = {}
        for spec in fields(cls):
            raw = os.environ.get(prefix + spec.name.upper())
            if raw is None or spec.name == "data_dir":
                continue
            current = getattr(settings, spec.name)
            try:
                if isinstance(current, GpuMode):
                    overrides[spec.name] = GpuMode(raw.strip().lower())
                elif isinstance(current, bool):
                    overrides[spec.name] = _flag(raw)
                elif isinstance(current, int):
                    overrides[spec.name] = int(raw)
                elif isinstance(current, float):
                    overrides[spec.name] = float(raw)
            except ValueError:
                raise InvalidRequest(
                    f"environment variable {prefix + spec.name.upper()}={raw!r} is not a valid "
                    f"{type(current).__name__}"
                ) from None
        return replace(settings, **overrides)  # type: ignore[arg-type]


def _flag(raw: str) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(word)
