"""Token buckets per API key and per client address: a 429 with Retry-After past the rate.

Off by default (rate 0): benchmarks and batch loaders drive thousands of requests a second
from one address. A bucket holds `burst` tokens, refills at `rate` a second, and each
request (or RPC frame) takes one. Buckets are kept for the most recent callers only, so an
attacker rotating addresses cannot grow the router's memory. Pure: time is passed in.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass

from vecstore.cluster.errors import RateLimited
from vecstore.cluster.spec import RouterSpec

MAX_BUCKETS = 65_536


@dataclass
class TokenBucket:
    """`tokens` left as of `updated` (seconds, any monotonic clock)."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token: 0.0 if granted, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per caller key; `rate` <= 0 turns it off."""

    def __init__(self, rate: float, burst: float = 0.0, max_buckets: int = MAX_BUCKETS) -> None:
        self.rate = rate
        self.burst = burst if burst >= 1.0 else max(1.0, 2.0 * rate)
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.rate > 0

    def wait(self, caller: str, now: float) -> float:
        """0.0 when `caller` may go on now, else the seconds it should wait."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.pop(caller, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            while len(self._buckets) >= self.max_buckets:
                self._buckets.popitem(last=False)  # the least recently seen caller
        self._buckets[caller] = bucket
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)


def key_fingerprint(key: str) -> str:
    """A short, non-reversible name for an API key (logs, audit, buckets)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class CallerLimits:
    """The router's two limits: per client address (checked before the API key, so key
    guessing is limited too) and per API key."""

    def __init__(self, per_address: RateLimiter, per_key: RateLimiter) -> None:
        self.per_address = per_address
        self.per_key = per_key

    @classmethod
    def of_spec(cls, router: RouterSpec) -> CallerLimits:
        """The limits a router spec configures."""
        return cls(
            RateLimiter(router.rate_limit_per_address, router.rate_burst_per_address),
            RateLimiter(router.rate_limit_per_key, router.rate_burst_per_key),
        )

    def check_address(self, address: str, now: float) -> None:
        """RateLimited when this address is over its rate."""
        wait = self.per_address.wait(address, now)
        if wait > 0:
            raise RateLimited(f"too many requests from {address}; retry in {wait:.1f} s", wait)

    def check_key(self, key: str | None, now: float) -> None:
        """RateLimited when this API key is over its rate (callers without a key: nothing)."""
        if key is None:
            return
        wait = self.per_key.wait(key_fingerprint(key), now)
        if wait > 0:
            raise RateLimited(f"too many requests with this API key; retry in {wait:.1f} s", wait)
