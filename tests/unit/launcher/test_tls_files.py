"""`vecstore up --tls` material: a CA, a certificate for the local names, a private key."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

from cryptography import x509

from vecstore.launcher.tls_files import TlsFiles, create_tls_files


def test_the_certificate_names_the_local_addresses_and_chains_to_the_ca(tmp_path: Path) -> None:
    files = create_tls_files(tmp_path / "tls")
    assert files == TlsFiles.in_folder(tmp_path / "tls") and files.exist()
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.cert, files.key)  # the key matches the certificate
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    cert.verify_directly_issued_by(ca)


def test_each_call_makes_a_new_ca(tmp_path: Path) -> None:
    first = create_tls_files(tmp_path / "a").ca.read_bytes()
    assert create_tls_files(tmp_path / "b").ca.read_bytes() != first
