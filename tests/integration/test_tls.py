"""`vecstore up --tls`: router and nodes over HTTPS, verified by clients with the cluster's CA."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from vecstore.cluster.credentials import NodeAccess
from vecstore.cluster.errors import Unavailable, VecStoreError
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.transport.node_client import NodeClient
from vecstore.transport.router_client import RouterClient

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
