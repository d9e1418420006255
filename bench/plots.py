"""PNG figures of the comparison: recall-vs-QPS curves and latency distributions, per data set.

Needs matplotlib (the `bench` extra); draws off-screen (Agg) and only reads the result dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from bench.measure import TARGET_RECALL
from bench.peers import OURS

DPI = 110


def draw_all(result: dict[str, Any], folder: Path) -> list[Path]:
    """Both figures for every data set; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, entry in result["workloads"].items():
        runs = {system: run for system, run in entry["systems"].items() if "error" not in run}
        if not runs:
            continue
        written.append(recall_qps(name, runs, folder / f"comparison-{name}-recall-qps.png"))
        written.append(latencies(name, runs, folder / f"comparison-{name}-latency.png"))
    return written


def _style(system: str) -> dict[str, Any]:
    return {"linewidth": 2.4 if system in OURS else 1.4, "linestyle": "-" if system in OURS else "--"}


def recall_qps(name: str, runs: dict[str, Any], path: Path) -> Path:
    """QPS (1 client, log scale) against recall@10 along each system's parameter sweep."""
    figure, axes = plt.subplots(figsize=(9, 5.5))
    for system, run in runs.items():
        points = sorted(run["sweep"], key=lambda point: point["recall"])
        axes.plot(
            [p["recall"] for p in points],
            [p["qps"] for p in points],
            marker="o",
            label=system,
            **_style(system),
        )
    axes.axvline(TARGET_RECALL, color="grey", linewidth=1, linestyle=":")
    axes.set_yscale("log")
    axes.set_xlabel("recall@10")
    axes.set_ylabel("queries/s, 1 client (log)")
    axes.set_title(f"{name}: recall vs QPS along each system's search-parameter sweep")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def latencies(name: str, runs: dict[str, Any], path: Path) -> Path:
    """Latency distribution (ms, log scale) at each system's chosen parameter, 1 and 16 clients."""
    figure, panes = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    for pane, field, label in ((panes[0], "one_client", "1 client"), (panes[1], "16_clients", "16 clients")):
        systems = [system for system in runs if runs[system].get(field, {}).get("latencies_ms")]
        samples = [np.asarray(runs[system][field]["latencies_ms"]) for system in systems]
        if samples:
            pane.boxplot(samples, vert=False, whis=(1, 99), showfliers=False, tick_labels=systems)
        pane.set_xscale("log")
        pane.set_xlabel("latency per request, ms (log); whiskers p1-p99")
        pane.set_title(f"{label}")
        pane.grid(True, which="both", axis="x", alpha=0.3)
    figure.suptitle(f"{name}: latency at each system's recall@10 ≥ 0.95 setting")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path
