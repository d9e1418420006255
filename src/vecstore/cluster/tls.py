"""TLS contexts from certificate files: servers (router, node) and their clients.

A server serves HTTPS when it is given both a certificate (chain) and its key, in PEM;
clients verify servers against a CA file when one is given, else the system's CAs.
Hostnames are always checked: certificates must name the address clients use.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

from vecstore.cluster.errors import InvalidRequest

CERT_ENV = "VECSTORE_TLS_CERT_FILE"
KEY_ENV = "VECSTORE_TLS_KEY_FILE"
CA_ENV = "VECSTORE_TLS_CA_FILE"


class TlsError(InvalidRequest):
    """TLS settings that are incomplete or files that cannot be loaded."""

    code = "tls_error"


def server_context(cert_file: str | Path | None, key_file: str | Path | None) -> ssl.SSLContext | None:
    """The context serving `cert_file` with `key_file` (None when neither is given)."""
    if not cert_file and not key_file:
        return None
    if not cert_file or not key_file:
        raise TlsError(f"give both a certificate and its key ({CERT_ENV} and {KEY_ENV}), or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as err:
        raise TlsError(f"cannot load the TLS certificate {cert_file} and key {key_file}: {err}") from None
    return context


def server_context_from_env(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """`server_context` of VECSTORE_TLS_CERT_FILE and VECSTORE_TLS_KEY_FILE."""
    return server_context(environ.get(CERT_ENV), environ.get(KEY_ENV))


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    """A context trusting the CA in `ca_file` (TlsError if it cannot be read)."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as err:
        raise TlsError(f"cannot load the CA file {ca_file}: {err}") from None
