"""TLS settings: what a server serves, what its clients verify, and the errors of bad files."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from vecstore.cluster.credentials import NodeAccess, node_token
from vecstore.cluster.tls import CA_ENV, CERT_ENV, KEY_ENV, TlsError, client_context, server_context_from_env
from vecstore.launcher.tls_files import TlsFiles, create_tls_files


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return create_tls_files(tmp_path_factory.mktemp("tls"))


def test_a_server_serves_tls_only_with_both_files(files: TlsFiles) -> None:
    assert server_context_from_env({}) is None
    context = server_context_from_env({CERT_ENV: str(files.cert), KEY_ENV: str(files.key)})
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
    for half in ({CERT_ENV: str(files.cert)}, {KEY_ENV: str(files.key)}):
        with pytest.raises(TlsError, match=f"{CERT_ENV} and {KEY_ENV}"):
            server_context_from_env(half)


def test_unusable_files_are_named_in_the_error(files: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=f"cannot load the TLS certificate {files.cert} and key {files.ca}"):
        server_context_from_env({CERT_ENV: str(files.cert), KEY_ENV: str(files.ca)})  # a certificate as key
    with pytest.raises(TlsError, match="cannot load the CA file"):
        client_context(tmp_path / "missing.pem")
    assert TlsError.http_status == 400 and not TlsError.retriable


def test_clients_check_the_chain_and_the_hostname(files: TlsFiles) -> None:
    context = client_context(files.ca)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_node_access_reaches_nodes_over_https_when_given_a_ca(files: TlsFiles, tmp_path: Path) -> None:
    plain = NodeAccess.from_env({"VECSTORE_CLUSTER_SECRET": "s" * 32})
    assert plain.tls is None and plain.url("10.0.0.1:8000") == "http://10.0.0.1:8000"
    secured = NodeAccess.from_env({"VECSTORE_CLUSTER_SECRET": "s" * 32, CA_ENV: str(files.ca)})
    assert secured.scheme == "https" and secured.url("10.0.0.1:8000") == "https://10.0.0.1:8000"
    assert secured.token == node_token("s" * 32)
    assert secured.tls is not None and secured.tls.check_hostname
    with pytest.raises(TlsError, match="cannot load the CA file"):
        NodeAccess.from_env({CA_ENV: str(tmp_path / "missing.pem")})
