"""Resident memory of a process tree and bytes on disk under a folder (Linux /proc).

The comparison runs each system in its own child process; a system that starts servers
of its own (milvus-lite, the local cluster) has them as descendants, so the tree's RSS
is the system's whole resident memory.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    task_dir = PROC / str(pid) / "task"
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int | None = None) -> list[int]:
    """`pid` (default: this process) and all its descendants alive now."""
    root = pid if pid is not None else os.getpid()
    tree, pending = [], [root]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += _children(current)
    return tree


def rss_bytes(pid: int) -> int:
    """One process's resident set (0 if it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident bytes of a process and all its descendants (shared pages counted per process)."""
    return sum(rss_bytes(member) for member in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process, all its threads (0 if it is gone)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # after the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used so far by a process and its live descendants: steadier than wall time
    on a machine shared with other work."""
    return sum(cpu_seconds(member) for member in process_tree(pid))


def directory_bytes(folder: Path) -> int:
    """Bytes allocated on disk under `folder` (hard links counted once, sparse files as stored)."""
    total, seen = 0, set()
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        if not path.is_file() or (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        total += stat.st_blocks * 512
    return total
