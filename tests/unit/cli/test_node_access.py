"""Which cluster secret a direct-to-node command presents."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecstore.cli.output import CliError
from vecstore.cli.target import node_access
from vecstore.cluster.credentials import NO_ACCESS, node_token


def test_precedence_flag_then_env_then_data_dir(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("from-the-flag-0123456789")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "cluster.secret").write_text("from-the-folder-0123456789")
    env = {"VECSTORE_CLUSTER_SECRET": "from-the-env-0123456789"}
    assert node_access(flag, folder, env).token == node_token("from-the-flag-0123456789")
    assert node_access(None, folder, env).token == node_token("from-the-env-0123456789")
    assert node_access(None, folder, {}).token == node_token("from-the-folder-0123456789")
    assert node_access(None, None, {}, cwd=tmp_path) == NO_ACCESS
    default = tmp_path / "vecstore-data"
    default.mkdir()
    (default / "cluster.secret").write_text("from-the-default-0123456789")
    assert node_access(None, None, {}, cwd=tmp_path).token == node_token("from-the-default-0123456789")


def test_a_missing_secret_file_is_a_cli_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read the cluster secret file"):
        node_access(tmp_path / "nope", None, {})
