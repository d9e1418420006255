"""`vecstore up --tls`: router and nodes over HTTPS, verified by clients with the cluster's CA."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from vecstore.client import Client
from vecstore.cluster.credentials import SECRET_FILE_ENV, NodeAccess
from vecstore.cluster.errors import Unavailable, VecStoreError
from vecstore.cluster.spec import write_spec
from vecstore.cluster.tls import CA_ENV, CERT_ENV, KEY_ENV
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.launcher.processes import ManagedProcess, free_ports
from vecstore.launcher.readiness import wait_ready
from vecstore.launcher.tls_files import create_tls_files
from vecstore.transport.node_client import NodeClient
from vecstore.transport.router_client import RouterClient

CLI_SECONDS = 60  # a bound, not a measurement: a refused handshake must never hang the CLI

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(
        tmp_path_factory.mktemp("tls"), shards=1, replicas=1, tls=True, ready=_wait_ready
    )


def _trusting(cluster: LocalCluster) -> ssl.SSLContext:
    assert cluster.tls is not None
    return ssl.create_default_context(cafile=str(cluster.tls.ca))


async def _wait_ready(cluster: LocalCluster) -> None:
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_trusting(cluster))) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{cluster.router_url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("the TLS router never became ready")


async def test_https_with_the_ca_works(tls_cluster: LocalCluster) -> None:
    url = tls_cluster.router_url
    assert url.startswith("https://")
    connector = aiohttp.TCPConnector(ssl=_trusting(tls_cluster))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.put(f"{url}/v1/collections/docs", json={"dimension": 2}) as response:
            assert response.status == 200, await response.text()
        points = [{"id": i, "vector": [1.0, float(i)]} for i in range(5)]
        async with session.put(f"{url}/v1/collections/docs/points", json={"points": points}) as response:
            assert response.status == 200
        async with session.post(
            f"{url}/v1/collections/docs/search", json={"vector": [1, 4], "k": 1}
        ) as response:
            assert (await response.json())["result"][0]["id"] == 4
    assert tls_cluster.tls is not None
    async with RouterClient(url, ca_file=tls_cluster.tls.ca) as client:  # the CLI's client, over wss
        assert (await client.call("POST", "/v1/collections/docs/points/count", {}))["count"] == 5


async def test_plain_http_and_untrusted_clients_are_refused(tls_cluster: LocalCluster) -> None:
    plain = tls_cluster.router_url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{plain}/healthz") as response:
                await response.read()
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(f"{tls_cluster.router_url}/healthz") as response:
                await response.read()
    async with RouterClient(tls_cluster.router_url, rpc=False, deadline_seconds=2) as client:
        with pytest.raises(Unavailable, match="does not trust"):
            await client.call("GET", "/v1/collections")


def test_the_cli_finds_the_ca_of_its_data_dir(tls_cluster: LocalCluster, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "vecstore.cli.main",
        "status",
        "--data-dir",
        str(tls_cluster.data_dir),
        "--json",
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["role"] == "leader"


async def test_nodes_serve_https_to_holders_of_the_ca_and_token(tls_cluster: LocalCluster) -> None:
    address = tls_cluster.node_addresses()[0]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://{address}/healthz") as response:
                await response.read()
    access = tls_cluster.access
    assert access.scheme == "https"
    for rpc in (True, False):
        async with NodeClient([address], access=access, rpc=rpc) as client:
            assert await client.count("docs", consistency="leader") == 5
    plain = NodeAccess(access.token)  # the token over plain HTTP
    untrusting = NodeAccess(access.token, ssl.create_default_context())  # HTTPS, the system's CAs
    for wrong, complaint in ((plain, "disconnected"), (untrusting, "certificate verify failed")):
        async with NodeClient([address], access=wrong, rpc=False, deadline_seconds=2) as client:
            with pytest.raises(VecStoreError, match=complaint):
                await client.status(address)


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without VecStore settings (the test's own choice only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    return {**env, **extra}


def _vecstore(arguments: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vecstore.cli.main", *arguments]
    return subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=CLI_SECONDS, env=env, cwd=cwd
    )


def test_the_cli_verifies_an_https_router_with_ca_file(tls_cluster: LocalCluster, tmp_path: Path) -> None:
    assert tls_cluster.tls is not None
    router = ["--router", tls_cluster.router_url, "--json"]
    trusted = _vecstore(["status", *router, "--ca-file", str(tls_cluster.tls.ca)], _clean_env(), tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)[0]["role"] == "leader"
    by_env = _vecstore(["status", *router], _clean_env(**{CA_ENV: str(tls_cluster.tls.ca)}), tmp_path)
    assert by_env.returncode == 0, by_env.stderr
    untrusted = _vecstore(["status", *router], _clean_env(), tmp_path)  # the system's CAs only
    assert untrusted.returncode == 1
    assert "does not trust" in untrusted.stderr and "--ca-file" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr


def test_direct_to_node_cli_commands_take_the_ca_from_the_environment(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    assert tls_cluster.tls is not None
    nodes = ["status", "--nodes", ",".join(tls_cluster.node_addresses()), "--json"]
    secret = {SECRET_FILE_ENV: str(tls_cluster.secret_path)}
    verified = _vecstore(nodes, _clean_env(**secret, **{CA_ENV: str(tls_cluster.tls.ca)}), tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert [row["role"] for row in json.loads(verified.stdout)] == ["leader"]
    plain = _vecstore(nodes, _clean_env(**secret), tmp_path)  # no CA: plain HTTP to a TLS node
    assert plain.returncode == 1
    assert "unreachable" in plain.stderr and "Traceback" not in plain.stderr


async def test_a_certificate_from_another_ca_or_for_another_name_is_refused(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    other = create_tls_files(tmp_path / "other-ca")  # a CA that signed nothing the cluster serves
    for rpc in (True, False):
        async with RouterClient(
            tls_cluster.router_url, ca_file=other.ca, rpc=rpc, deadline_seconds=2
        ) as client:
            with pytest.raises(Unavailable, match="does not trust"):
                await client.request("GET", "/v1/collections")
    address = tls_cluster.node_addresses()[0]
    access = NodeAccess.of_secret(tls_cluster.secret_path.read_text(), other.ca)
    async with NodeClient([address], access=access, deadline_seconds=2) as node_client:
        with pytest.raises(Unavailable, match="certificate verify failed"):
            await node_client.status(address)
    # the right CA, but a name the certificate does not carry: the hostname is checked
    assert tls_cluster.tls is not None
    connector = aiohttp.TCPConnector(ssl=_trusting(tls_cluster))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(
            aiohttp.ClientConnectorCertificateError, match=r"not valid for 'vecstore\.invalid'"
        ):
            async with session.get(
                f"{tls_cluster.router_url}/healthz", server_hostname="vecstore.invalid"
            ) as response:
                await response.read()


async def test_a_router_refuses_nodes_whose_certificate_its_ca_did_not_sign(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    """What makes TLS worth having: a router does not talk to a node it cannot verify (an
    impostor on the network), and says why instead of hanging."""
    other = create_tls_files(tmp_path / "other-ca")
    spec = tmp_path / "spec.json"  # the cluster's, with a short deadline for node requests
    write_spec(replace(tls_cluster.spec, router=replace(tls_cluster.spec.router, request_timeout=2.0)), spec)
    listen = f"127.0.0.1:{free_ports(1)[0]}"
    environment = {SECRET_FILE_ENV: str(tls_cluster.secret_path), CA_ENV: str(other.ca)}
    router = ManagedProcess(  # serving plain HTTP to this test; a client of TLS nodes
        role="router",
        name="misconfigured-router",
        command=[sys.executable, "-m", "vecstore.router", "--spec", str(spec), "--listen", listen],
        env=_clean_env(**environment),
        log_path=tmp_path / "router.log",
        http=listen,
    )
    router.start()
    try:
        await asyncio.to_thread(wait_ready, f"http://{listen}/healthz", CLI_SECONDS)
        count = f"http://{listen}/v1/collections/docs/points/count"
        async with aiohttp.ClientSession() as session, session.post(count, json={}) as response:
            assert response.status == 503
            error = (await response.json())["error"]
        assert "does not trust" in error and tls_cluster.node_addresses()[0] in error
    finally:
        router.stop()


@pytest.mark.parametrize("module", ["vecstore.router", "vecstore.node"])
def test_incomplete_or_unreadable_tls_settings_stop_the_process_at_start(
    tls_cluster: LocalCluster, tmp_path: Path, module: str
) -> None:
    assert tls_cluster.tls is not None
    arguments = [sys.executable, "-m", module, "--spec", str(tls_cluster.spec_path)]
    if module == "vecstore.node":  # a node of the spec, in a folder of its own (never started)
        arguments += ["--node-id", tls_cluster.spec.shards[0].nodes[0].id, "--data-dir", str(tmp_path / "n")]
    secret = {SECRET_FILE_ENV: str(tls_cluster.secret_path)}
    cert_only = {CERT_ENV: str(tls_cluster.tls.cert)}
    not_a_key = {CERT_ENV: str(tls_cluster.tls.cert), KEY_ENV: str(tls_cluster.tls.ca)}
    cases = [
        (cert_only, "give both a certificate and its key"),
        (not_a_key, "cannot load the TLS certificate"),
    ]
    for settings, complaint in cases:
        started = subprocess.run(
            arguments,
            check=False,
            capture_output=True,
            text=True,
            timeout=CLI_SECONDS,
            env=_clean_env(**secret, **settings),
        )
        assert started.returncode == 2, started.stderr
        assert complaint in started.stderr


def _up(data_dir: Path, log: Path, *flags: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`vecstore up --json` in its own session, and the endpoints it printed."""
    with log.open("wb") as output:
        up = subprocess.Popen(
            [sys.executable, "-m", "vecstore.cli.main", "up", "--data-dir", str(data_dir), "--json", *flags],
            stdout=output,
            stderr=subprocess.DEVNULL,
            env=_clean_env(),
            start_new_session=True,
        )
    deadline = time.monotonic() + CLI_SECONDS
    while time.monotonic() < deadline and up.poll() is None:
        with contextlib.suppress(ValueError):  # not all printed yet
            endpoints: dict[str, Any] = json.JSONDecoder().raw_decode(log.read_text())[0]
            return up, endpoints
        time.sleep(0.1)
    _stop(up)
    raise AssertionError(f"`vecstore up` printed no endpoints: {log.read_text()!r}")


