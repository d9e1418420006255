"""pysyncobj's full dump (its snapshot file) for a shard: one tar file, built off-thread.

pysyncobj calls the serializer in its tick thread, and the dump must be one file that
holds everything a new replica needs, sealed segments included. Packing gigabytes there
would stall heartbeats, so the serializer only takes a consistent snapshot directory
(hard links plus the memtable) and a background thread packs it. The checker, again in
the tick thread, moves the finished file into place and reports success, and only then
does pysyncobj drop the journal entries the dump covers.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any

import msgpack
from pysyncobj import SERIALIZER_STATE
from pysyncobj.node import TCPNode

from vecstore.shard.state import Shard

log = logging.getLogger(__name__)

RAFT_MEMBER = "raft.msgpack"
SNAPSHOT_MEMBER = "snapshot"


class DumpWriter:
    """The serializer, checker and deserializer hooks of one node's SyncObjConf."""

    def __init__(self, shard: Shard, dump_file: Path) -> None:
        self._shard = shard
        self._dump_file = dump_file
        self._building = dump_file.with_name(dump_file.name + ".building")
        self._worker: threading.Thread | None = None
        self._failed = False
        self._generation = 0
        self._worker_generation = 0
        self.dumps_written = 0
        self.dumps_loaded = 0

    def serialize(self, temporary: str, raft_data: Any) -> None:
        """Called in the tick thread: snapshot now, pack later."""
        if self._worker is not None:
            raise RuntimeError("a dump is already being written")
        staging = Path(tempfile.mkdtemp(prefix="dump-", dir=self._shard.settings.data_dir))
        self._shard.snapshot(staging / SNAPSHOT_MEMBER)
        (staging / RAFT_MEMBER).write_bytes(encode_raft_data(raft_data))
        # pysyncobj renames `temporary` over the dump as soon as we return: give it the
        # current dump (or an empty file) so the dump on disk stays a complete one.
        Path(temporary).unlink(missing_ok=True)
        if self._dump_file.exists():
            os.link(self._dump_file, temporary)
        else:
            Path(temporary).touch()
        self._failed = False
        self._worker_generation = self._generation
        self._worker = threading.Thread(target=self._pack, args=(staging,), name="vecstore-dump", daemon=True)
        self._worker.start()

    def _pack(self, staging: Path) -> None:
        try:
            with tarfile.open(self._building, "w") as archive:
                archive.add(staging / RAFT_MEMBER, arcname=RAFT_MEMBER)
                archive.add(staging / SNAPSHOT_MEMBER, arcname=SNAPSHOT_MEMBER)
            with self._building.open("rb+") as handle:
                os.fsync(handle.fileno())
        except Exception:
            log.exception("writing the Raft dump failed")
            self._failed = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def check(self) -> int:
        """Called in the tick thread: the state of the dump being written."""
        worker = self._worker
        if worker is None:
            return int(SERIALIZER_STATE.NOT_SERIALIZING)
        if worker.is_alive():
            return int(SERIALIZER_STATE.SERIALIZING)
        self._worker = None
        if self._failed or self._worker_generation != self._generation:
            # failed, or a leader's dump was installed meanwhile and this one is older
            self._building.unlink(missing_ok=True)
            return int(SERIALIZER_STATE.FAILED)
        self._building.replace(self._dump_file)
        self.dumps_written += 1
        return int(SERIALIZER_STATE.SUCCESS)

    def deserialize(self, dump_file: str) -> Any:
        """Called by pysyncobj on start-up and on installing a leader's dump."""
        self._generation += 1
        with tempfile.TemporaryDirectory(prefix="load-", dir=self._shard.settings.data_dir) as scratch:
            with tarfile.open(dump_file, "r") as archive:
                archive.extractall(scratch, filter="data")
            raft_data = decode_raft_data((Path(scratch) / RAFT_MEMBER).read_bytes())
            self._shard.restore(Path(scratch) / SNAPSHOT_MEMBER)
        self.dumps_loaded += 1
        log.info("installed Raft dump", extra={"last_index": raft_data[0][1]})
        return raft_data


def encode_raft_data(raft_data: Any) -> bytes:
    """pysyncobj's (last entry, previous entry, members) without pickle."""
    last, previous, members = raft_data
    encoded: bytes = msgpack.packb(
        {
            "last": [last[0], last[1], last[2]],
            "previous": [previous[0], previous[1], previous[2]],
            "members": sorted(node.id for node in members),
        },
        use_bin_type=True,
    )
    return encoded


def decode_raft_data(data: bytes) -> tuple[Any, ...]:
    """Inverse of encode_raft_data: entries as tuples, members as TCPNode objects."""
    raw = msgpack.unpackb(data, raw=False)
    last = (bytes(raw["last"][0]), int(raw["last"][1]), int(raw["last"][2]))
    previous = (bytes(raw["previous"][0]), int(raw["previous"][1]), int(raw["previous"][2]))
    return (last, previous, {TCPNode(address) for address in raw["members"]})
