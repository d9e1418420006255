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
    """QPS against recall@10 along each system's sweep, 1 client: per wall second and per CPU second."""
    figure, panes = plt.subplots(1, 2, figsize=(14, 5.5), sharex=True)
    for pane, field, label in ((panes[0], "qps", "per second"), (panes[1], "qps_per_cpu", "per CPU-second")):
        for system, run in runs.items():
            points = sorted(run["sweep"], key=lambda point: point["recall"])
            recalls, rates = [p["recall"] for p in points], [p[field] for p in points]
            pane.plot(recalls, rates, marker="o", label=system, **_style(system))
        pane.axvline(TARGET_RECALL, color="grey", linewidth=1, linestyle=":")
        pane.set_yscale("log")
        pane.set_xlabel("recall@10")
        pane.set_ylabel(f"queries {label}, 1 client (log)")
        pane.grid(True, which="both", alpha=0.3)
    panes[0].legend(fontsize=8, ncol=2)
    figure.suptitle(f"{name}: recall vs QPS along each system's search-parameter sweep")
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
