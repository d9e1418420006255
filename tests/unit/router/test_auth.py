"""API keys and scopes."""

from __future__ import annotations

import pytest

from vecstore.cluster.errors import Forbidden, InvalidRequest, Unauthorized
from vecstore.router.auth import ApiKeys, Scope, load_keys, parse_keys, presented_key


def test_no_keys_means_open() -> None:
    ApiKeys({}).check(None, Scope.ADMIN)


def test_missing_wrong_and_weak_keys() -> None:
    keys = ApiKeys(parse_keys("reader-key-1:read, writer-key-1:write,admin-key-01:admin"))
    with pytest.raises(Unauthorized):
        keys.check(None, Scope.READ)
    with pytest.raises(Unauthorized):
        keys.check("nope-nope-nope", Scope.READ)
    with pytest.raises(Forbidden, match="needs 'write'"):
        keys.check("reader-key-1", Scope.WRITE)
    with pytest.raises(Forbidden):
        keys.check("writer-key-1", Scope.ADMIN)
    keys.check("writer-key-1", Scope.READ)
    keys.check("admin-key-01", Scope.ADMIN)


@pytest.mark.parametrize("text", ["key-without-scope", "short:read", "good-key-123:root"])
def test_bad_key_entries_are_rejected(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_keys(text)


def test_keys_from_environment_and_file(tmp_path: pytest.TempPathFactory) -> None:
    file = tmp_path / "keys"  # type: ignore[operator]
    file.write_text("file-key-0001:admin\n")
    keys = load_keys({"VECSTORE_API_KEYS": "env-key-0001:read", "VECSTORE_API_KEYS_FILE": str(file)})
    keys.check("env-key-0001", Scope.READ)
    keys.check("file-key-0001", Scope.ADMIN)


def test_key_from_either_header() -> None:
    assert presented_key({"api-key": "abc"}) == "abc"
    assert presented_key({"Authorization": "Bearer xyz "}) == "xyz"
    assert presented_key({"Authorization": "Basic xyz"}) is None
