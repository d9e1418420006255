"""Which router a `vecstore` command talks to, with which API key, and the shared options.

The router comes from `--router`, else `<--data-dir>/cluster.json` (written by `vecstore
up`), else VECSTORE_ROUTER, else `./vecstore-data/cluster.json` when it exists, else
http://127.0.0.1:6333. The key comes from `--api-key` or VECSTORE_API_KEY.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from vecstore.cli.output import CliError
from vecstore.cluster.credentials import (
    CredentialError,
    NodeAccess,
    read_secret_file,
    secret_from_env,
)
from vecstore.cluster.errors import VecStoreError
from vecstore.cluster.tls import CA_ENV
from vecstore.transport.router_client import DEFAULT_ROUTER, RouterClient, normalize_router_url

T = TypeVar("T")

DEFAULT_DATA_DIR = Path("vecstore-data")
MANIFEST_NAME = "cluster.json"


def read_manifest(data_dir: Path) -> dict[str, Any]:
    """`<data_dir>/cluster.json`, the list of processes `vecstore up` keeps current."""
    path = data_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"{path} does not exist: is `vecstore up --data-dir {data_dir}` running?") from None
    except (OSError, ValueError) as err:
        raise CliError(f"cannot read {path}: {err}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("router"), str):
        raise CliError(f"{path} has no 'router' entry; it was not written by `vecstore up`")
    return manifest


def resolve_router(
    router: str | None,
    data_dir: Path | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """The router URL, by the precedence in this module's docstring."""
    env = os.environ if environ is None else environ
    if router:
        return normalize_router_url(router)
    if data_dir is not None:
        return normalize_router_url(str(read_manifest(data_dir)["router"]))
    if env.get("VECSTORE_ROUTER"):
        return normalize_router_url(env["VECSTORE_ROUTER"])
    default_dir = (cwd or Path.cwd()) / DEFAULT_DATA_DIR
    if (default_dir / MANIFEST_NAME).exists():
        return normalize_router_url(str(read_manifest(default_dir)["router"]))
    return DEFAULT_ROUTER


@dataclass(frozen=True)
class Target:
    """What a router command needs: where, with which key, and how to print."""

    router: str
    api_key: str | None
    as_json: bool
    ca_file: Path | None = None
    """The CA an https router's certificate is verified with (None: the system's CAs)."""

    def client(self, deadline_seconds: float = 30.0) -> RouterClient:
        """A client of the router (use with `async with`)."""
        return RouterClient(
            self.router, api_key=self.api_key, deadline_seconds=deadline_seconds, ca_file=self.ca_file
        )


def resolve_ca_file(
    ca_file: Path | None,
    router: str | None,
    data_dir: Path | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The CA to verify an https router with: `--ca-file`, else VECSTORE_TLS_CA_FILE, else
    the `ca_file` of the `vecstore up` folder whose router is used (None: system CAs)."""
    env = os.environ if environ is None else environ
    if ca_file is not None:
        return ca_file
    if env.get("VECSTORE_TLS_CA_FILE"):
        return Path(env["VECSTORE_TLS_CA_FILE"])
    if router:
        return None
    folder = data_dir
    if folder is None and not env.get("VECSTORE_ROUTER"):
        default_dir = (cwd or Path.cwd()) / DEFAULT_DATA_DIR
        folder = default_dir if (default_dir / MANIFEST_NAME).exists() else None
    if folder is None:
        return None
    recorded = read_manifest(folder).get("ca_file")
    return Path(recorded) if isinstance(recorded, str) else None


def ca_file_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--ca-file`: the CA that signed an https router's certificate."""
    return click.option(
        "--ca-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="CA certificate to verify an https router with [env VECSTORE_TLS_CA_FILE; "
        "default: the `vecstore up` folder's, else the system's]",
    )(func)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine to completion."""
    return asyncio.run(coroutine)


def json_option(func: Callable[..., T]) -> Callable[..., T]:
    """`--json` (machine-readable output on stdout)."""
    return click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")(func)


def router_command(func: Callable[..., T]) -> Callable[..., T]:
    """Add --router, --data-dir, --api-key and --json; pass the command a `Target` first."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        router: str | None,
        data_dir: Path | None,
        api_key: str | None,
        ca_file: Path | None,
        as_json: bool,
        **kw: Any,
    ) -> T:
        url = resolve_router(router, data_dir)
        target = Target(url, api_key or None, as_json, resolve_ca_file(ca_file, router, data_dir))
        return func(target, *args, **kw)

    decorated: Callable[..., T] = json_option(wrapper)
    for option in (
        ca_file_option,
        click.option(
            "--api-key",
            envvar="VECSTORE_API_KEY",
            help="API key, sent as the 'api-key' header [env VECSTORE_API_KEY]",
        ),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="find the router in DIR/cluster.json (written by `vecstore up`)",
        ),
        click.option(
            "--router",
            metavar="URL",
            help=f"router URL [env VECSTORE_ROUTER; default {DEFAULT_ROUTER}]",
        ),
    ):
        decorated = option(decorated)
    return decorated


SECRET_NAME = "cluster.secret"  # noqa: S105 - a file name
TLS_CA = Path("tls") / "ca.pem"
"""The CA of a `vecstore up --tls` folder."""


def node_access(
    secret_file: Path | None,
    data_dir: Path | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> NodeAccess:
    """What commands that talk to nodes directly present: the token of the cluster secret
    from `--secret-file`, else VECSTORE_CLUSTER_SECRET(_FILE), else `<data-dir>/cluster.secret`
    (`./vecstore-data` by default, when it exists); none when there is no secret (nodes run
    with --insecure-no-cluster-secret accept that)."""
    env = os.environ if environ is None else environ
    folder = data_dir or (cwd or Path.cwd()) / DEFAULT_DATA_DIR
    ca_file = env.get(CA_ENV) or (str(folder / TLS_CA) if (folder / TLS_CA).exists() else None)
    try:
        if secret_file is not None:
            return NodeAccess.of_secret(read_secret_file(secret_file), ca_file)
        secret = secret_from_env(env)
        if secret is not None:
            return NodeAccess.of_secret(secret, ca_file)
        if (folder / SECRET_NAME).exists():
            return NodeAccess.of_secret(read_secret_file(folder / SECRET_NAME), ca_file)
        return NodeAccess.of_secret(None, ca_file)
    except (CredentialError, VecStoreError) as err:
        raise CliError(str(err)) from None


def secret_file_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--secret-file`: the cluster secret, for commands that talk to nodes directly."""
    return click.option(
        "--secret-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="the cluster secret, whose token the nodes ask for [default: env "
        "VECSTORE_CLUSTER_SECRET(_FILE), else DATA_DIR/cluster.secret]",
    )(func)
