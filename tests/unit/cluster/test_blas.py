"""Server processes use one BLAS thread unless VECSTORE_BLAS_THREADS says otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from vecstore.cluster.blas import blas_threads, limit_blas_threads
from vecstore.cluster.errors import InvalidRequest


def blas_pool_sizes() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_the_default_is_one_thread_and_the_variable_sets_it() -> None:
    assert blas_threads({}) == 1
    assert blas_threads({"VECSTORE_BLAS_THREADS": " 4 "}) == 4


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5", ""])
def test_a_bad_value_is_a_clear_error(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="VECSTORE_BLAS_THREADS must be a positive integer"):
        blas_threads({"VECSTORE_BLAS_THREADS": raw})


def test_limit_sets_numpys_blas_pool() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    assert blas_pool_sizes(), "numpy links a BLAS threadpoolctl can see"
    with threadpool_limits(limits=None):  # restores this test process's pool afterwards
        assert limit_blas_threads({"VECSTORE_BLAS_THREADS": "1"}) == 1
        assert blas_pool_sizes() == [1] * len(blas_pool_sizes())
