"""`python -m vecstore.router` (also `vecstore router run`): run one stateless router."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from vecstore.cluster.blas import limit_blas_threads
from vecstore.cluster.credentials import CredentialError, NodeAccess
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.log_format import configure_logging
from vecstore.cluster.spec import RouterSpec, SpecError, check_address, load_spec
from vecstore.cluster.tls import server_context_from_env
from vecstore.router.app import create_app
from vecstore.router.auth import load_keys
from vecstore.transport.event_loop import install_event_loop

log = logging.getLogger("vecstore.router")


ENV_SETTINGS = {
    "VECSTORE_RATE_LIMIT_PER_KEY": "rate_limit_per_key",
    "VECSTORE_RATE_BURST_PER_KEY": "rate_burst_per_key",
    "VECSTORE_RATE_LIMIT_PER_ADDRESS": "rate_limit_per_address",
    "VECSTORE_RATE_BURST_PER_ADDRESS": "rate_burst_per_address",
    "VECSTORE_AUDIT_LOG": "audit_log",
    "VECSTORE_CORS_ORIGINS": "cors_origins",
    "VECSTORE_SLOW_QUERY_MS": "slow_query_ms",
    "VECSTORE_QUERY_STAGES": "query_stages",
}
"""Router settings the environment overrides (Helm), by variable."""


def router_from_env(router: RouterSpec, environ: Mapping[str, str]) -> RouterSpec:
    """`router` with the settings of ENV_SETTINGS that the environment sets; SpecError if
    a value does not parse."""
    changes: dict[str, object] = {}
    for variable, name in ENV_SETTINGS.items():
        raw = environ.get(variable)
        if not raw:
            continue
        if name == "cors_origins":
            changes[name] = tuple(o.strip() for o in raw.split(",") if o.strip())
        elif name == "audit_log":
            changes[name] = raw
        elif name == "query_stages":
            changes[name] = raw.lower() not in ("0", "off", "false", "no")
        else:
            try:
                changes[name] = float(raw)
            except ValueError:
                raise SpecError(f"{variable} must be a number, got {raw!r}") from None
    return replace(router, **changes)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    os.umask(0o077)  # whatever this process writes (data, logs, audit) is its owner's alone
    parser = argparse.ArgumentParser(
        prog="vecstore router run",
        description="Run a VecStore router: the public HTTP API (native /v1 and Qdrant-"
        "compatible), routing to shards by consistent hashing. API keys come from "
        "VECSTORE_API_KEYS or VECSTORE_API_KEYS_FILE; the cluster secret, whose token it "
        "presents to the nodes, from VECSTORE_CLUSTER_SECRET or VECSTORE_CLUSTER_SECRET_FILE; "
        "HTTPS with VECSTORE_TLS_CERT_FILE and VECSTORE_TLS_KEY_FILE.",
    )
    parser.add_argument("--spec", type=Path, help="cluster spec file (or VECSTORE_CLUSTER_SPEC_FILE)")
    parser.add_argument("--listen", help="host:port to listen on (overrides router.listen)")
    parser.add_argument("--log-level", default=os.environ.get("VECSTORE_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        limit_blas_threads(os.environ)
        spec = load_spec(args.spec)
        spec = replace(spec, router=router_from_env(spec.router, os.environ))
        keys = load_keys()
        access = NodeAccess.from_env()
        tls = server_context_from_env(os.environ)
        listen = check_address(
            args.listen or os.environ.get("VECSTORE_LISTEN") or spec.router.listen, "listen"
        )
    except (VecStoreError, OSError, CredentialError) as err:
        log.error("cannot start router: %s", err)
        return 2
    host, port = listen.rsplit(":", 1)
    if access.token is None:
        log.warning(
            "no cluster secret (VECSTORE_CLUSTER_SECRET or _FILE): nodes that require one will refuse"
        )
    if not keys.enabled:
        log.warning("no API keys configured: the router accepts every request (development)")
    log.info("router serving", extra={"listen": listen, "shards": len(spec.shards), "tls": tls is not None})
    install_event_loop()
    app = create_app(spec, keys, access)
    web.run_app(app, host=host, port=int(port), access_log=None, print=None, ssl_context=tls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
