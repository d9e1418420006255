"""`make demo`: a whole local cluster driven through the `vecstore` CLI, start to finish.

Starts `vecstore up` (2 shards x 3 replicas and a router) on a temporary data dir and a
free port, creates a collection, loads clustered vectors with payloads, runs plain and
filtered searches, shows `vecstore status`, then stops the cluster, also on failure or
Ctrl-C. Exits non-zero if any step failed. Never leaves a process behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import click

from vecstore.launcher.processes import free_ports
from vecstore.launcher.readiness import NotReady, readyz_url, wait_ready

COLORS = ("red", "green", "blue", "yellow")
READY_SECONDS = 180.0
STOP_SECONDS = 40.0
SELECTIVE_FILTER = {
    "must": [{"key": "color", "match": {"value": "red"}}, {"key": "price", "range": {"lt": 10}}]
}


class DemoFailed(Exception):
    """A step of the demo did not do what it should."""


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived: stop the cluster and leave."""


def write_sample(directory: Path, points: int, dim: int) -> tuple[Path, Path, Path]:
    """Clustered vectors (vectors.npy), their payloads (payloads.jsonl) and a query (query.npy)."""
    import numpy as np

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(32, dim)).astype(np.float32)
    labels = rng.integers(0, len(centres), size=points)
    vectors = centres[labels] + 0.3 * rng.normal(size=(points, dim)).astype(np.float32)
    paths = directory / "vectors.npy", directory / "payloads.jsonl", directory / "query.npy"
    np.save(paths[0], vectors)
    with paths[1].open("w") as payloads:
        for i in range(points):
            payload = {"color": COLORS[i % len(COLORS)], "price": i % 100, "cluster": int(labels[i])}
            payloads.write(json.dumps(payload) + "\n")
    np.save(paths[2], vectors[:1])
    return paths


class Demo:
    """One run: the `vecstore up` process and the CLI calls against it."""

    def __init__(self, scratch: Path, port: int) -> None:
        self.scratch = scratch
        self.data_dir = scratch / "data"
        self.port = port
        self.up_log = scratch / "up.log"
        self.up: subprocess.Popen[bytes] | None = None

    def vecstore(self, *arguments: str, show: bool = True) -> str:
        """Run one CLI command against the demo cluster; its table goes to the terminal."""
        command = [*arguments, "--data-dir", str(self.data_dir)]
        if show:
            click.secho(f"\n$ vecstore {shlex.join(command)}", bold=True)
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "vecstore.cli.main", *command],
            stdout=None if show else subprocess.PIPE,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DemoFailed(f"`vecstore {' '.join(arguments[:2])}` exited with {result.returncode}")
        return result.stdout or ""

    def vecstore_json(self, *arguments: str) -> Any:
        """A CLI command's --json answer (not shown)."""
        return json.loads(self.vecstore(*arguments, "--json", show=False))

    def start(self) -> None:
        """`vecstore up` in its own session, so Ctrl-C reaches only the demo, which stops it."""
        click.secho(f"$ vecstore up --data-dir {self.data_dir} --port {self.port}", bold=True)
        with self.up_log.open("wb") as log:
            command = ["up", "--data-dir", str(self.data_dir), "--port", str(self.port)]
            self.up = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "vecstore.cli.main", *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()
        click.echo(self.up_log.read_text().strip())

    def wait_ready(self) -> None:
        """Poll the router's /readyz until every shard has a leader."""

        def up_still_running() -> None:
            if self.up is not None and self.up.poll() is not None:
                raise DemoFailed(f"`vecstore up` exited with {self.up.returncode}")

        try:
            waited = wait_ready(
                readyz_url(f"127.0.0.1:{self.port}"), READY_SECONDS, 0.3, check=up_still_running
            )
        except NotReady as error:
            raise DemoFailed(f"the router was not ready: {error}") from None
        click.echo(f"cluster ready in {waited:.1f}s")

    def stop(self) -> None:
        """SIGTERM `vecstore up` (it stops its nodes and router); SIGKILL the group if it hangs."""
        if self.up is None or self.up.poll() is not None:
            return
        click.echo("\nstopping the cluster ...")
        self.up.send_signal(signal.SIGTERM)
        try:
            self.up.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.up.pid, signal.SIGKILL)
            self.up.wait()
        # anything of the session still alive (it should not be) goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.up.pid, signal.SIGKILL)
        click.echo("cluster stopped")

    def run(self, points: int, dim: int) -> None:
        """Every step; raises DemoFailed on the first that goes wrong."""
        vectors, payloads, query = write_sample(self.scratch, points, dim)
        self.start()
        self.vecstore("collections", "create", "demo", "--dim", str(dim), "--metric", "cosine")
        self.vecstore("points", "upsert", "demo", "--vectors", str(vectors), "--payloads", str(payloads))
        self.vecstore("collections", "info", "demo")
        loaded = self.vecstore_json("collections", "info", "demo")["points"]
        if loaded != points:
            raise DemoFailed(f"collection holds {loaded} points, {points} were loaded")

        self.vecstore("search", "demo", "--vector-file", str(query), "--k", "5")
        hits = self.vecstore_json("search", "demo", "--vector-file", str(query), "--k", "5")["results"][0]
        if not hits or hits[0]["id"] != 0:
            raise DemoFailed(f"the query is point 0 itself, yet the best hit is {hits[:1]}")

        selective = json.dumps(SELECTIVE_FILTER)
        self.vecstore("search", "demo", "--vector-file", str(query), "--k", "5", "--filter", selective)
        answer = self.vecstore_json("search", "demo", "--vector-file", str(query), "--filter", selective)
        wrong = [
            h for h in answer["results"][0] if h["payload"]["color"] != "red" or h["payload"]["price"] >= 10
        ]
        if wrong or not answer["results"][0]:
            raise DemoFailed(f"filtered search returned points outside the filter: {wrong}")

        self.vecstore("status")
        if not all(row["ready"] for row in self.vecstore_json("status")):
            raise DemoFailed("not every node is ready")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns a process exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--points", type=int, default=20_000, help="vectors to load (default 20000)")
    parser.add_argument("--dim", type=int, default=64, help="vector dimension (default 64)")
    parser.add_argument("--port", type=int, help="router port (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and logs afterwards")
    args = parser.parse_args(argv)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    scratch = Path(tempfile.mkdtemp(prefix="vecstore-demo-"))
    demo = Demo(scratch, args.port or free_ports(1)[0])
    status = 1
    try:
        demo.run(args.points, args.dim)
        status = 0
    except DemoFailed as err:
        click.secho(f"\ndemo failed: {err}", fg="red", err=True)
        if demo.up_log.exists():
            tail = demo.up_log.read_text().splitlines()[-15:]
            click.echo("\n".join(["last lines of `vecstore up`:", *tail]), err=True)
    except (KeyboardInterrupt, Stopped):
        click.echo("\ninterrupted", err=True)
        status = 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        demo.stop()
        if args.keep or status not in (0, 130):
            click.echo(f"data and logs kept in {scratch} (data/logs/ holds every process's log)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if status == 0:
        click.secho("\ndemo finished: every step passed", fg="green")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
