"""Committable offsets: only the prefix of batches whose every part finished."""

from __future__ import annotations

from vecstore.ingest.ledger import OffsetLedger


def test_offsets_are_released_in_batch_order_only() -> None:
    ledger = OffsetLedger()
    first = ledger.open({("t", 0): 10, ("t", 1): 5}, {"s0", "s1"}, records=15, opened_at=0.0)
    second = ledger.open({("t", 0): 20}, {"s0"}, records=10, opened_at=1.0)
    assert ledger.in_flight_records == 25
    ledger.finish(second, "s0")
    assert ledger.release().offsets == {}  # the first batch still waits for s1
    ledger.finish(first, "s0")
    assert ledger.release().offsets == {}
    ledger.finish(first, "s1")
    released = ledger.release()
    assert released.offsets == {("t", 0): 20, ("t", 1): 5}
    assert [b.batch_id for b in released.batches] == [first, second]
    assert ledger.safe == {("t", 0): 20, ("t", 1): 5}
    assert ledger.in_flight_records == 0
    assert len(ledger) == 0


def test_abandoned_batches_never_release_and_late_acks_are_ignored() -> None:
    ledger = OffsetLedger()
    batch = ledger.open({("t", 0): 10}, {"s0"}, records=3, opened_at=0.0)
    assert ledger.abandon() == 1
    ledger.finish(batch, "s0")
    assert ledger.release().offsets == {}
    assert ledger.safe == {}
    assert ledger.in_flight_records == 0


def test_safe_offsets_never_move_backwards_and_can_be_forgotten() -> None:
    ledger = OffsetLedger()
    ledger.safe[("t", 0)] = 50
    batch = ledger.open({("t", 0): 30, ("t", 1): 7}, set(), records=1, opened_at=0.0)
    assert batch == 0
    assert ledger.release().offsets == {("t", 1): 7}
    assert ledger.safe == {("t", 0): 50, ("t", 1): 7}
    ledger.forget([("t", 0)])
    assert ledger.safe == {("t", 1): 7}
