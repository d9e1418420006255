"""Field readers of request bodies: clear errors, never a crash."""

from __future__ import annotations

import pytest

from vecstore.cluster.errors import InvalidRequest
from vecstore.transport.wire import field_float


def test_field_float() -> None:
    assert field_float({"x": 2}, "x") == 2.0
    assert field_float({}, "x") is None
    for bad in (10**400, float("inf"), float("nan"), True, "1"):
        with pytest.raises(InvalidRequest, match="x must be"):
            field_float({"x": bad}, "x")
