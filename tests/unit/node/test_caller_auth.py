"""Refused callers are logged at most once a minute each, with a count of the silent ones."""

from __future__ import annotations

import logging

import pytest

from vecstore.node.caller_auth import MAX_REMEMBERED_CALLERS, RefusalLog


def test_one_line_per_caller_per_period(caplog: pytest.LogCaptureFixture) -> None:
    refusals = RefusalLog(every_seconds=60)
    with caplog.at_level(logging.WARNING, logger="vecstore.node.caller_auth"):
        logged = [refusals.refused("10.0.0.1", "/v1/apply", now=t) for t in (0, 1, 2, 59)]
        logged.append(refusals.refused("10.0.0.2", "/v1/apply", now=3))
        logged.append(refusals.refused("10.0.0.1", "/v1/status", now=61))
    assert logged == [True, False, False, False, True, True]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "10.0.0.1" in lines[0] and "0 more" in lines[0]
    assert "10.0.0.1" in lines[2] and "3 more" in lines[2]


def test_memory_stays_bounded_under_address_rotation() -> None:
    refusals = RefusalLog()
    for i in range(3 * MAX_REMEMBERED_CALLERS):
        refusals.refused(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "/v1/apply", now=float(i) / 1000)
    assert len(refusals._last) <= MAX_REMEMBERED_CALLERS
    assert len(refusals._silent) <= MAX_REMEMBERED_CALLERS
