"""How a caller proves to a node that it belongs to the cluster: a token derived from the secret.

Routers, ingest workers, the admin CLI and the resharding coordinator present
`Authorization: Bearer <node token>` on every node request (HTTP and the RPC WebSocket
handshake). The token is an HMAC of the cluster secret, so it can be checked without
sending the secret itself, and knowing it does not reveal the Raft encryption key. It is
a bearer credential: on a network where others can read traffic, run the node API over
TLS (docs/security.md). Never log a token or a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vecstore.cluster.tls import CA_ENV, client_context

TOKEN_PREFIX = "vsn1."  # noqa: S105 - a format marker, not a secret
TOKEN_CONTEXT = b"vecstore node api v1"
SECRET_ENV = "VECSTORE_CLUSTER_SECRET"  # noqa: S105 - the variable's name
SECRET_FILE_ENV = "VECSTORE_CLUSTER_SECRET_FILE"  # noqa: S105 - the variable's name


class CredentialError(ValueError):
    """The cluster secret named by the environment cannot be read."""


def node_token(secret: str) -> str:
    """The node API token of a cluster secret."""
    digest = hmac.new(secret.encode(), TOKEN_CONTEXT, hashlib.sha256).hexdigest()
    return TOKEN_PREFIX + digest


def presented_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(authorization: str | None, expected: str) -> bool:
    """Whether an Authorization header carries the expected token (constant time)."""
    token = presented_token(authorization)
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())


def read_secret_file(path: Path) -> str:
    """A secret file's content without surrounding whitespace; CredentialError if unusable."""
    try:
        secret = path.read_text().strip()
    except OSError as err:
        raise CredentialError(f"cannot read the cluster secret file {path}: {err.strerror}") from None
    if not secret:
        raise CredentialError(f"the cluster secret file {path} is empty")
    return secret


def secret_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The cluster secret from VECSTORE_CLUSTER_SECRET or VECSTORE_CLUSTER_SECRET_FILE, or None."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_ENV):
        return env[SECRET_ENV]
    if env.get(SECRET_FILE_ENV):
        return read_secret_file(Path(env[SECRET_FILE_ENV]))
    return None


@dataclass(frozen=True)
class NodeAccess:
    """What a client of the node API presents: the token (None: a node run without a
    cluster secret, development only), and how it reaches nodes: over TLS verified with
    `tls` (nodes serving HTTPS), else plain HTTP."""

    token: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of_secret(cls, secret: str | None, ca_file: str | Path | None = None) -> NodeAccess:
        """Access with the token of a cluster secret (no token without one), over TLS
        verified with `ca_file` when given."""
        return cls(node_token(secret) if secret else None, client_context(ca_file) if ca_file else None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NodeAccess:
        """Access from VECSTORE_CLUSTER_SECRET(_FILE) and VECSTORE_TLS_CA_FILE; CredentialError
        or TlsError if a file is unusable."""
        env = os.environ if environ is None else environ
        return cls.of_secret(secret_from_env(env), env.get(CA_ENV) or None)

    @property
    def scheme(self) -> str:
        """How node URLs begin."""
        return "https" if self.tls is not None else "http"

    def url(self, address: str) -> str:
        """The base URL of a node's HTTP address (host:port)."""
        return f"{self.scheme}://{address}"

    def headers(self) -> dict[str, str]:
        """The headers every node request carries."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


NO_ACCESS = NodeAccess()
"""For nodes run with --insecure-no-cluster-secret (and for probing that a node refuses)."""
