"""API keys with scopes (read < write < admin), checked in constant time.

Keys come from VECSTORE_API_KEYS (`key:scope,key:scope`) or VECSTORE_API_KEYS_FILE (one
`key:scope` per line), never from the cluster spec. With no keys configured, the API is
open (development); with keys, a missing key is 401 and a weaker scope is 403.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from enum import IntEnum
from pathlib import Path

from vecstore.cluster.errors import Forbidden, InvalidRequest, Unauthorized


class Scope(IntEnum):
    """What a key may do; each scope includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3


class ApiKeys:
    """The configured keys."""

    def __init__(self, keys: Mapping[str, Scope]) -> None:
        self._keys = dict(keys)

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured."""
        return bool(self._keys)

    def scope_of(self, presented: str | None) -> Scope | None:
        """The scope a presented key grants (None: no key, or not a configured one)."""
        granted = None
        if presented:
            for key, scope in self._keys.items():
                if hmac.compare_digest(key.encode(), presented.encode()):
                    granted = scope
        return granted

    def check(self, presented: str | None, needed: Scope) -> None:
        """Raise Unauthorized or Forbidden unless `presented` grants `needed`."""
        if not self._keys:
            return
        if not presented:
            raise Unauthorized("an API key is required: send it in the 'api-key' header")
        granted = None
        for key, scope in self._keys.items():
            if hmac.compare_digest(key.encode(), presented.encode()):
                granted = scope
        if granted is None:
            raise Unauthorized("the API key is not valid")
        if granted < needed:
            raise Forbidden(
                f"this API key has scope '{granted.name.lower()}'; the operation needs "
                f"'{needed.name.lower()}'"
            )


def parse_keys(text: str) -> dict[str, Scope]:
    """Parse `key:scope` items separated by commas or newlines."""
    keys: dict[str, Scope] = {}
    for item in filter(None, (part.strip() for part in text.replace("\n", ",").split(","))):
        key, _, scope = item.rpartition(":")
        if not key or scope.upper() not in Scope.__members__:
            raise InvalidRequest(f"API key entry must look like KEY:read|write|admin (got scope {scope!r})")
        if len(key) < 8:
            raise InvalidRequest("API keys must be at least 8 characters long")
        keys[key] = Scope[scope.upper()]
    return keys


def load_keys(environ: Mapping[str, str] | None = None) -> ApiKeys:
    """Keys from the environment (or a file it names)."""
    env = os.environ if environ is None else environ
    text = env.get("VECSTORE_API_KEYS", "")
    if env.get("VECSTORE_API_KEYS_FILE"):
        text += "\n" + Path(env["VECSTORE_API_KEYS_FILE"]).read_text()
    return ApiKeys(parse_keys(text))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `api-key` or `Authorization: Bearer ...`."""
    key = headers.get("api-key")
    if key:
        return key
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None
