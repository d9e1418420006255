"""`python -m vecstore.chaos` (`make chaos`): run the chaos scenarios, print the summary table.

Exit status: 0 when every scenario ran without a safety violation, 1 when any violation
was found, 2 when the harness could not run a scenario (no verdict on it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from vecstore.chaos.cluster import ClusterShape
from vecstore.chaos.report import table, verdict, write_report
from vecstore.chaos.runner import RunSettings, run_suite, select
from vecstore.chaos.scenario import all_scenarios
from vecstore.chaos.traffic.clients import TrafficShape
from vecstore.cluster.log_format import configure_logging

log = logging.getLogger("vecstore.chaos")


def seconds(text: str) -> float:
    """'1200', '20m' or '90s' as seconds."""
    text = text.strip().lower()
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text.removesuffix("s"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags; each defaults to a CHAOS_* environment variable."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m vecstore.chaos", description=__doc__)
    parser.add_argument("--duration", type=seconds, default=seconds(env.get("CHAOS_DURATION", "1200")))
    parser.add_argument("--scenarios", default=env.get("CHAOS_SCENARIOS", ""), help="comma-separated names")
    parser.add_argument("--report", type=Path, default=Path(env.get("CHAOS_REPORT", "chaos-report.json")))
    parser.add_argument("--seed", type=int, default=int(env.get("CHAOS_SEED", "1")))
    parser.add_argument(
        "--workdir", type=Path, default=Path(env["CHAOS_WORKDIR"]) if "CHAOS_WORKDIR" in env else None
    )
    parser.add_argument("--fault-interval", type=float, default=_optional(env.get("CHAOS_FAULT_INTERVAL")))
    parser.add_argument("--hold", type=float, default=_optional(env.get("CHAOS_HOLD")))
    parser.add_argument("--writers-per-shard", type=int, default=int(env.get("CHAOS_WRITERS_PER_SHARD", "2")))
    parser.add_argument("--keep", action="store_true", default=env.get("CHAOS_KEEP") == "1")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--log-level", default=env.get("CHAOS_LOG_LEVEL", "WARNING"))
    return parser.parse_args(argv)


def _optional(value: str | None) -> float | None:
    return float(value) if value else None


def kafka_available() -> bool:
    """True when `vecstore up` can start a broker and an ingest worker."""
    import inspect

    from vecstore.launcher.local_cluster import LocalCluster

    return "with_kafka" in inspect.signature(LocalCluster).parameters


def main(argv: list[str] | None = None) -> int:
    """Run the suite; returns the exit status."""
    args = parse_args(argv)
    configure_logging(args.log_level)
    shape = ClusterShape()
    scenarios = all_scenarios(shape.raft_max_timeout)
    if args.list:
        for scenario in scenarios:
            sys.stdout.write(f"{scenario.name:22} {scenario.description}\n")
        return 0
    chosen = select(scenarios, [n.strip() for n in args.scenarios.split(",") if n.strip()])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vecstore-chaos-"))
    settings = RunSettings(
        workdir=workdir,
        duration=args.duration,
        seed=args.seed,
        shape=shape,
        traffic=replace(TrafficShape(), writers_per_shard=args.writers_per_shard),
        fault_interval=args.fault_interval,
        hold=args.hold,
        keep=args.keep,
    )
    sys.stdout.write(f"chaos: {len(chosen)} scenarios in {args.duration:.0f}s, data under {workdir}\n")
    sys.stdout.flush()
    results = asyncio.run(run_suite(chosen, settings, kafka_available()))
    write_report(args.report, results, {**asdict(settings), "workdir": str(workdir)})
    sys.stdout.write(table(results) + "\n")
    sys.stdout.write(f"report: {args.report}\n")
    verdicts = {verdict(r) for r in results}
    if "FAIL" in verdicts:
        return 1
    return 2 if "ERROR" in verdicts else 0


if __name__ == "__main__":
    raise SystemExit(main())
