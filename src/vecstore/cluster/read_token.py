"""Read tokens: what a client passes to see its writes through any router.

A native write answers `read_token`, "shard:index,..." (the Raft index each shard's
writes through this router were acknowledged at); a read with `"after": token` asks every
replica it reaches to have applied that far (`min_applied` on the node). A router already
does this for the writes it acknowledged itself; the token carries it to another router.
"""

from __future__ import annotations

from collections.abc import Mapping

from vecstore.cluster.errors import InvalidRequest

MAX_TOKEN_CHARS = 4_096
MAX_INDEX = 2**63 - 1


def format_token(indexes: Mapping[int, int]) -> str:
    """The token of per-shard applied indexes (shards without writes left out)."""
    return ",".join(f"{shard}:{index}" for shard, index in sorted(indexes.items()) if index > 0)


def parse_token(raw: object) -> dict[int, int]:
    """A token from a request body ('after'); None or "" is no token. InvalidRequest if malformed."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str) or len(raw) > MAX_TOKEN_CHARS:
        raise InvalidRequest("'after' must be a read token string, as a write answered in 'read_token'")
    indexes: dict[int, int] = {}
    for part in raw.split(","):
        shard, _, index = part.partition(":")
        if not (shard.isascii() and shard.isdigit() and index.isascii() and index.isdigit()):
            raise InvalidRequest(f"'after' is not a read token: {raw[:80]!r} (expected 'shard:index,...')")
        if int(index) > MAX_INDEX:
            raise InvalidRequest(f"'after' names index {index}, beyond any Raft log")
        indexes[int(shard)] = max(indexes.get(int(shard), 0), int(index))
    return indexes


def merge_tokens(first: str, second: str) -> str:
    """One token as recent as both: per shard, the higher index (a client keeps the merge of
    every write's token and passes it with each read)."""
    merged = parse_token(first)
    for shard, index in parse_token(second).items():
        merged[shard] = max(merged.get(shard, 0), index)
    return format_token(merged)
