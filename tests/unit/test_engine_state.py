"""Engine state: msgpack round-trips and the MemoryStore's due index."""

from __future__ import annotations

import msgspec
from builders import CLOCK_MS, RULES, T0, inv, pay, placed, ship

from streams.engine import (
    MemoryStore,
    OrderState,
    PartitionEngine,
    PartitionMeta,
    StateStore,
    decode_meta,
    decode_order,
    encode_meta,
    encode_order,
)
from streams.engine.state import ORDER_FORMAT, LedgerEntry, OrderStateV1, PendingV1
from streams.model import MismatchType, Severity, Source, Status


def _busy_state() -> OrderState:
    store = MemoryStore()
    engine = PartitionEngine(RULES, store, lambda: CLOCK_MS)
    for event in (
        placed(T0, total=1),
        pay("SUCCEEDED", T0),
        inv("RESERVED", T0),
        ship("CREATED", T0, items=[("A", 2), ("B", 1)]),
        pay("SUCCEEDED", T0 + 1, "p2"),
    ):
        engine.on_event(event)
    engine.advance_to(T0 + 2_500)
    state = store.state("o1")
    assert state is not None
    return state


def test_order_state_round_trips() -> None:
    state = _busy_state()
    assert state.orders and state.payments and state.reservations and state.shipments
    assert state.ledger and state.commands and state.dues
    data = encode_order(state)
    assert isinstance(data, bytes)
    assert msgspec.msgpack.decode(data)[0] == ORDER_FORMAT == 2  # an array led by the format
    assert decode_order(data) == state
    assert encode_order(decode_order(data)) == data
    assert decode_order(data).shipments["s1"][0].items == state.shipments["s1"][0].items


def test_format_1_is_upgraded_on_read() -> None:
    events = [pay("REFUNDED", T0 + 5), placed(T0, total=1), pay("SUCCEEDED", T0),
              inv("CONFIRMED", T0 + 1), inv("RESERVED", T0 + 1, eid="r-early")]
    entry = LedgerEntry("m", MismatchType.AMOUNT_MISMATCH, 6, "p1", "p1", Severity.HIGH, T0, T0,
                        ("e",), {}, None)
    old = OrderStateV1("o1", events=events, pending=[PendingV1(T0 + 9, 0, 8, "p1")],
                       dues=[T0 + 9], expire_at=T0 + 99, ledger={"m": entry}, commands=["c"])
    data = msgspec.msgpack.encode(old)
    assert data[0] & 0xF0 == 0x80  # format 1 was a msgpack map
    state = decode_order(data)
    assert [s.event_id for s in state.payments["p1"]] == [events[2].event_id, events[0].event_id]
    assert [s.event_id for s in state.reservations["r1"]] == ["r-early", events[3].event_id]
    assert [s.event_id for s in state.orders] == [events[1].event_id]
    assert (state.dues, state.expire_at, state.ledger, state.commands) == (
        [T0 + 9], T0 + 99, {"m": entry}, ["c"])
    assert decode_order(encode_order(state)) == state


def test_ledger_entry_round_trips() -> None:
    entry = LedgerEntry(
        "m",
        MismatchType.TCC_HANGING,
        10,
        "r1",
        "r1",
        Severity.MEDIUM,
        T0,
        T0,
        ("e1", "e2"),
        {"k": "v"},
        "c",
        Status.RESOLVED,
        T0 + 1,
        "e3",
        True,
    )
    state = OrderState("o1", ledger={"m": entry}, commands=["c"])
    assert decode_order(encode_order(state)) == state


def test_meta_round_trips() -> None:
    meta = PartitionMeta(max_time={"payments": T0}, idle=["orders"], watermark=T0 - 5)
    assert decode_meta(encode_meta(meta)) == meta
    assert decode_meta(encode_meta(PartitionMeta())) == PartitionMeta()


def test_memory_store_is_a_state_store_with_an_ordered_index() -> None:
    store: StateStore = MemoryStore()
    store.add_due(20, "b")
    store.add_due(10, "z")
    store.add_due(20, "a")
    store.add_due(20, "a")
    store.add_due(30, "a")
    assert store.pop_due(5) == []
    assert store.pop_due(20) == [(10, "z"), (20, "a"), (20, "b")]
    assert store.pop_due(100) == [(30, "a")]
    assert store.pop_due(100) == []


def test_memory_store_keeps_copies() -> None:
    store = MemoryStore()
    state = OrderState("o1", dues=[1])
    store.put_order("o1", state)
    state.dues.append(2)  # mutating after put does not change what is stored
    stored = store.state("o1")
    assert stored is not None and stored.dues == [1]
    store.delete_order("o1")
    store.delete_order("o1")
    assert store.get_order("o1") is None and store.get_meta() is None
    store.put_meta(PartitionMeta(watermark=3))
    meta = store.get_meta()
    assert meta is not None and meta.watermark == 3


def test_engine_meta_lives_in_the_store() -> None:
    store = MemoryStore()
    PartitionEngine(RULES, store, lambda: 0).set_idle(Source.ORDERS, True)
    assert PartitionEngine(RULES, store, lambda: 0).watermark is None
    meta = store.get_meta()
    assert meta is not None and meta.idle == ["orders"]
