"""Bounded state: orders are evicted after expire_at; the ledger keeps outputs once-only."""

from __future__ import annotations

from dataclasses import replace

from builders import CLOCK_MS, FAR, RULES, T0, commands, inv, mismatches, of_type, pay, ship

from streams.engine import MemoryStore, PartitionEngine
from streams.engine.partition import pending_work
from streams.model import Status

L = RULES.allowed_lateness
D1 = T0 + RULES.payment_timeout


#: these tests evict as soon as every decision is made (no retention after the last event)
SHORT = replace(RULES, state_retention=0)


def _engine(store: MemoryStore) -> PartitionEngine:
    return PartitionEngine(SHORT, store, lambda: CLOCK_MS)


def test_a_later_event_within_the_retention_is_judged_on_the_whole_history() -> None:
    """A shipment dispatched hours after payment must see the payment: no false
    SHIPPED_WITHOUT_PAYMENT (and HOLD_SHIPMENT) from a history evicted too early."""
    store = MemoryStore()
    engine = PartitionEngine(replace(RULES, state_retention=86_400_000), store,
                             lambda: CLOCK_MS)
    engine.on_event(inv("RESERVED", T0))
    engine.on_event(pay("SUCCEEDED", T0 + 10))
    engine.on_event(inv("CONFIRMED", T0 + 20))
    engine.on_event(ship("CREATED", T0 + 30))
    assert engine.advance_to(T0 + RULES.shipment_timeout + 10 * L) == []
    later = T0 + 6 * 3_600_000
    engine.on_event(ship("DISPATCHED", later))
    assert engine.advance_to(later + RULES.payment_grace + L) == []
    assert store.order_ids() == ["o1"]
    engine.advance_to(later + 86_400_000 + L)
    assert store.order_ids() == []


def test_order_without_mismatches_is_deleted_at_expire_at() -> None:
    store = MemoryStore()
    engine = _engine(store)
    engine.on_event(pay("SUCCEEDED", T0))
    engine.on_event(inv("RESERVED", T0 + 10))
    expire_at = T0 + 10 + RULES.payment_timeout + L  # rule 1's decision is the latest due
    assert engine.advance_to(expire_at - 1) == []
    assert store.order_ids() == ["o1"]
    engine.advance_to(expire_at)
    assert store.order_ids() == [] and store.index_size() == 0


def test_order_with_mismatches_keeps_only_its_ledger() -> None:
    store = MemoryStore()
    engine = _engine(store)
    engine.on_event(inv("RESERVED", T0))
    engine.advance_to(D1 + L)
    state = store.state("o1")
    assert state is not None
    assert (state.history_size(), state.dues, state.expire_at) == (0, [], None)
    assert pending_work(state, RULES, engine.watermark) == []
    [entry] = state.ledger.values()
    assert entry.status is Status.OPEN and entry.frozen
    assert len(state.commands) == 1 and store.index_size() == 0


def test_pending_work_keeps_an_order() -> None:
    store = MemoryStore()
    engine = _engine(store)
    engine.on_event(inv("CONFIRMED", T0))  # PAID_NOT_SHIPPED due after shipment_timeout
    engine.advance_to(T0 + RULES.payment_timeout + L)
    state = store.state("o1")
    assert state is not None and state.history_size() == 1
    assert pending_work(state, RULES, engine.watermark)


def test_redelivery_after_eviction_opens_and_commands_nothing_again() -> None:
    store = MemoryStore()
    engine = _engine(store)
    reserved = inv("RESERVED", T0)
    engine.on_event(reserved)
    first = engine.advance_to(D1 + L)
    assert len(mismatches(first)) == 1 and len(commands(first)) == 1
    assert engine.on_event(reserved) == []  # a fresh history decides RWP again: suppressed
    state = store.state("o1")
    assert state is not None and state.history_size() == 0  # evicted again at once


def test_evicted_mismatches_are_not_re_evaluated() -> None:
    store = MemoryStore()
    engine = _engine(store)
    engine.on_event(inv("RESERVED", T0))
    engine.advance_to(D1 + L)
    # a new event starts a fresh history without r1: RWP must not be resolved by it
    out = engine.on_event(pay("SUCCEEDED", D1 + 5 * L))
    out += engine.advance_to(FAR)
    assert of_type(out, "RESERVATION_WITHOUT_PAYMENT") == []
    assert [m.type.value for m in mismatches(out)] == ["PAYMENT_WITHOUT_RESERVATION"]


def test_store_size_returns_to_the_ledgers() -> None:
    store = MemoryStore()
    engine = _engine(store)
    for n in range(50):
        order = f"o{n}"
        engine.on_event(pay("SUCCEEDED", T0 + n, f"p{n}", order=order))
        if n % 10:
            engine.on_event(inv("RESERVED", T0 + n, f"r{n}", order=order))
    assert len(store.order_ids()) == 50
    engine.advance_to(FAR)
    assert store.order_ids() == [f"o{n}" for n in range(0, 50, 10)]  # the mismatched ones
    assert store.index_size() == 0
    assert all(not s.history_size() for s in map(store.state, store.order_ids()) if s)