def _stop(up: subprocess.Popen[bytes]) -> int:
    up.send_signal(signal.SIGTERM)
    try:
        return up.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)  # never leave a child behind
        up.wait(timeout=30)


def _status_when_ready(data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 90
    while True:
        status = _vecstore(["status", "--data-dir", str(data_dir), "--json"], _clean_env(), cwd)
        if status.returncode == 0 or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def test_vecstore_up_tls_serves_https_and_keeps_its_ca_on_restart(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "up", free_ports(1)[0]
    up, endpoints = _up(
        data_dir, tmp_path / "up.log", "--tls", "--shards", "1", "--replicas", "1", "--port", str(port)
    )
    try:
        assert endpoints["router"] == f"https://127.0.0.1:{port}"
        assert endpoints["ca_file"] == str((data_dir / "tls" / "ca.pem").resolve())
        status = _status_when_ready(data_dir, tmp_path)  # the CA comes from cluster.json
        assert status.returncode == 0, status.stderr
        assert [row["role"] for row in json.loads(status.stdout)] == ["leader"]
    finally:
        assert _stop(up) == 0
    ca = (data_dir / "tls" / "ca.pem").read_bytes()
    up, endpoints = _up(data_dir, tmp_path / "again.log")  # no --tls: the folder's TLS is kept
    try:
        assert endpoints["router"] == f"https://127.0.0.1:{port}"
        assert (data_dir / "tls" / "ca.pem").read_bytes() == ca
        assert _status_when_ready(data_dir, tmp_path).returncode == 0
    finally:
        assert _stop(up) == 0


def test_the_python_client_trusts_the_ca_it_is_given(tls_cluster: LocalCluster) -> None:
    assert tls_cluster.tls is not None
    with Client(tls_cluster.router_url, ca_file=tls_cluster.tls.ca) as client:
        client.create_collection("client_tls", 2, metric="l2")
        client.upsert("client_tls", [1, 2], [[0.0, 1.0], [1.0, 0.0]])
        assert [hit.id for hit in client.search("client_tls", [0.9, 0.1], k=1)] == [2]
    with (
        Client(tls_cluster.router_url, retry_seconds=2) as untrusting,
        pytest.raises(Unavailable, match="certificate"),
    ):
        untrusting.count("client_tls")
