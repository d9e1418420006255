"""Milvus standalone: the server binary that the PyPI package `milvus` (2.3.5) ships, queried with pymilvus.

`build` unpacks and starts `milvus run standalone` (embedded etcd, rocksmq and local storage)
under the run's scratch folder on free ports, as a child of the measuring process, so its
memory and CPU count as the system's; `close` stops it and removes its files. Searches are
one gRPC call per query; sixteen clients are sixteen threads sharing the client's channel.
It must never leave the server running: a failed start stops it too.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from milvus import MilvusServer, MilvusServerConfig
from pymilvus import MilvusClient

from bench.footprint import directory_bytes
from bench.peers import CONNECTIVITY, EXPANSION_ADD, BuildTiming
from bench.peers.milvus_peer import COLLECTION, MilvusPeer
from bench.workload import Workload
from vecstore.launcher.processes import free_ports

PORT_KEYS = (
    "etcd_port",
    "root_coord_port",
    "proxy_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)
"""Every listening port of the config template; left alone, the package probes upwards from
Milvus's defaults (19530, 2379, ...), which another server on this machine may hold."""
ETCD_CONFIG = """\
listen-client-urls: http://127.0.0.1:{client}
advertise-client-urls: http://127.0.0.1:{client}
listen-peer-urls: http://127.0.0.1:{peer}
initial-advertise-peer-urls: http://127.0.0.1:{peer}
initial-cluster: default=http://127.0.0.1:{peer}
"""
"""The embedded etcd's own listeners: without a config file (ETCD_CONFIG_PATH) it takes etcd's
fixed 2379 and 2380 whatever `etcd.endpoints` says, and a second server on the machine, or
anything else on 2380, makes it crash at start."""
START_WAIT_S = 180.0
INDEX_WAIT_S = 900.0
STOP_WAIT_S = 10.0
"""Before the server is killed. Once a collection is loaded, 2.3.5's graceful stop does not end
(its components retry the coordinators that already stopped, up to common.gracefulStopTimeout,
30 minutes); its files are removed anyway."""


class MilvusServerPeer(MilvusPeer):
    """milvus-lite's collection, index and searches (`MilvusPeer`), on a Milvus server."""

    def __init__(self) -> None:
        super().__init__()
        self.notes = (
            f"Milvus 2.3.5 standalone (PyPI `milvus`: embedded etcd, rocksmq, local storage) as a "
            f"server process, HNSW, M {CONNECTIVITY}, efConstruction {EXPANSION_ADD}, COSINE; "
            "pymilvus MilvusClient over gRPC, one request per query, clients are threads sharing one "
            "channel; default (Bounded) consistency"
        )
        self.server: Any = None

    def build(self, workload: Workload, scratch: Path) -> BuildTiming:
        """Start the server; insert in batches, flush, build the index and wait for it, load."""
        self.folder = scratch / "milvus-server"
        self._start_server(self.folder)
        self.client = MilvusClient(uri=f"http://127.0.0.1:{self.server.listen_port}")
        return self._load(workload)

    def _start_server(self, folder: Path) -> None:
        *ports, etcd_peer, health_port = free_ports(len(PORT_KEYS) + 2)
        config = MilvusServerConfig(data_dir=str(folder), **dict(zip(PORT_KEYS, ports, strict=True)))
        # the package's own wait polls until its timeout even after the server has died
        self.server = MilvusServer(config, wait_for_started=False)
        self.server.webservice_port = health_port  # the package probes upwards from this one
        etcd_config = folder / "configs" / "etcd.yaml"
        etcd_config.parent.mkdir(parents=True, exist_ok=True)
        etcd_config.write_text(ETCD_CONFIG.format(client=config.configs["etcd_port"], peer=etcd_peer))
        earlier = os.environ.get("ETCD_CONFIG_PATH")
        os.environ["ETCD_CONFIG_PATH"] = str(etcd_config)  # the package hands the server os.environ
        try:
            self.server.start()
            self._wait_healthy(folder)
        except (TimeoutError, RuntimeError, OSError):
            self._stop_server()
            raise
        finally:
            if earlier is None:
                del os.environ["ETCD_CONFIG_PATH"]
            else:
                os.environ["ETCD_CONFIG_PATH"] = earlier

    def _wait_healthy(self, folder: Path) -> None:
        """Until the server's /healthz says OK; fails at once if the server exits."""
        process = self.server.server_proc
        deadline = time.monotonic() + START_WAIT_S
        while (status := process.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"milvus standalone not healthy after {START_WAIT_S:.0f}s")
            connection = http.client.HTTPConnection("127.0.0.1", self.server.webservice_port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if b"OK" in connection.getresponse().read():
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.2)
        raise RuntimeError(
            f"milvus standalone exited with status {status} while starting: {startup_error(folder)}"
        )

    def _wait_indexed(self, rows: int) -> None:
        """Until every row is in a finished HNSW index (create_index may return before)."""
        deadline = time.monotonic() + INDEX_WAIT_S
        while True:
            info = self.client.describe_index(COLLECTION, "vector")
            if info.get("state") == "Finished" and info.get("indexed_rows", 0) >= rows:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"index of {rows:,} rows not finished after {INDEX_WAIT_S:.0f}s: {info}")
            time.sleep(0.2)

    def disk_bytes(self) -> int:
        """The server's data folder (etcd, rocksmq, segments and index files), without the
        unpacked binaries and the logs."""
        return directory_bytes(self.folder / "data") if self.folder else 0

    def close(self) -> None:
        """Close the client, stop the server (gracefully, then killed) and remove its folder."""
        if self.client is not None:
            self.client.close()
            self.client = None
        self._stop_server()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _stop_server(self) -> None:
        if self.server is None:
            return
        process = self.server.server_proc
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_WAIT_S)
        self.server.stop()  # closes its log files (the process has exited)
        self.server = None


def startup_error(folder: Path) -> str:
    """The first panic in the server's stderr log, with the frame that raised it."""
    log = folder / "logs" / "milvus-stderr.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    for number, line in enumerate(lines):
        if line.startswith(("panic:", "fatal error:")):
            return " | ".join(text.strip() for text in lines[number : number + 10])
    return f"no panic in {log}; its last lines: {' | '.join(lines[-5:])}"
