"""The summary table and the JSON report of a chaos run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecstore.chaos.runner import ScenarioResult

COLUMNS = (
    "scenario",
    "faults",
    "ops attempted",
    "ops acked",
    "lost",
    "duplicated",
    "divergent",
    "stale strong reads",
    "other",
    "longest unavailable (s)",
    "error rate",
    "result",
)


def verdict(result: ScenarioResult) -> str:
    """PASS, FAIL (a safety violation), ERROR (the harness could not run it) or SKIP."""
    if result.skipped:
        return "SKIP"
    if not result.safe:
        return "FAIL"
    return "ERROR" if result.errors else "PASS"


def row(result: ScenarioResult) -> list[str]:
    """One table row."""
    figures = result.availability
    return [
        result.name,
        str(len(result.faults)),
        str(figures.attempted),
        str(figures.acknowledged),
        str(result.count("lost")),
        str(result.count("duplicated")),
        str(result.count("divergent")),
        str(result.count("stale_reads")),
        str(result.count("other")),
        f"{figures.longest_unavailable:.1f}",
        f"{figures.error_rate:.1%}",
        verdict(result),
    ]


def totals(results: Sequence[ScenarioResult]) -> list[str]:
    """The TOTAL row."""
    ran = [r for r in results if not r.skipped]
    return [
        "TOTAL",
        str(sum(len(r.faults) for r in ran)),
        str(sum(r.availability.attempted for r in ran)),
        str(sum(r.availability.acknowledged for r in ran)),
        *(
            str(sum(r.count(c) for r in ran))
            for c in ("lost", "duplicated", "divergent", "stale_reads", "other")
        ),
        f"{max((r.availability.longest_unavailable for r in ran), default=0.0):.1f}",
        "",
        "PASS" if all(verdict(r) in ("PASS", "SKIP") for r in results) else "FAIL",
    ]


def table(results: Sequence[ScenarioResult]) -> str:
    """The summary table as aligned text."""
    rows = [list(COLUMNS), *(row(r) for r in results), totals(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = []
    for position, cells in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
        if position == 0 or position == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def document(results: Sequence[ScenarioResult], settings: dict[str, Any]) -> dict[str, Any]:
    """The JSON report."""
    ran = [r for r in results if not r.skipped]
    return {
        "settings": settings,
        "passed": all(verdict(r) in ("PASS", "SKIP") for r in results),
        "scenarios_run": len(ran),
        "faults_injected": sum(len(r.faults) for r in ran),
        "safety_violations": sum(len(r.violations) for r in ran),
        "harness_errors": sum(len(r.errors) for r in ran),
        "scenarios": [r.to_dict() for r in results],
    }


def write_report(path: Path, results: Sequence[ScenarioResult], settings: dict[str, Any]) -> None:
    """Write the JSON report."""
    path.write_text(json.dumps(document(results, settings), indent=2, default=str))
