"""SparseVectors against a brute-force dict model: random upserts, deletes and save/load
cycles, then random queries (with filters and IDF weights) must give the same points, the
same order and the same scores (to 1e-5), the same statistics and the same digest."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vecstore.cluster.ids import PointId, point_id_sort_key
from vecstore.shard.sparse import SparseVectors, idf_weights

point_ids = st.one_of(
    st.integers(0, 30),
    st.sampled_from([f"00000000-0000-0000-0000-0000000000{n:02x}" for n in range(5)]),
)
term = st.integers(0, 25) | st.sampled_from([2**32 - 1, 2**31])
# values on a 1/16 grid: float32-exact, so the model's arithmetic matches the index's
value = st.integers(-32, 32).map(lambda n: n / 16)
vector = st.dictionaries(term, value, max_size=6)
query = st.dictionaries(term, st.integers(1, 32).map(lambda n: n / 16), max_size=5)


def pair(entries: dict[int, float]) -> tuple[list[int], list[float]]:
    return list(entries), list(entries.values())


class SparseVsBrute(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.space = SparseVectors()
        self.model: dict[PointId, dict[int, float]] = {}
        self.folder = Path(tempfile.mkdtemp(prefix="sparse-prop-"))
        self.saves = 0

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(batch=st.lists(st.tuples(point_ids, vector), max_size=8))
    def upsert(self, batch: list[tuple[PointId, dict[int, float]]]) -> None:
        self.space.upsert([p for p, _ in batch], [pair(v) for _, v in batch])
        for point_id, entries in batch:
            self.model[point_id] = dict(entries)

    @rule(ids=st.lists(point_ids, max_size=6))
    def delete(self, ids: list[PointId]) -> None:
        expected = len({p for p in ids if p in self.model})
        assert self.space.delete(ids) == expected
        for point_id in ids:
            self.model.pop(point_id, None)

    @rule()
    def save_and_load(self) -> None:
        self.saves += 1
        target = self.folder / f"save-{self.saves}"
        self.space.save(target)
        self.space = SparseVectors.load(target)

    def brute(
        self, entries: dict[int, float], limit: int, allowed: set[PointId] | None, weights: dict[int, float]
    ) -> list[tuple[PointId, float]]:
        hits = []
        for point_id, stored in self.model.items():
            if allowed is not None and point_id not in allowed:
                continue
            shared = sorted(i for i in entries if i in stored)
            if shared:
                total = 0.0
                for i in shared:
                    total += entries[i] * weights.get(i, 1.0) * float(np.float32(stored[i]))
                hits.append((point_id, float(np.float32(total))))
        hits.sort(key=lambda hit: (-hit[1], point_id_sort_key(hit[0])))
        return hits[:limit]

    @rule(
        entries=query,
        limit=st.integers(0, 12),
        allowed=st.none() | st.sets(point_ids, max_size=10),
        use_idf=st.booleans(),
    )
    def search(
        self, entries: dict[int, float], limit: int, allowed: set[PointId] | None, use_idf: bool
    ) -> None:
        idf = None
        if use_idf:
            frequencies = [sum(1 for stored in self.model.values() if i in stored) for i in entries]
            assert self.space.document_frequencies(list(entries)) == frequencies
            idf = dict(zip(entries, idf_weights(len(self.model), frequencies), strict=True))
        found = self.space.search(pair(entries), limit, allowed=allowed, idf=idf)
        expected = self.brute(entries, limit, allowed, idf or {})
        assert [p for p, _ in found] == [p for p, _ in expected]
        for (_, got), (_, want) in zip(found, expected, strict=True):
            assert abs(got - want) <= 1e-5 * max(1.0, abs(want))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        point_id = data.draw(st.sampled_from(sorted(self.model, key=point_id_sort_key)))
        stored = self.space.get(point_id)
        assert stored is not None
        assert stored[0].tolist() == sorted(self.model[point_id])
        assert stored[1].tolist() == [self.model[point_id][i] for i in sorted(self.model[point_id])]

    @invariant()
    def same_points_and_digest(self) -> None:
        assert len(self.space) == len(self.model)
        assert self.space.ids() == sorted(self.model, key=point_id_sort_key)
        rebuilt = SparseVectors()
        rebuilt.upsert(list(self.model), [pair(v) for v in self.model.values()])
        assert self.space.digest() == rebuilt.digest()


SparseVsBrute.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_sparse_vs_brute = SparseVsBrute.TestCase
