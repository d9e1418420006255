"""docs/slow-queries.md runs as written: its ```console and ```python blocks, in order,
against a 2 x 3 cluster started the way `vecstore up` starts it (in ./vecstore-data, the
slow-query log at 0 ms so that every search is logged).

A console block's `$ ` lines are commands (run with bash in the directory holding
./vecstore-data, the venv's `vecstore` first on PATH); the other lines show what they
print: each such line's first word must appear in what the block's commands printed.
Python blocks run in one namespace, one after another, as a reader pastes them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import started_cluster

DOC = Path(__file__).resolve().parents[2] / "docs" / "slow-queries.md"
BLOCK = re.compile(r"^```(console|python)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [(kind, body) for kind, body in BLOCK.findall(DOC.read_text())]


def commands_and_output(body: str) -> tuple[list[str], list[str]]:
    """The commands of a console block (continued lines joined) and its output lines."""
    commands: list[str] = []
    output: list[str] = []
    continued = False
    for line in body.splitlines():
        if continued:
            commands[-1] += "\n" + line
        elif line.startswith("$ "):
            commands.append(line[2:])
        elif line.strip():
            output.append(line)
        continued = (continued or line.startswith("$ ")) and line.endswith("\\")
    return commands, output


def test_the_doc_has_examples_of_each_kind() -> None:
    kinds = [kind for kind, _ in blocks()]
    assert kinds.count("console") >= 3
    assert kinds.count("python") >= 2


def test_console_block_parsing() -> None:
    commands, output = commands_and_output("$ a \\\n  b\nshown\n$ c\n")
    assert commands == ["a \\\n  b", "c"]
    assert output == ["shown"]


def test_slow_queries_doc_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for cluster in started_cluster(
        tmp_path / "vecstore-data", shards=2, router_env={"VECSTORE_SLOW_QUERY_MS": "0"}
    ):
        env = {
            **os.environ,
            "VECSTORE_ROUTER": cluster.router_url,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        monkeypatch.setenv("VECSTORE_ROUTER", cluster.router_url)
        monkeypatch.chdir(tmp_path)
        namespace: dict[str, object] = {"__name__": "__doc__"}
        for number, (kind, body) in enumerate(blocks()):
            where = f"block {number} ({kind}) of {DOC.name}:\n{body}"
            if kind == "python":
                exec(compile(body, f"{DOC.name} block {number}", "exec"), namespace)
                continue
            commands, shown = commands_and_output(body)
            printed = ""
            for command in commands:
                result = subprocess.run(
                    ["bash", "-c", f"set -o pipefail\n{command}"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                    env=env,
                    cwd=tmp_path,
                    stdin=subprocess.DEVNULL,
                )
                assert result.returncode == 0, f"{where}\n{command!r} failed:\n{result.stderr}"
                printed += result.stdout
            for line in shown:
                first = line.split()[0]
                assert first in printed, f"{where}\n{first!r} not in what it printed:\n{printed}"
        assert (tmp_path / "search-trace.json").exists()  # the doc's --trace example wrote it
