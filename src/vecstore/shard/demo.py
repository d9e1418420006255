"""`make demo`: the shard core end to end on the embedded local default.

Creates a collection, loads clustered vectors with payloads, runs plain and filtered
searches (with the planner's explanation), deletes by filter, then snapshots to one
file and restores it into a fresh shard that must answer identically.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vecstore.cluster.commands import CreateCollection, DeletePoints, Selector, Upsert
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.schema import CollectionSchema, Metric
from vecstore.shard.settings import ShardSettings
from vecstore.shard.state import Shard

COLORS = ("red", "green", "blue", "yellow")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000, help="vectors to load")
    parser.add_argument("--dim", type=int, default=64, help="vector dimension")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(32, args.dim)).astype(np.float32)
    labels = rng.integers(0, len(centres), size=args.points)
    vectors = centres[labels] + 0.3 * rng.normal(size=(args.points, args.dim)).astype(np.float32)

    with tempfile.TemporaryDirectory(prefix="vecstore-demo-") as scratch:
        root = Path(scratch)
        shard = Shard(ShardSettings(data_dir=root / "shard", seal_threshold=args.points // 2))
        shard.apply(CreateCollection(CollectionSchema("demo", args.dim, Metric.COSINE)))
        started = time.perf_counter()
        batch = 1_000
        for start in tqdm(range(0, args.points, batch), desc="upsert", unit="batch"):
            stop = min(start + batch, args.points)
            payloads = [
                {"color": COLORS[i % len(COLORS)], "price": int(i % 100), "tags": [f"c{labels[i]}"]}
                for i in range(start, stop)
            ]
            shard.apply(Upsert.build("demo", list(range(start, stop)), vectors[start:stop], payloads))
        shard.wait_indexed()
        elapsed = time.perf_counter() - started
        print(f"loaded {args.points} points in {elapsed:.1f}s ({args.points / elapsed:,.0f}/s)")
        print("status:", shard.status()["collections"]["demo"])

        query = vectors[:1]
        print("\nnearest to point 0:")
        for hit in shard.search("demo", query, 5)[0]:
            print(f"  id={hit.id:<6} score={hit.score:.4f} payload={hit.payload}")

        selective = parse_filter(
            {"must": [{"key": "color", "match": {"value": "red"}}, {"key": "price", "range": {"lt": 4}}]}
        )
        broad = parse_filter({"must_not": [{"key": "color", "match": {"value": "red"}}]})
        for name, condition in (("selective", selective), ("broad", broad)):
            plan = shard.explain("demo", 5, condition)
            hits = shard.search("demo", query, 5, condition)[0]
            print(f"\n{name} filter -> plan {plan.kind}: {plan.reason}")
            for hit in hits:
                print(f"  id={hit.id:<6} score={hit.score:.4f} payload={hit.payload}")

        deleted = shard.apply(DeletePoints("demo", Selector.of_filter(broad)))
        print(f"\ndeleted by filter: {deleted['deleted']}; remaining {shard.count('demo')}")

        snapshot_file = root / "demo.snapshot"
        shard.snapshot_to_file(snapshot_file)
        restored = Shard(ShardSettings(data_dir=root / "restored"))
        restored.restore_from_file(snapshot_file)
        same_digest = restored.digest() == shard.digest()
        before = [h.id for h in shard.search("demo", query, 10, exact=True)[0]]
        after = [h.id for h in restored.search("demo", query, 10, exact=True)[0]]
        size_mib = snapshot_file.stat().st_size / 2**20
        print(f"\nsnapshot {size_mib:.1f} MiB; restored digest equal: {same_digest}; ")
        print(f"same top-10 after restore: {before == after}")
        shard.close()
        restored.close()
        return 0 if same_digest and before == after else 1


if __name__ == "__main__":
    raise SystemExit(main())
