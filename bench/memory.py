"""Resident memory of one engine holding the data, each measured in a fresh child process.

A child imports the same modules, records its baseline, loads one engine's data (usearch:
the saved index read back into memory; shard: a snapshot restored into a new Shard, its
segments memory-mapped), runs the query batch, and reports /proc/self/status figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

from bench.engines import COLLECTION
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard

STATUS_FIELDS = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "VmHWM": "peak"}
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class MemoryUsage:
    """Bytes resident: total, anonymous (heap, in-memory indexes), file-backed (mmaps), peak."""

    rss: int
    anon: int
    file: int
    peak: int

    def minus(self, other: MemoryUsage) -> MemoryUsage:
        """The growth since `other`; peak becomes this peak over `other`'s RSS."""
        return MemoryUsage(
            self.rss - other.rss, self.anon - other.anon, self.file - other.file, self.peak - other.rss
        )


def current_usage() -> MemoryUsage:
    """This process's resident memory, from /proc/self/status (Linux only)."""
    values: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in STATUS_FIELDS:
            values[STATUS_FIELDS[name]] = int(rest.split()[0]) * 1024
    return MemoryUsage(**values)


def measure_in_child(kind: str, path: Path, queries: Path, k: int) -> dict[str, Any]:
    """Run `child_main` in a fresh interpreter; returns its report (baseline, loaded, searched)."""
    spec = json.dumps({"kind": kind, "path": str(path), "queries": str(queries), "k": k})
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", "bench.shard_vs_usearch", "--memory-child", spec],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory child for {kind} failed:\n{completed.stderr}")
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def child_main(spec_text: str) -> None:
    """The child's body: baseline, load, search once, print a JSON report on stdout."""
    spec = json.loads(spec_text)
    queries = np.load(spec["queries"])
    baseline = current_usage()
    if spec["kind"] == "usearch":
        index = Index.restore(spec["path"], view=False)
        if index is None:
            raise RuntimeError(f"usearch could not read {spec['path']}")
        loaded = current_usage()
        index.search(queries, spec["k"])
        searched = current_usage()
    else:
        with tempfile.TemporaryDirectory(prefix="vecstore-bench-child-") as scratch:
            shard = Shard(ShardSettings(data_dir=Path(scratch)))
            shard.restore(Path(spec["path"]))
            loaded = current_usage()
            shard.search(COLLECTION, queries, spec["k"], with_payload=False)
            searched = current_usage()
            shard.close()
    report = {
        "baseline": asdict(baseline),
        "loaded": asdict(loaded.minus(baseline)),
        "searched": asdict(searched.minus(baseline)),
    }
    print(json.dumps(report))
