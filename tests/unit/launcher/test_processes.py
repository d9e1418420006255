"""ManagedProcess: the one supervised child process, with `python -c` children."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vecstore.launcher.processes import LocalShardGroup, ManagedProcess, node_process, stop_all

SLEEPER = (
    "import sys, time; print('started', flush=True); print('to stderr', file=sys.stderr, flush=True); "
    "time.sleep(60)"
)
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    "time.sleep(60)"
)


def python(tmp_path: Path, code: str, name: str = "p", **env: str) -> ManagedProcess:
    return ManagedProcess(
        role="test",
        name=name,
        command=[sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", **env},
        log_path=tmp_path / "logs" / f"{name}.log",
    )


def wait_for_log(process: ManagedProcess, text: str, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.log_path.exists() and text in (log := process.log_path.read_text()):
            return log
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {process.log_path}")


@pytest.fixture
def reap() -> Iterator[list[ManagedProcess]]:
    """Processes to SIGKILL after the test, whatever happened."""
    processes: list[ManagedProcess] = []
    yield processes
    for process in processes:
        process.kill()


def test_start_runs_logs_and_stop_terminates(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    process = python(tmp_path, SLEEPER)
    reap.append(process)
    assert (process.running, process.pid, process.returncode) == (False, None, None)
    process.start()
    assert (process.running, process.alive) == (True, True)
    assert process.pid is not None
    log = wait_for_log(process, "to stderr")
    assert "started" in log  # stdout and stderr both go to the log, which start() created
    assert process.stop(timeout=5) == -signal.SIGTERM
    assert not process.running
    assert process.returncode == -signal.SIGTERM


def test_start_is_idempotent_and_a_restart_appends(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    process = python(tmp_path, SLEEPER)
    reap.append(process)
    process.start()
    pid = process.pid
    process.start()  # already running: nothing happens
    assert process.pid == pid
    wait_for_log(process, "to stderr")
    process.kill()
    process.start()
    assert process.pid != pid
    deadline = time.monotonic() + 10
    while process.log_path.read_text().count("started") < 2:
        assert time.monotonic() < deadline, "the restart did not append to the log"
        time.sleep(0.02)


def test_kill_reaps_with_sigkill(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    process = python(tmp_path, SLEEPER)
    reap.append(process)
    process.start()
    assert process.kill() == -signal.SIGKILL
    assert not process.running
    assert process.kill() == -signal.SIGKILL  # again: harmless
    assert not process.signal(signal.SIGTERM)  # not running: nothing sent


def test_a_paused_process_is_running_and_still_stops(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    process = python(tmp_path, SLEEPER)
    reap.append(process)
    process.start()
    wait_for_log(process, "to stderr")
    assert process.signal(signal.SIGSTOP)
    assert process.running
    assert process.stop(timeout=5) == -signal.SIGTERM  # SIGCONT first, so SIGTERM lands


def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    process = python(tmp_path, STUBBORN)
    reap.append(process)
    process.start()
    wait_for_log(process, "ready")
    started = time.monotonic()
    assert process.stop(timeout=0.5) == -signal.SIGKILL
    assert 0.4 < time.monotonic() - started < 5


def test_exit_code_and_environment(tmp_path: Path) -> None:
    process = python(tmp_path, "import os, sys; print(os.environ['GREETING']); sys.exit(3)", GREETING="hello")
    process.start()
    assert process.wait(timeout=10) == 3
    assert process.returncode == 3 and not process.running
    assert process.log_path.read_text().strip() == "hello"
    assert process.stop() == 3  # stopping an exited process only reports its code


def test_stop_all_stops_every_process(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    processes = [python(tmp_path, SLEEPER, f"p{i}") for i in range(3)]
    processes.append(python(tmp_path, STUBBORN, "stubborn"))
    processes.append(python(tmp_path, SLEEPER, "never-started"))
    reap.extend(processes)
    for process in processes[:4]:
        process.start()
    wait_for_log(processes[3], "ready")
    stop_all(processes, timeout=1)
    assert [p.returncode for p in processes] == [-signal.SIGTERM] * 3 + [-signal.SIGKILL, None]


def test_describe_is_the_cluster_json_entry(tmp_path: Path, reap: list[ManagedProcess]) -> None:
    process = ManagedProcess(
        role="node",
        name="s1-n0",
        command=[sys.executable, "-c", "pass"],
        env={},
        log_path=tmp_path / "s1-n0.log",
        shard=1,
        http="127.0.0.1:2",
        raft="127.0.0.1:1",
        extra={"zone": "a"},
    )
    entry = process.describe()
    assert entry == {
        "role": "node",
        "name": "s1-n0",
        "shard": 1,
        "node_id": "s1-n0",
        "pid": None,
        "http": "127.0.0.1:2",
        "raft": "127.0.0.1:1",
        "log": str(tmp_path / "s1-n0.log"),
        "restarts": 0,
        "zone": "a",
    }
    assert (process.node_id, process.shard_id, process.http_address, process.raft_address) == (
        "s1-n0",
        1,
        "127.0.0.1:2",
        "127.0.0.1:1",
    )
    reap.append(process)
    process.start()
    assert process.describe()["pid"] == process.pid
    process.wait(timeout=10)
    router = python(tmp_path, "pass", "router-0")
    assert router.describe()["node_id"] is None
    with pytest.raises(AttributeError, match="no HTTP address"):
        _ = router.http_address


def test_node_process_configures_a_node(tmp_path: Path) -> None:
    peers = [("s0-n1", "127.0.0.1:3", "127.0.0.1:4")]
    node = node_process("s0-n0", 0, "127.0.0.1:1", "127.0.0.1:2", tmp_path / "s0-n0", peers, None, {"X": "y"})
    assert node.role == "node" and node.name == "s0-n0" and node.shard == 0
    assert node.command[1:] == ["-m", "vecstore.node", "--insecure-no-cluster-secret"]
    assert node.env["VECSTORE_PEERS"] == "s0-n1=127.0.0.1:3=127.0.0.1:4"
    assert node.env["VECSTORE_HTTP_ADDRESS"] == "127.0.0.1:2" and node.env["X"] == "y"
    assert "VECSTORE_CLUSTER_SECRET" not in node.env
    assert node.log_path == tmp_path / "s0-n0.log"
    secured = node_process("s0-n0", 0, "127.0.0.1:1", "127.0.0.1:2", tmp_path / "s0-n0", peers, "secret")
    assert "--insecure-no-cluster-secret" not in secured.command
    assert secured.env["VECSTORE_CLUSTER_SECRET"] == "secret"


def test_shard_group_plans_nodes_that_know_each_other(tmp_path: Path) -> None:
    group = LocalShardGroup(tmp_path, replicas=3, shard_id=2, secret="s")
    assert [n.node_id for n in group.nodes] == ["s2-n0", "s2-n1", "s2-n2"]
    assert group.http_addresses == [n.http for n in group.nodes]
    assert group.by_http(group.http_addresses[1]) is group.node("s2-n1")
    newcomer = group.new_member()
    assert newcomer.node_id == "s2-n3" and not newcomer.running
    assert newcomer.env["VECSTORE_PEERS"].count("=") == 6  # the three current members
