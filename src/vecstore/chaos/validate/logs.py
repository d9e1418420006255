"""Log audit: lines no process may ever write, whatever the faults.

A CRITICAL line (pysyncobj truncating entries it already applied), an unhandled error
behind an HTTP 500, a failed apply or a failed dump is a bug even when no client saw it.
"""

from __future__ import annotations

import re
from pathlib import Path

from vecstore.chaos.model.keyspace import Violation

FORBIDDEN = re.compile(
    r" (CRITICAL) | ERROR [\w.]+: (unhandled error|unhandled router error|apply failed unexpectedly"
    r"|writing the Raft dump failed)"
)
EXAMPLES_PER_FILE = 5


def audit_logs(log_dir: Path) -> list[Violation]:
    """One violation per forbidden line in any process log under `log_dir`."""
    violations = []
    for path in sorted(log_dir.glob("*.log")):
        shown = 0
        with path.open(errors="replace") as lines:
            for line in lines:
                if FORBIDDEN.search(line):
                    detail = line.strip()[:300] if shown < EXAMPLES_PER_FILE else "(more of the same)"
                    violations.append(Violation("node_error", None, f"{path.name}: {detail}"))
                    shown += 1
    return violations
