"""`make bench` comparison: the cluster against the systems a user would pick instead, one run.

Same data, same k=10, same queries for every system: raw usearch, the shard core, the
local cluster through its router (1x1 and 2x3), chromadb, milvus-lite, Milvus standalone
(a server over gRPC), lancedb, qdrant's local mode, hnswlib and faiss. Each system's search
parameter is swept until recall@10 reaches 0.95, and QPS, latency, filtered search, memory
and disk are reported there.
Each system runs in its own child process (`bench.measure`), one after another.

    python -m bench.comparison [--quick] [--rows N] [--systems a,b] [--datasets synthetic,wordnet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import embeddings, peers, workload
from bench.comparison_report import render_markdown, update_document
from bench.measure import Budget

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = REPO_ROOT / "docs" / "benchmarks.md"
IMAGES = REPO_ROOT / "docs" / "img"
FULL_BUDGET = Budget(sweep_queries=1_000, min_seconds=3.0, max_seconds=15.0, repeats=3)
QUICK_BUDGET = Budget(sweep_queries=30, min_seconds=0.2, max_seconds=2.0, min_count=10)
STARTED = time.monotonic()


def say(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags; --quick is the smoke run of `make test`."""
    parser = argparse.ArgumentParser(prog="python -m bench.comparison", description=__doc__)
    parser.add_argument("--rows", type=int, help="synthetic rows (default 100,000; quick 2,000)")
    parser.add_argument("--wordnet-rows", type=int, help="WordNet rows (default: all cached; quick 2,000)")
    parser.add_argument("--queries", type=int, help="queries per data set (default 1,000; quick 50)")
    parser.add_argument("--systems", help=f"comma-separated, of: {', '.join(peers.SYSTEMS)}")
    parser.add_argument("--datasets", help="synthetic,wordnet (default both; quick: synthetic)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run; skips peers not installed")
    parser.add_argument("--json", type=Path, help="result file (default bench/results/comparison.json)")
    parser.add_argument("--docs", action="store_true", help="also write docs/benchmarks.md and docs/img/")
    parser.add_argument("--child-timeout", type=float, help="seconds per system (default 1,200)")
    parser.add_argument("--render", type=Path, help="only redraw tables, plots and doc from this result file")
    parser.add_argument(
        "--merge-into",
        type=Path,
        help="re-measure --systems and replace their entries in this result file (then --docs redraws)",
    )
    return parser.parse_args(argv)


def chosen_systems(args: argparse.Namespace) -> tuple[list[str], dict[str, list[str]]]:
    """Systems to run, and those skipped (quick mode only) with the modules they lack."""
    names = [n.strip() for n in args.systems.split(",")] if args.systems else list(peers.SYSTEMS)
    unknown = [name for name in names if name not in peers.SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; known: {', '.join(peers.SYSTEMS)}")
    missing = {name: peers.missing_modules(name) for name in names}
    missing = {name: modules for name, modules in missing.items() if modules}
    if missing and not args.quick:
        lines = "\n".join(
            f"  {name}: cannot import {', '.join(modules)}" for name, modules in missing.items()
        )
        raise SystemExit(f"peers not installed (pip install -e '.[bench]'):\n{lines}")
    return [name for name in names if name not in missing], missing


def make_workloads(args: argparse.Namespace, scratch: Path) -> list[tuple[workload.Workload, Path]]:
    """Build each data set with its exact truth, save it for the children."""
    quick = args.quick
    queries = args.queries or (50 if quick else 1_000)
    default_sets = "synthetic" if quick else "synthetic,wordnet"
    names = [name.strip() for name in (args.datasets or default_sets).split(",") if name.strip()]
    made = []
    for name in names:
        if name == "synthetic":
            rows = args.rows or (2_000 if quick else 100_000)
            say(f"making synthetic data: {rows:,} x 128 and exact truth (unfiltered, 1/10/50%)")
            data = workload.synthetic(rows, queries)
        elif name == "wordnet":
            rows = args.wordnet_rows or (2_000 if quick else None)
            say("WordNet/MiniLM embeddings: using the cache in bench/data/ (or embedding now)")
            embeddings.ensure(None if rows is None else rows + queries)
            data = workload.wordnet(rows, queries)
        else:
            raise SystemExit(f"unknown data set {name!r}: synthetic or wordnet")
        folder = scratch / data.name
        data.save(folder)
        say(f"{data.name}: {data.description}")
        made.append((data, folder))
    return made


def run_child(system: str, folder: Path, budget: Budget, timeout: float) -> dict[str, Any]:
    """`python -m bench.measure` for one system; its result, or the reason it failed."""
    spec = json.dumps({"system": system, "workload": str(folder), "budget": asdict(budget)})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VECSTORE_LOG_LEVEL": "WARNING"}
    started = time.monotonic()
    try:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", "bench.measure", spec],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"system": system, "error": f"did not finish within {timeout:.0f}s"}
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {
            "system": system,
            "error": f"exited with status {completed.returncode} (see its stderr above)",
        }
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall_s"] = time.monotonic() - started
    return result


def machine() -> dict[str, Any]:
    """What the run ran on, and how busy the machine was."""
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in load],
    }


