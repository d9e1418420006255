"""A Raft journal for pysyncobj that keeps entries on disk, not in RAM.

pysyncobj's FileJournal holds every entry (command bytes included) in a Python list
until log compaction, so a node's memory grows with its write rate. This journal keeps
only (offset, index, term) per entry in memory and reads commands back from the memory
map. It also offers an fsync policy: 'always' msyncs after every append.

Each record is (length, index, term, command, length again). On open, records are read
up to the end offset in the header and the first one that is cut short, whose trailing
length disagrees, or that breaks the log's index/term order ends the log: a crash in the
middle of an append leaves the complete entries before it and nothing else.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
from pathlib import Path
from typing import Any

from pysyncobj.journal import Journal

_MAGIC = b"VSJOURNAL1\0\0\0\0\0\0"
_HEADER = struct.Struct("<16sQ")  # magic, end offset of the last record
_RECORD = struct.Struct("<IQQ")  # command length, index, term
_TRAILER = struct.Struct("<I")
_INITIAL_SIZE = 1 << 20

Entry = tuple[bytes, int, int]

log = logging.getLogger(__name__)


class DiskJournal(Journal):  # type: ignore[misc]
    """pysyncobj Journal interface over an append-only memory-mapped file."""

    def __init__(self, path: str, fsync: bool = False) -> None:
        self._path = Path(path)
        self._meta_path = Path(path + ".meta.json")
        self._fsync = fsync
        self._offsets: list[int] = []
        self._indexes: list[int] = []
        self._terms: list[int] = []
        self._open()
        self._meta: dict[str, Any] = self._load_meta()
        self._meta_dirty = False

    # ---- file handling ---------------------------------------------------------------

    def _open(self) -> None:
        if not self._path.exists() or self._path.stat().st_size < _HEADER.size:
            with self._path.open("wb") as handle:
                handle.write(_HEADER.pack(_MAGIC, _HEADER.size))
                handle.truncate(_INITIAL_SIZE)
        self._file = self._path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), 0)
        magic, end = _HEADER.unpack_from(self._map, 0)
        if magic != _MAGIC:
            self._map.close()
            self._file.close()
            raise ValueError(f"{self._path} is not a VecStore journal")
        limit = min(end, len(self._map))
        offset = _HEADER.size
        while offset + _RECORD.size + _TRAILER.size <= limit:
            length, index, term = _RECORD.unpack_from(self._map, offset)
            following = offset + _RECORD.size + length + _TRAILER.size
            if following > limit or not self._plausible(index, term):
                break
            if _TRAILER.unpack_from(self._map, following - _TRAILER.size)[0] != length:
                break
            self._offsets.append(offset)
            self._indexes.append(index)
            self._terms.append(term)
            offset = following
        self._end = offset
        if offset != end:  # a torn tail (crash mid-append): keep the complete records before it
            log.warning(
                "journal %s: dropped a torn tail (%d bytes) after %d complete entries",
                self._path,
                end - offset,
                len(self._offsets),
            )
            self._set_end(offset)
            self._map.flush()

    def _plausible(self, index: int, term: int) -> bool:
        """Raft's log invariants: indexes consecutive from 1 up, terms never decreasing."""
        if not self._indexes:
            return index >= 1
        return index == self._indexes[-1] + 1 and term >= self._terms[-1]

    def _ensure(self, size: int) -> None:
        if size <= len(self._map):
            return
        new_size = max(size, 2 * len(self._map))
        self._map.close()
        self._file.truncate(new_size)
        self._map = mmap.mmap(self._file.fileno(), 0)

    def _set_end(self, end: int) -> None:
        self._end = end
        _HEADER.pack_into(self._map, 0, _MAGIC, end)
        if self._fsync:
            self._map.flush()

    def _command(self, position: int) -> bytes:
        offset = self._offsets[position]
        length = _RECORD.unpack_from(self._map, offset)[0]
        start = offset + _RECORD.size
        return self._map[start : start + length]

    # ---- Journal interface -----------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        record = _RECORD.pack(len(command), idx, term) + command + _TRAILER.pack(len(command))
        self._ensure(self._end + len(record))
        self._map[self._end : self._end + len(record)] = record
        self._offsets.append(self._end)
        self._indexes.append(idx)
        self._terms.append(term)
        self._set_end(self._end + len(record))

    def clear(self) -> None:
        self._offsets, self._indexes, self._terms = [], [], []
        self._set_end(_HEADER.size)

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 - pysyncobj's name
        if entryFrom >= len(self._offsets):
            return
        end = self._offsets[entryFrom]
        del self._offsets[entryFrom:], self._indexes[entryFrom:], self._terms[entryFrom:]
        self._set_end(end)

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802 - pysyncobj's name
        kept = [self[i] for i in range(entryTo, len(self._offsets))]
        self.clear()
        for entry in kept:
            self.add(*entry)

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(len(self._offsets)))]
        position = item + len(self._offsets) if item < 0 else item
        if not 0 <= position < len(self._offsets):
            raise IndexError(item)
        return (self._command(position), self._indexes[position], self._terms[position])

    def __len__(self) -> int:
        return len(self._offsets)

    def entries(self, start: int, count: int | None, max_bytes: int | None) -> list[Entry]:
        """Entries from position `start`: at most `count`, and stopping after the entry that
        reaches `max_bytes` (pysyncobj's batching rule), reading only those from disk."""
        stop = len(self._offsets) if count is None else min(len(self._offsets), start + count)
        result: list[Entry] = []
        total = 0
        for position in range(start, stop):
            entry = (self._command(position), self._indexes[position], self._terms[position])
            result.append(entry)
            total += len(entry[0])
            if max_bytes is not None and total >= max_bytes:
                break
        return result

    def _destroy(self) -> None:
        self.flush()
        self._map.close()
        self._file.close()

    def flush(self) -> None:
        """Write dirty pages and metadata to disk."""
        self._map.flush()
        self._store_meta()

    # ---- Raft persistent state ---------------------------------------------------------

    def _load_meta(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self._meta_path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    def _store_meta(self) -> None:
        temporary = self._meta_path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            json.dump(self._meta, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self._meta_path)
        self._meta_dirty = False

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        self._meta["raftCommitIndex"] = raftCommitIndex
        self._meta_dirty = True

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._meta.get("raftCommitIndex", 1))

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:  # noqa: N802
        # Raft needs term and vote durable before any message reflects them
        self._meta["currentTerm"] = term
        self._meta["votedForNodeId"] = votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._meta.get("currentTerm", 0))

    def getVotedForNodeId(self) -> str | None:  # noqa: N802
        voted = self._meta.get("votedForNodeId")
        return None if voted is None else str(voted)

    def onOneSecondTimer(self) -> None:  # noqa: N802
        if self._meta_dirty:
            self._store_meta()
