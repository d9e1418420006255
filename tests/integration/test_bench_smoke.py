"""`make bench` sections, each run tiny: they must finish and print their tables.

Figures are not asserted (speed is measured by `make bench`, never in tests); the
smoke proves that every benchmark still runs against the current code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SECTIONS = {
    "shard_vs_usearch": (
        ["--quick", "--rows", "4000", "--queries", "50", "--ef", "32,64", "--dtypes", "f32,i8"],
        "target",
    ),
    "replication": (["--quick", "--kills", "0"], "vectors/s"),
    "router": (["--quick", "--rows", "1500", "--queries", "40"], "32 clients"),
    "client": (["--quick"], "QPS ratio"),
    "profiler": (["--quick"], "Query profiler overhead"),
    # peers missing here (the `bench` extra is not a test dependency) are skipped in --quick
    "comparison": (["--quick", "--rows", "3000", "--queries", "20"], "QPS, 16 clients"),
    "hops": (["--quick"], "through the router, RPC"),
    "reshard": (["--quick"], "Resharding online"),
    "load_then_query": (["--quick", "--shapes", "1x1"], "QPS during / after indexing"),
    "ingest": (["--quick"], "records/s"),
    "bulk": (["--quick"], "Bulk upsert through the router"),
    "compaction": (["--quick"], "Compaction under sustained writes"),
    "geo": (["--quick"], "ratio grid/scan"),
    "hybrid": (["--quick"], "Sparse and hybrid search"),
    "multivector": (["--quick"], "Multivector MaxSim"),
    "scale": (["--quick"], "new replica"),
}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_bench_section_runs(section: str, tmp_path: Path) -> None:
    args, marker = SECTIONS[section]
    output = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{section}", *args, "--json", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert marker in result.stdout
    assert json.loads(output.read_text())
