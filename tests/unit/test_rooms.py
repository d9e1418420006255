"""The room table, enforced: which room may import which, and no import circle anywhere.

Every module under src/vecstore is parsed (imports inside functions and under
TYPE_CHECKING count too), so a lazy import cannot hide a dependency or a circle.
`make rooms` runs this file alone; the table is the one in README.md and docs/architecture.md.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "vecstore"


@dataclass(frozen=True)
class Room:
    """What one room may import besides the standard library."""

    rooms: frozenset[str]
    """other rooms of vecstore"""
    packages: frozenset[str]
    """third-party top-level packages"""
    banned_stdlib: frozenset[str] = frozenset()
    """standard-library modules the room must never use"""


def room(rooms: str = "", packages: str = "", banned_stdlib: str = "") -> Room:
    return Room(frozenset(rooms.split()), frozenset(packages.split()), frozenset(banned_stdlib.split()))


ROOMS: dict[str, Room] = {
    # the shared vocabulary: errors, ids, schema, filters, commands, codec, spec, hash ring, log format
    "cluster": room(
        packages="msgpack numpy uhashring yaml threadpoolctl py_rust_stemmers",
        banned_stdlib="asyncio socket threading",
    ),
    # the pure core of one shard: no event loop, no network, no Raft
    "shard": room("cluster", "numpy usearch msgpack cupy tqdm", banned_stdlib="asyncio socket selectors ssl"),
    # clients and servers on the wire: node/router clients, RPC frames, shared server plumbing
    "transport": room("cluster", "aiohttp msgpack numpy orjson prometheus_client uvloop"),
    # one node process: Raft member around the shard state, its API, health, metrics
    "node": room("cluster transport shard", "aiohttp msgpack numpy pysyncobj cryptography prometheus_client"),
    # the stateless public endpoint: native and Qdrant APIs, routing, scatter-gather, auth
    "router": room("cluster transport reshard", "aiohttp msgpack numpy prometheus_client"),
    # exactly-once Kafka ingestion
    "ingest": room(
        "cluster transport", "aiohttp aiokafka fastavro google msgpack numpy prometheus_client tqdm"
    ),
    # local child processes: `vecstore up`, the shard groups of tests and chaos, the test broker
    "launcher": room("cluster", "cryptography"),  # cryptography: `vecstore up --tls` certificates
    # resharding: the coordinator that moves points between shards (a client of the nodes)
    "reshard": room("cluster transport", "aiohttp"),
    # the `vecstore` admin CLI and the demo
    "cli": room("cluster transport launcher reshard", "click msgpack numpy tqdm yaml"),
    # the Python client library (`Client`, `AsyncClient`), with optional DataFrames
    "client": room("cluster transport", "numpy tqdm pandas polars"),
    # vector-store adapters for LLM frameworks, over the client (optional extras)
    "integrations": room("client cluster", "numpy langchain_core llama_index"),
    # fault injection: uses everything, as a client
    "chaos": room("cluster transport launcher ingest reshard", "aiohttp aiokafka msgpack numpy"),
}

STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_names(path: Path) -> Iterator[str]:
    """Every module a file imports, with `from a import b` resolved to `a.b` when b is a module."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in MODULES else node.module


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vecstore" else None


def import_graph() -> dict[str, set[str]]:
    """vecstore module -> the vecstore modules it imports."""
    return {
        name: {imported for imported in imported_names(path) if imported in MODULES and imported != name}
        for name, path in MODULES.items()
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root, children_of_root in graph.items():
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(children_of_root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_room_is_in_the_table() -> None:
    on_disk = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert on_disk == set(ROOMS)


@pytest.mark.parametrize("name", sorted(ROOMS))
def test_a_room_imports_only_what_the_table_allows(name: str) -> None:
    allowed = ROOMS[name]
    wrong: list[str] = []
    for module, path in MODULES.items():
        if room_of(module) != name:
            continue
        for imported in imported_names(path):
            top = imported.split(".")[0]
            if top == "vecstore":
                other = room_of(imported)
                if other is not None and other != name and other not in allowed.rooms:
                    wrong.append(f"{module} imports {imported} (room {other})")
            elif top in STDLIB:
                if top in allowed.banned_stdlib:
                    wrong.append(f"{module} imports {imported} (never in {name}/)")
            elif top not in allowed.packages:
                wrong.append(f"{module} imports {imported} (not in {name}'s packages)")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle_between_modules() -> None:
    assert strongly_connected(import_graph()) == []


def test_no_import_circle_between_rooms() -> None:
    rooms: dict[str, set[str]] = {name: set() for name in ROOMS}
    for module, imports in import_graph().items():
        source = room_of(module)
        if source is None:
            continue
        targets = {room_of(imported) for imported in imports}
        rooms[source] |= {target for target in targets if target is not None and target != source}
    assert strongly_connected(rooms) == []


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_the_shard_starts_no_thread_and_no_process() -> None:
    """shard/ may use locks, but whoever runs it owns the threads (the node's indexer, the
    Raft tick thread, the read pool): no Thread, executor or subprocess is created in it."""
    starters = {"Thread", "ThreadPoolExecutor", "ProcessPoolExecutor", "Popen", "start_new_thread", "Timer"}
    found = []
    for module, path in MODULES.items():
        if room_of(module) != "shard":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                if name in starters:
                    found.append(f"{module}:{node.lineno} uses {name}")
    assert not found, "\n".join(found)


def test_every_room_is_also_at_the_top_of_the_tree() -> None:
    """README: each room's top-level name is a symlink into src/vecstore/."""
    root = SRC.parent
    for name in ROOMS:
        link = root / name
        assert link.is_symlink(), f"{name}/ is missing at the top of the tree"
        assert link.resolve() == (PACKAGE / name).resolve()
