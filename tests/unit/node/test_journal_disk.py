"""DiskJournal: pysyncobj's Journal interface on disk, across reopen and after a torn append."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from vecstore.node.journal import DiskJournal

HEADER = struct.Struct("<16sQ")  # the file's header: magic, end offset of the last record
RECORD_OVERHEAD = 20 + 4  # (length, index, term) before the command, length again after it

Entry = tuple[bytes, int, int]


def _entries(count: int, first: int = 1, term: int = 1) -> list[Entry]:
    return [(f"command-{i}".encode() * (i % 5 + 1), i, term + i // 4) for i in range(first, first + count)]


def _filled(path: Path, entries: list[Entry]) -> DiskJournal:
    journal = DiskJournal(str(path))
    for entry in entries:
        journal.add(*entry)
    return journal


def _reopened(journal: DiskJournal, path: Path) -> DiskJournal:
    journal._destroy()
    return DiskJournal(str(path))


def _end(path: Path) -> int:
    end: int = HEADER.unpack(path.read_bytes()[: HEADER.size])[1]
    return end


def _set_end(path: Path, end: int) -> None:
    with path.open("r+b") as handle:
        magic = handle.read(16)
        handle.seek(0)
        handle.write(HEADER.pack(magic, end))


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def test_added_entries_read_back(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    entries = [*_entries(6), (b"", 7, 3), (b"\x00" * 300_000, 8, 3)]
    journal = _filled(path, entries)
    try:
        assert len(journal) == 8
        assert [journal[i] for i in range(8)] == entries
        assert journal[-1] == entries[-1] and journal[-8] == entries[0]
        assert journal[2:5] == entries[2:5] and journal[6:] == entries[6:]
        assert journal.entries(1, 3, None) == entries[1:4]
        assert journal.entries(5, None, None) == entries[5:]
        # pysyncobj's batching rule: stop after the entry that reaches max_bytes
        assert journal.entries(0, None, len(entries[0][0]) + 1) == entries[:2]
        with pytest.raises(IndexError):
            journal[8]
        with pytest.raises(IndexError):
            journal[-9]
    finally:
        journal._destroy()


def test_entries_and_raft_state_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    entries = [*_entries(5), (b"x" * 700_000, 6, 2), (b"y" * 700_000, 7, 2)]  # grows past 1 MiB
    journal = _filled(path, entries)
    journal.setCurrentTerm(4, "127.0.0.1:7001")
    journal.setRaftCommitIndex(6)
    journal.onOneSecondTimer()

    journal = _reopened(journal, path)
    try:
        assert journal[:] == entries
        assert journal.getCurrentTerm() == 4
        assert journal.getVotedForNodeId() == "127.0.0.1:7001"
        assert journal.getRaftCommitIndex() == 6
        journal.add(b"after", 8, 2)
    finally:
        journal._destroy()
    journal = DiskJournal(str(path))
    try:
        assert journal[:] == [*entries, (b"after", 8, 2)]
    finally:
        journal._destroy()


def test_a_fresh_journal_has_no_entries_and_default_state(tmp_path: Path) -> None:
    journal = DiskJournal(str(tmp_path / "raft.journal"))
    try:
        assert len(journal) == 0 and journal[:] == []
        assert journal.getCurrentTerm() == 0
        assert journal.getVotedForNodeId() is None
        assert journal.getRaftCommitIndex() == 1
    finally:
        journal._destroy()


def test_delete_entries_from_truncates_the_tail_for_good(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    entries = _entries(8)
    journal = _filled(path, entries)
    journal.deleteEntriesFrom(5)
    assert journal[:] == entries[:5]
    journal.deleteEntriesFrom(9)  # past the end: nothing to delete
    assert len(journal) == 5
    journal.add(b"conflict winner", 6, 9)

    journal = _reopened(journal, path)
    try:
        assert journal[:] == [*entries[:5], (b"conflict winner", 6, 9)]
    finally:
        journal._destroy()


def test_delete_entries_to_drops_the_compacted_head(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    entries = _entries(8)
    journal = _filled(path, entries)
    journal.deleteEntriesTo(3)
    assert journal[:] == entries[3:]
    assert journal[0][1] == 4
    journal.add(b"next", 9, 3)

    journal = _reopened(journal, path)
    try:
        assert journal[:] == [*entries[3:], (b"next", 9, 3)]
    finally:
        journal._destroy()


def test_clear_then_add_as_after_loading_a_dump(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = _filled(path, _entries(8))
    journal.clear()
    assert len(journal) == 0
    journal.add(b"a", 40, 5)
    journal.add(b"b", 41, 5)

    journal = _reopened(journal, path)
    try:
        assert journal[:] == [(b"a", 40, 5), (b"b", 41, 5)]
    finally:
        journal._destroy()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    path.write_bytes(b"something else entirely" * 10)
    with pytest.raises(ValueError, match="not a VecStore journal"):
        DiskJournal(str(path))


def _cut_file(path: Path, last: Entry) -> None:
    """The file ends 3 bytes short of the last record (header written, data not)."""
    with path.open("r+b") as handle:
        handle.truncate(_end(path) - 3)


def _cut_inside_record_header(path: Path, last: Entry) -> None:
    with path.open("r+b") as handle:
        handle.truncate(_end(path) - len(last[0]) - RECORD_OVERHEAD + 7)


def _zero_last_record(path: Path, last: Entry) -> None:
    """The last record's page never reached the disk."""
    size = len(last[0]) + RECORD_OVERHEAD
    _overwrite(path, _end(path) - size, b"\0" * size)


def _zero_last_trailer(path: Path, last: Entry) -> None:
    _overwrite(path, _end(path) - 4, b"\0" * 4)


def _garbage_half_record(path: Path, last: Entry) -> None:
    """A record of which only the first half was written: the length promises more."""
    end = _end(path)
    half = struct.pack("<IQQ", 1000, last[1] + 1, last[2]) + b"\xab" * 100
    _overwrite(path, end, half)
    _set_end(path, end + len(half))


def _garbage_past_the_file(path: Path, last: Entry) -> None:
    """The header claims an end beyond the file itself."""
    _set_end(path, path.stat().st_size + 4096)


TORN: list[tuple[Callable[[Path, Entry], None], int]] = [
    (_cut_file, 1),
    (_cut_inside_record_header, 1),
    (_zero_last_record, 1),
    (_zero_last_trailer, 1),
    (_garbage_half_record, 0),
    (_garbage_past_the_file, 0),
]


@pytest.mark.parametrize(("tear", "lost"), TORN, ids=[tear.__name__.strip("_") for tear, _ in TORN])
def test_a_torn_tail_leaves_exactly_the_complete_entries(
    tmp_path: Path, tear: Callable[[Path, Entry], None], lost: int
) -> None:
    path = tmp_path / "raft.journal"
    entries = _entries(10)
    journal = _filled(path, entries)
    journal._destroy()
    tear(path, entries[-1])

    journal = DiskJournal(str(path))
    try:
        kept = entries[: len(entries) - lost]
        assert journal[:] == kept
        journal.add(b"appended after recovery", len(kept) + 1, 7)
    finally:
        journal._destroy()

    journal = DiskJournal(str(path))  # the repair itself is durable
    try:
        assert journal[:] == [*kept, (b"appended after recovery", len(kept) + 1, 7)]
    finally:
        journal._destroy()
