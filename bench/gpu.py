"""`make bench-gpu`: the shard scorer's cupy path against its numpy path on the same batches.

Times `vecstore.shard.scorer.Scorer` with GpuMode.ON and GpuMode.OFF on (1) exact batch
scoring, 1,000 queries x 1,000,000 candidates in chunks with a running top-k merge, and
(2) re-scoring, each query's own 40 candidates (k x rescore_factor) at full precision.
Without a CUDA device (or cupy) it says so and exits with status 2; tests never need one.

    python -m bench.gpu [--candidates N] [--queries N] [--chunk N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.dataset import FloatMatrix, IntArray
from vecstore.cluster.errors import Unavailable
from vecstore.cluster.schema import Metric
from vecstore.shard.scorer import Scorer
from vecstore.shard.settings import GpuMode

K = 10
RESCORE_CANDIDATES = 40
RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"


def gpu_scorer() -> tuple[Scorer, str] | None:
    """The cupy scorer and the card's name, or None when there is no usable CUDA device."""
    try:
        scorer = Scorer(GpuMode.ON)
    except Unavailable:
        return None
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(0)
    name = properties["name"]
    return scorer, name.decode() if isinstance(name, bytes) else str(name)


def chunked_top_k(
    scorer: Scorer, queries: FloatMatrix, candidates: FloatMatrix, chunk: int
) -> tuple[IntArray, FloatMatrix]:
    """Exact top-k over all candidates, a chunk at a time, merging the running best."""
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    best_dist = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(candidates), chunk):
        rows, dist = scorer.top_k(queries, candidates[start : start + chunk], Metric.COSINE, K)
        merged_rows = np.concatenate([best_rows, rows + start], axis=1)
        merged_dist = np.concatenate([best_dist, dist], axis=1)
        order = np.argsort(merged_dist, axis=1, kind="stable")[:, :K]
        best_rows = np.take_along_axis(merged_rows, order, axis=1)
        best_dist = np.take_along_axis(merged_dist, order, axis=1)
    return best_rows, best_dist


def timed(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of `repeats` calls (after one warm-up) and the last answer."""
    answer = call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        answer = call()
        best = min(best, time.perf_counter() - started)
    return best, answer


def run(args: argparse.Namespace, gpu: Scorer, card: str) -> dict[str, Any]:
    """Both workloads on both backends; agreement of their answers."""
    rng = np.random.default_rng(5)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    candidates = rng.standard_normal((args.candidates, args.dim), dtype=np.float32)
    own = rng.standard_normal((args.queries, RESCORE_CANDIDATES, args.dim), dtype=np.float32)
    cpu = Scorer(GpuMode.OFF)
    result: dict[str, Any] = {"card": card, "config": vars(args) | {"json": str(args.json)}}
    for label, scorer in (("numpy", cpu), ("cupy", gpu)):
        exact_s, (rows, _) = timed(partial(chunked_top_k, scorer, queries, candidates, args.chunk), 1)
        rescore_s, (each, _) = timed(partial(scorer.top_k_each, queries, own, Metric.COSINE, K), 5)
        result[label] = {
            "exact_s": exact_s,
            "exact_candidates_per_s": args.queries * args.candidates / exact_s,
            "rescore_s": rescore_s,
            "rescore_queries_per_s": args.queries / rescore_s,
            "rows": rows,
            "each": each,
        }
        print(f"{label}: exact {exact_s:.2f}s, re-scoring {rescore_s * 1000:.1f} ms", file=sys.stderr)
    agree = float((result["numpy"].pop("rows") == result["cupy"].pop("rows")).mean())
    agree_each = float((result["numpy"].pop("each") == result["cupy"].pop("each")).mean())
    result["agreement"] = {"exact_ids": agree, "rescore_ids": agree_each}
    return result


def render(result: dict[str, Any]) -> str:
    """A plain-text table of both workloads."""
    config, cpu, gpu = result["config"], result["numpy"], result["cupy"]
    return "\n".join(
        [
            f"GPU scorer on {result['card']}: {config['queries']:,} queries, dim {config['dim']}, k={K}",
            f"{'workload':<44} {'numpy':>10} {'cupy':>10} {'speed-up':>9}",
            f"{'exact top-k over ' + format(config['candidates'], ',') + ' candidates, s':<44} "
            f"{cpu['exact_s']:>10.2f} {gpu['exact_s']:>10.2f} {cpu['exact_s'] / gpu['exact_s']:>8.1f}x",
            f"{'re-scoring ' + str(RESCORE_CANDIDATES) + ' candidates per query, ms':<44} "
            f"{cpu['rescore_s'] * 1000:>10.1f} {gpu['rescore_s'] * 1000:>10.1f} "
            f"{cpu['rescore_s'] / gpu['rescore_s']:>8.1f}x",
            f"ids equal to numpy's: exact {result['agreement']['exact_ids']:.4f}, "
            f"re-scoring {result['agreement']['rescore_ids']:.4f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; exits 2 with a message when no CUDA device is present."""
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000, help="candidates scored per call")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    found = gpu_scorer()
    if found is None:
        print(
            "bench-gpu: no CUDA device (or cupy is not installed), so there is nothing to time. "
            "Run it on a machine with an NVIDIA GPU: pip install -e '.[gpu]' && make bench-gpu",
            file=sys.stderr,
        )
        return 2
    result = run(args, *found)
    print(render(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
