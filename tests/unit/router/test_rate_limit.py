"""Token buckets against a model that counts grants over time; memory bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecstore.cluster.errors import RateLimited
from vecstore.cluster.spec import RouterSpec, SpecError
from vecstore.router.rate_limit import CallerLimits, RateLimiter, key_fingerprint, retry_after_header


@given(
    st.floats(min_value=0.5, max_value=50),
    st.integers(min_value=1, max_value=20),
    st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=60),
)
def test_grants_never_exceed_burst_plus_refill(rate: float, burst: int, gaps: list[float]) -> None:
    limiter = RateLimiter(rate, burst)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        wait = limiter.wait("caller", now)
        if wait == 0.0:
            granted += 1
        else:
            assert 0 < wait <= 1 / rate + 1e-9
    assert granted <= burst + now * rate + 1e-6


def model_tokens(times: list[float], granted: list[bool], now: float, rate: float, burst: float) -> float:
    """Tokens before a request at `now`, computed without any state: the bucket's level is
    the least, over every earlier request j, of a full bucket at j refilled until `now`,
    less the grants since j (what repeated clipping at `burst` amounts to)."""
    levels = [burst + rate * (now - at) - sum(granted[j:]) for j, at in enumerate(times)]
    return min([burst, *levels])


@given(
    st.integers(min_value=1, max_value=20),
    st.integers(min_value=1, max_value=10),
    st.lists(st.integers(min_value=0, max_value=16), min_size=1, max_size=50),
)
def test_the_bucket_grants_exactly_what_the_model_grants(rate: int, burst: int, gaps: list[int]) -> None:
    limiter = RateLimiter(float(rate), float(burst))
    times: list[float] = []
    granted: list[bool] = []
    now = 0.0
    for gap in gaps:
        now += gap / 8  # multiples of 1/8 s: the arithmetic is exact in binary floating point
        tokens = model_tokens(times, granted, now, rate, burst)
        wait = limiter.wait("caller", now)
        assert (wait == 0.0) == (tokens >= 1)
        if wait:
            assert wait == pytest.approx((1 - tokens) / rate)
        times.append(now)
        granted.append(wait == 0.0)


def test_a_refused_caller_may_go_after_the_wait_it_was_told() -> None:
    limiter = RateLimiter(2.0, 2)
    assert limiter.wait("a", 0.0) == 0.0
    assert limiter.wait("a", 0.0) == 0.0
    wait = limiter.wait("a", 0.0)
    assert wait == pytest.approx(0.5)
    assert limiter.wait("b", 0.0) == 0.0  # another caller has its own bucket
    assert limiter.wait("a", wait) == 0.0


def test_off_by_default_and_bounded_in_memory() -> None:
    assert not RateLimiter(0).enabled
    assert all(RateLimiter(0).wait("x", 0.0) == 0.0 for _ in range(100))
    limiter = RateLimiter(1.0, 1, max_buckets=100)
    for i in range(10_000):
        limiter.wait(f"10.0.{i >> 8}.{i & 255}", float(i))
    assert len(limiter) == 100


def test_caller_limits_raise_with_the_wait() -> None:
    limits = CallerLimits.of_spec(RouterSpec(rate_limit_per_key=1.0, rate_burst_per_key=1.0))
    limits.check_address("10.0.0.1", 0.0)  # per address: off
    limits.check_key("secret-key-1", 0.0)
    with pytest.raises(RateLimited) as refused:
        limits.check_key("secret-key-1", 0.1)
    assert refused.value.retry_after == pytest.approx(0.9)
    assert refused.value.http_status == 429 and refused.value.retriable
    assert "secret-key-1" not in refused.value.message
    limits.check_key(None, 0.2)  # no key: only the address limit applies
    assert retry_after_header(0.2) == "1" and retry_after_header(2.1) == "3"
    assert len(key_fingerprint("k")) == 12 and key_fingerprint("k") != "k"


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_finite_non_negative_number_is_a_spec_error(rate: float) -> None:
    with pytest.raises(SpecError, match="rate_limit_per_address"):
        RouterSpec(rate_limit_per_address=rate)
