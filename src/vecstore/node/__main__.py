"""`python -m vecstore.node` (also `vecstore node run`): run one node process.

Stops gracefully on SIGTERM or SIGINT: HTTP stops accepting, Raft shuts down, the
indexer finishes its step.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
from pathlib import Path

from aiohttp import web

from vecstore.cluster.blas import limit_blas_threads
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.log_format import configure_logging
from vecstore.cluster.tls import server_context
from vecstore.node.api import create_app
from vecstore.node.config import INSECURE_FLAG, load_config
from vecstore.node.service import NodeService
from vecstore.transport.event_loop import install_event_loop

log = logging.getLogger("vecstore.node")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags of `vecstore node run`."""
    parser = argparse.ArgumentParser(
        prog="vecstore node run",
        description="Run one VecStore node: a Raft member of its shard with an HTTP API. "
        "Settings come from --config (TOML) and VECSTORE_* environment variables.",
    )
    parser.add_argument("--config", type=Path, help="node config file (TOML)")
    parser.add_argument("--spec", type=Path, help="cluster spec file (TOML/YAML/JSON)")
    parser.add_argument("--node-id", help="this node's id in the cluster spec")
    parser.add_argument("--data-dir", type=Path, help="data directory (VECSTORE_DATA_DIR)")
    parser.add_argument(
        "--insecure-no-cluster-secret",
        action="store_true",
        help="DEVELOPMENT ONLY: run Raft without a cluster secret. Anyone who can reach the "
        "Raft port can then execute code on this node.",
    )
    parser.add_argument("--log-level", default=os.environ.get("VECSTORE_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


async def serve(service: NodeService, tls: ssl.SSLContext | None = None) -> None:
    """Serve HTTP (HTTPS with `tls`) until SIGTERM/SIGINT."""
    runner = web.AppRunner(create_app(service), access_log=None)
    await runner.setup()
    config = service.config
    site = web.TCPSite(runner, config.http_host, config.http_port, ssl_context=tls)
    await site.start()
    log.info("node serving", extra=service.config.describe())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("node stopping", extra={"node": service.config.node_id})
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    os.umask(0o077)  # whatever this process writes (data, logs, audit) is its owner's alone
    args = parse_args(argv)
    configure_logging(args.log_level)
    environ = dict(os.environ)
    if args.node_id:
        environ["VECSTORE_NODE_ID"] = args.node_id
    if args.data_dir:
        environ["VECSTORE_DATA_DIR"] = str(args.data_dir)
    if args.insecure_no_cluster_secret:
        environ["VECSTORE_" + INSECURE_FLAG.upper()] = "1"
    try:
        limit_blas_threads(environ)
        config = load_config(args.config, environ, spec_path=args.spec)
        tls = server_context(config.tls_cert_file, config.tls_key_file)
        if config.insecure_no_cluster_secret and not config.cluster_secret:
            log.warning(
                "RUNNING WITHOUT A CLUSTER SECRET: the Raft port accepts pickled messages from "
                "anyone who can reach it, and the node API asks no credentials. Never do this "
                "outside local development."
            )
        service = NodeService(config)
    except VecStoreError as err:
        log.error("cannot start node: %s", err.message)
        return 2
    try:
        install_event_loop()
        asyncio.run(serve(service, tls))
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
