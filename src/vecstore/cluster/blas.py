"""How many threads numpy's BLAS may use in a server process: one unless configured.

OpenBLAS starts a thread per core for every matrix product and spins them while it waits.
A node is one of several processes on a machine, each with its own indexer, read and Raft
threads: spinning BLAS threads then compete with all of them. Measured on the 2-core test
machine (2 shards x 3 replicas, 384-d, searches while replicas index): with OpenBLAS's
default of 2 threads a search took 25-30 ms at the median and the indexers crawled; with 1,
3 ms, and indexing caught up several times faster. `VECSTORE_BLAS_THREADS` raises it for
a node that owns a many-core machine and serves large search batches.
"""

from __future__ import annotations

from collections.abc import Mapping

from vecstore.cluster.errors import InvalidRequest

BLAS_THREADS_VARIABLE = "VECSTORE_BLAS_THREADS"
DEFAULT_BLAS_THREADS = 1


def blas_threads(environ: Mapping[str, str]) -> int:
    """The configured BLAS thread count (a positive integer), or a clear error."""
    raw = environ.get(BLAS_THREADS_VARIABLE, str(DEFAULT_BLAS_THREADS)).strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidRequest(f"{BLAS_THREADS_VARIABLE} must be a positive integer, got {raw!r}")
    return int(raw)


def limit_blas_threads(environ: Mapping[str, str]) -> int:
    """Set numpy's BLAS thread pool of this process to `blas_threads(environ)`; returns it."""
    from threadpoolctl import threadpool_limits  # only server processes need it

    threads = blas_threads(environ)
    threadpool_limits(limits=threads, user_api="blas")
    return threads
