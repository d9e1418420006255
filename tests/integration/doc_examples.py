"""Run a documentation page's examples as written, against a cluster a test started."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOCUMENTED_ROUTER = "http://127.0.0.1:6333"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(page: str, language: str) -> list[str]:
    """The fenced blocks of `docs/<page>` in `language`, in order."""
    return [body for lang, body in _FENCE.findall((DOCS / page).read_text()) if lang == language]


def run_python(source: str, router_url: str, cwd: Path, timeout: float = 180) -> str:
    """Run one Python example with the documented router address replaced by `router_url`;
    its output, or AssertionError with the example and what it printed."""
    script = cwd / "example.py"
    script.write_text(source.replace(DOCUMENTED_ROUTER, router_url))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )
    assert result.returncode == 0, f"example failed:\n{source}\n--- output:\n{result.stdout}{result.stderr}"
    return result.stdout
