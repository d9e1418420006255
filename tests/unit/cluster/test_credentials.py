"""The node token: derived from the secret, checked in constant time, read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.credentials import (
    NO_ACCESS,
    CredentialError,
    NodeAccess,
    node_token,
    presented_token,
    secret_from_env,
    token_matches,
)


@given(st.text(min_size=1), st.text(min_size=1))
def test_tokens_differ_exactly_when_secrets_differ(first: str, second: str) -> None:
    assert (node_token(first) == node_token(second)) == (first == second)


def test_a_token_never_contains_its_secret() -> None:
    secret = "s3cret-value-0123456789abcdef"
    token = node_token(secret)
    assert token.startswith("vsn1.")
    assert secret not in token
    assert node_token(secret) == token  # every process derives the same token


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
    ],
)
def test_presented_token(header: str | None, expected: str | None) -> None:
    assert presented_token(header) == expected


def test_token_matches_only_the_exact_token() -> None:
    token = node_token("secret-0123456789abcdef")
    assert token_matches(f"Bearer {token}", token)
    assert not token_matches(f"Bearer {token}x", token)
    assert not token_matches(f"Bearer {token[:-1]}", token)
    assert not token_matches(token, token)  # no scheme
    assert not token_matches(None, token)


def test_secret_from_env_prefers_the_value_then_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("  from-the-file-0123456789\n")
    assert secret_from_env({}) is None
    assert secret_from_env({"VECSTORE_CLUSTER_SECRET_FILE": str(path)}) == "from-the-file-0123456789"
    both = {"VECSTORE_CLUSTER_SECRET": "inline", "VECSTORE_CLUSTER_SECRET_FILE": str(path)}
    assert secret_from_env(both) == "inline"


def test_unreadable_or_empty_secret_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="cannot read"):
        secret_from_env({"VECSTORE_CLUSTER_SECRET_FILE": str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        secret_from_env({"VECSTORE_CLUSTER_SECRET_FILE": str(empty)})


def test_access_headers_and_repr_hide_the_token() -> None:
    access = NodeAccess.of_secret("secret-0123456789abcdef")
    assert access.headers() == {"Authorization": f"Bearer {node_token('secret-0123456789abcdef')}"}
    assert "vsn1" not in repr(access)
    assert NO_ACCESS.headers() == {}
    assert NodeAccess.of_secret(None) == NO_ACCESS
    assert NodeAccess.from_env({"VECSTORE_CLUSTER_SECRET": "x" * 20}).token == node_token("x" * 20)
