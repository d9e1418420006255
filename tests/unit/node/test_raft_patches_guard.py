"""The guard around VecStore's pysyncobj patches: exact version, and every private name present.

The patches reach into pysyncobj's private (mostly name-mangled `_SyncObj__*`) names. A release
that renamed one would silently turn a safety fix into dead code, so the node refuses to start
on any pysyncobj but the one the patches were written for, or when a name they use is gone.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import SyncObj, SyncObjConf, tcp_connection
from pysyncobj import syncobj as syncobj_module
from pysyncobj.journal import Journal

from vecstore.node import raft_patches
from vecstore.node.raft_patches import (
    PATCHED_PRIVATE_NAMES,
    PYSYNCOBJ_VERSION,
    check_pysyncobj,
    private_name_present,
)

ROOT = Path(__file__).resolve().parents[3]
NODE = ROOT / "src" / "vecstore" / "node"
PATCH_FILES = [
    NODE / name
    for name in ("raft_patches.py", "replica.py", "journal.py", "raft_cipher.py", "raft_frames.py")
]
MANGLED = re.compile(r"\b_[A-Z][A-Za-z0-9]*__[A-Za-z]\w*")
PATCHED_MODULES = {"syncobj_module": syncobj_module, "tcp_connection": tcp_connection}
REGISTERED = {name for _, name in PATCHED_PRIVATE_NAMES}
PYSYNCOBJ_BASES: dict[str, type] = {"SyncObj": SyncObj, "Journal": Journal}
PYSYNCOBJ_CLASSES = tuple(PYSYNCOBJ_BASES.values())


def _label(entry: tuple[Any, str]) -> str:
    owner, name = entry
    return f"{getattr(owner, '__name__', owner)}.{name}"


def _attribute_uses() -> Iterator[tuple[str, ast.AST, tuple[type, ...]]]:
    """(name, node, classes it may belong to) for every `x.name`, and every method defined in a
    subclass of a pysyncobj class, in the four patch files."""
    for path in PATCH_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                yield node.attr, node, PYSYNCOBJ_CLASSES
            elif isinstance(node, ast.ClassDef):
                bases = tuple(
                    PYSYNCOBJ_BASES[b.id]
                    for b in node.bases
                    if isinstance(b, ast.Name) and b.id in PYSYNCOBJ_BASES
                )
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        yield item.name, item, bases


@pytest.mark.parametrize("entry", PATCHED_PRIVATE_NAMES, ids=_label)
def test_every_patched_name_exists_in_the_installed_pysyncobj(entry: tuple[Any, str]) -> None:
    owner, name = entry
    assert private_name_present(owner, name)


def test_the_instance_attributes_are_really_there_on_a_syncobj() -> None:
    """`private_name_present` finds instance attributes by their assignment; check it agrees."""
    raft = SyncObj(None, [], conf=SyncObjConf(autoTick=False))
    try:
        missing = [
            name for owner, name in PATCHED_PRIVATE_NAMES if owner is SyncObj and not hasattr(raft, name)
        ]
    finally:
        raft.destroy()
    assert missing == []


def test_a_name_pysyncobj_does_not_define_is_not_present() -> None:
    assert not private_name_present(SyncObj, "_SyncObj__raftStateRenamed")
    assert not private_name_present(Journal, "_close")
    assert not private_name_present(tcp_connection, "gzip")


def test_every_mangled_name_in_the_patch_files_is_registered() -> None:
    """A grep: a new `_SyncObj__*` (or any `_Class__*`) use cannot skip PATCHED_PRIVATE_NAMES."""
    used = {match for path in PATCH_FILES for match in MANGLED.findall(path.read_text())}
    assert {name for name in used if name.startswith("_SyncObj__")} <= REGISTERED
    assert used - REGISTERED == set()
    assert len({name for name in REGISTERED if name.startswith("_SyncObj__")}) == 15


def test_every_other_private_pysyncobj_name_the_patch_files_touch_is_registered() -> None:
    """Single-underscore methods of SyncObj/Journal, and globals of pysyncobj modules replaced."""
    unregistered: set[str] = set()
    for name, node, owners in _attribute_uses():
        module = PATCHED_MODULES.get(getattr(getattr(node, "value", None), "id", ""))
        if module is not None and (module, name) not in PATCHED_PRIVATE_NAMES:
            unregistered.add(f"{module.__name__}.{name}")
        private = name.startswith("_") and not name.startswith("__")
        for owner in owners:
            if private and private_name_present(owner, name) and (owner, name) not in PATCHED_PRIVATE_NAMES:
                unregistered.add(f"{owner.__name__}.{name}")
    assert unregistered == set()


def test_every_registered_name_is_still_used_by_a_patch() -> None:
    # attribute uses, and mangled names spelt as strings (raft_frames reaches them by getattr)
    spelt = {match for path in PATCH_FILES for match in MANGLED.findall(path.read_text())}
    used = {name for name, _, _ in _attribute_uses()} | spelt
    assert REGISTERED - used == set()


def test_the_installed_pysyncobj_is_the_patched_release() -> None:
    assert metadata.version("pysyncobj") == PYSYNCOBJ_VERSION
    raft_patches.verify_pysyncobj()
    check_pysyncobj(PYSYNCOBJ_VERSION, private_name_present)


def test_pyproject_pins_exactly_the_patched_release() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [dep for dep in project["dependencies"] if dep.startswith("pysyncobj")]
    assert pins == [f"pysyncobj=={PYSYNCOBJ_VERSION}"]


@pytest.mark.parametrize("version", ["0.3.16", "0.3.18", "0.4.0"])
def test_another_version_is_refused(version: str) -> None:
    with pytest.raises(RuntimeError, match="refusing to start") as raised:
        check_pysyncobj(version, lambda _owner, _name: True)
    assert version in str(raised.value) and PYSYNCOBJ_VERSION in str(raised.value)


def test_the_version_comes_from_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "version", lambda _name: "0.3.18")
    assert raft_patches.installed_pysyncobj_version() == "0.3.18"
    with pytest.raises(RuntimeError, match=r"pysyncobj 0\.3\.18 is installed"):
        raft_patches.verify_pysyncobj()
    with pytest.raises(RuntimeError, match="refusing to start"):
        raft_patches.install_transport_patches()


def test_pysyncobj_without_metadata_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_found)
    with pytest.raises(RuntimeError, match="refusing to start"):
        raft_patches.verify_pysyncobj()


def test_a_missing_private_name_is_refused() -> None:
    def present(owner: Any, name: str) -> bool:
        return name != "_SyncObj__sendNextNodeIdx"

    with pytest.raises(RuntimeError, match=r"lacks SyncObj\._SyncObj__sendNextNodeIdx") as raised:
        check_pysyncobj(PYSYNCOBJ_VERSION, present)
    assert "refusing to start" in str(raised.value)


def test_a_renamed_private_name_is_refused() -> None:
    """The real lookup, against names a later release might use instead."""
    renamed = ((SyncObj, "_SyncObj__onMessageReceivedV2"), (tcp_connection, "zlib"))
    with pytest.raises(RuntimeError, match=r"lacks SyncObj\._SyncObj__onMessageReceivedV2,? which"):
        check_pysyncobj(PYSYNCOBJ_VERSION, private_name_present, renamed)