def main(argv: list[str] | None = None) -> int:
    """Run every system on every data set; print the tables; write JSON, and docs when asked."""
    args = parse_args(argv)
    if args.render:
        publish(json.loads(args.render.read_text()), docs=True)
        return 0
    budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    timeout = args.child_timeout or (300.0 if args.quick else 1_200.0)
    systems, skipped = chosen_systems(args)
    for name, modules in skipped.items():
        say(f"skipping {name} (quick mode): cannot import {', '.join(modules)}")
    result: dict[str, Any] = {
        "machine_before": machine(),
        "budget": asdict(budget),
        "quick": args.quick,
        "skipped": skipped,
        "workloads": {},
    }
    with tempfile.TemporaryDirectory(prefix="vecstore-bench-comparison-") as scratch:
        made = make_workloads(args, Path(scratch))
        total, number = len(made) * len(systems), 0
        for data, folder in made:
            runs: dict[str, Any] = {}
            result["workloads"][data.name] = {
                "description": data.description,
                "rows": data.rows,
                "dim": data.dim,
                "queries": len(data.queries),
                "systems": runs,
            }
            for system in systems:
                number += 1
                say(f"({number}/{total}) {data.name}: {system}")
                runs[system] = run_child(system, folder, budget, timeout)
                if "error" in runs[system]:
                    say(f"{system} FAILED on {data.name}: {runs[system]['error']}")
    result["machine_after"] = machine()
    result["seconds"] = time.monotonic() - STARTED
    if args.merge_into:
        result = merged(json.loads(args.merge_into.read_text()), result)
    target = args.merge_into or args.json
    target = target or RESULTS_DIR / ("comparison-quick.json" if args.quick else "comparison.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1))
    say(f"wrote {target}")
    publish(result, docs=args.docs)
    return 0


def merged(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """`earlier` with the systems that `later` measured replaced (a re-run of some systems)."""
    remeasured = earlier.setdefault("remeasured", [])
    for name, entry in later["workloads"].items():
        earlier["workloads"][name]["systems"].update(entry["systems"])
        systems = list(entry["systems"])
        remeasured.append({"workload": name, "systems": systems, "machine": later["machine_after"]})
    earlier["seconds"] = earlier.get("seconds", 0) + later["seconds"]
    return earlier


def publish(result: dict[str, Any], docs: bool) -> None:
    """Print the tables; with `docs`, also draw the plots and rewrite the doc's generated block."""
    markdown = render_markdown(result)
    print(markdown)
    if docs:
        from bench.plots import draw_all

        images = draw_all(result, IMAGES)
        update_document(DOCUMENT, markdown, images)
        say(f"wrote {DOCUMENT} and {len(images)} plots in {IMAGES}")


if __name__ == "__main__":
    raise SystemExit(main())
