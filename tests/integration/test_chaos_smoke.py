"""A short chaos run through the real runner: three fault types, zero safety violations.

`make chaos` runs the full suite; this smoke keeps the harness and the cluster honest on
every `make test`. Only generous liveness bounds here: the machine is shared and slow.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from vecstore.chaos.failpoint.base import FaultTiming
from vecstore.chaos.failpoint.network import IsolateNode
from vecstore.chaos.failpoint.process import KillNode, PauseNode
from vecstore.chaos.runner import RunSettings, run_scenario
from vecstore.chaos.scenario import Scenario

SMOKE = Scenario(
    "smoke",
    "SIGKILL a leader, isolate a leader, pause a node",
    (KillNode("leader"), IsolateNode("leader"), PauseNode("any")),
    timing=FaultTiming(hold=1.5, pause=2.0, interval=0.3),
)


async def test_three_fault_types_lose_nothing(tmp_path: Path) -> None:
    settings = RunSettings(workdir=tmp_path, seed=7, recovery_seconds=2.0)
    result = await run_scenario(SMOKE, settings, fault_seconds=30.0, rng=random.Random(7))

    assert not result.errors, result.errors
    assert result.violations == [], result.to_dict()["violation_examples"]
    kinds = Counter(fault.failpoint for fault in result.faults)
    assert sum(kinds.values()) >= 4 and len(kinds) >= 2, kinds
    assert result.availability.writes_acknowledged > 0
    assert result.availability.strong_reads_acknowledged > 0
    assert all(c.converged for c in result.convergence)
