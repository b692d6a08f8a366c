"""PartitionEngine: when decisions are made, late events, rechecks, once-only outputs."""

from __future__ import annotations

from builders import (
    CLOCK_MS,
    FAR,
    RULES,
    T0,
    canonical,
    commands,
    inv,
    mismatches,
    of_type,
    pay,
    placed,
    run_stream,
    ship,
    strip,
)

from streams.engine import MemoryStore, Output, PartitionEngine
from streams.engine.partition import pending_work
from streams.model import Command, Mismatch, Source, Status

D1 = T0 + RULES.payment_timeout


def _engine(store: MemoryStore | None = None, clock_ms: int = CLOCK_MS) -> PartitionEngine:
    return PartitionEngine(RULES, store or MemoryStore(), lambda: clock_ms)


def test_decided_exactly_when_the_watermark_reaches_d() -> None:
    engine = _engine()
    assert engine.on_event(inv("RESERVED", T0)) == []
    assert engine.advance_to(D1 - 1) == []
    out = engine.advance_to(D1)
    assert [type(o) for o in out] == [Mismatch, Command]
    assert isinstance(out[0], Mismatch) and out[0].detected_at == CLOCK_MS
    assert isinstance(out[1], Command) and out[1].issued_at == CLOCK_MS
    assert engine.advance_to(FAR) == []


def test_watermark_moved_by_events_makes_the_decision() -> None:
    engine = _engine()
    engine.set_released(Source.ORDERS, True)
    engine.set_released(Source.SHIPPING, True)
    engine.on_event(inv("RESERVED", T0))
    engine.on_event(pay("FAILED", D1 + RULES.allowed_lateness, "px", order="o2"))
    assert engine.watermark == T0 - RULES.allowed_lateness
    out = engine.on_event(inv("RELEASED", D1 + RULES.allowed_lateness, "rx", order="o3"))
    assert engine.watermark == D1
    assert [m.type.value for m in mismatches(out)] == ["RESERVATION_WITHOUT_PAYMENT"]


def test_event_after_the_decision_resolves_when_the_watermark_passes_it() -> None:
    engine = _engine()
    engine.on_event(inv("RESERVED", T0))
    assert len(engine.advance_to(D1)) == 2
    paid = pay("SUCCEEDED", D1 + 500)
    assert engine.on_event(paid) == []  # not late: decided when the watermark passes it
    assert engine.advance_to(D1 + 499) == []
    [resolved] = engine.advance_to(D1 + 500)
    assert isinstance(resolved, Mismatch) and resolved.status is Status.RESOLVED
    assert (resolved.resolved_at, resolved.resolved_by) == (D1 + 500, paid.event_id)


def test_opening_rechecks_events_already_known_after_d() -> None:
    engine = _engine()
    engine.on_event(inv("RESERVED", T0))
    paid = pay("SUCCEEDED", D1 + 500)
    engine.on_event(paid)  # known before the decision is made
    out = engine.advance_to(FAR)
    assert [(m.status, m.resolved_at) for m in mismatches(out)] == [
        (Status.OPEN, None),
        (Status.RESOLVED, D1 + 500),
    ]


def test_late_event_resolves_an_earlier_decision_at_its_own_time() -> None:
    engine = _engine()
    engine.on_event(inv("RESERVED", T0))
    engine.advance_to(D1 + 100)
    paid = pay("SUCCEEDED", T0 + 5_000)  # late: before D, below the watermark
    [resolved] = engine.on_event(paid)
    assert isinstance(resolved, Mismatch) and resolved.status is Status.RESOLVED
    assert resolved.type.value == "RESERVATION_WITHOUT_PAYMENT"
    assert (resolved.resolved_at, resolved.resolved_by) == (T0 + 5_000, paid.event_id)
    assert resolved.decided_at == D1


def test_late_event_after_decided_at_resolves_at_its_time() -> None:
    engine = _engine()
    engine.on_event(ship("CREATED", T0, items=[]))
    engine.advance_to(T0 + 2_500)  # expiry (T0 + 4_000) not reached yet
    paid = pay("SUCCEEDED", T0 + 2_100)
    out = engine.on_event(paid)
    [resolved] = of_type(out, "SHIPPED_WITHOUT_PAYMENT")
    assert resolved.status is Status.RESOLVED and resolved.resolved_at == T0 + 2_100


def test_late_reserved_resolves_an_empty_rollback() -> None:
    engine = _engine()
    engine.on_event(inv("RELEASED", T0))
    [opened] = engine.advance_to(T0 + RULES.tcc_grace)
    assert isinstance(opened, Mismatch) and opened.type.value == "TCC_EMPTY_ROLLBACK"
    reserved = inv("RESERVED", T0 - 10)
    [resolved] = engine.on_event(reserved)
    assert isinstance(resolved, Mismatch) and resolved.mismatch_id == opened.mismatch_id
    assert (resolved.status, resolved.resolved_by) == (Status.RESOLVED, reserved.event_id)


def test_late_event_decisions_are_made_at_once() -> None:
    engine = _engine()
    engine.on_event(pay("SUCCEEDED", T0, "p1"))
    engine.on_event(inv("RESERVED", T0))
    engine.advance_to(T0 + 100)
    out = engine.on_event(pay("SUCCEEDED", T0 + 50, "p2"))
    [dup] = of_type(out, "DUPLICATE_PAYMENT")
    assert dup.decided_at == T0 + 50 and dup.subject_id == "p2"
    assert [c.target_id for c in commands(out)] == ["p2"]


def test_late_event_does_not_resolve_fixed_facts() -> None:
    engine = _engine()
    engine.on_event(placed(T0, total=100))
    engine.on_event(pay("SUCCEEDED", T0 + 10, amount=200))
    engine.on_event(inv("RESERVED", T0))
    assert len(of_type(engine.advance_to(T0 + 500), "AMOUNT_MISMATCH")) == 1
    # an earlier PLACED with the paid total arrives late: AMOUNT_MISMATCH stays OPEN
    assert engine.on_event(placed(T0 - 10, total=200)) == []


def test_late_event_that_changes_nothing_emits_nothing() -> None:
    engine = _engine()
    engine.on_event(inv("RESERVED", T0))
    engine.advance_to(D1 + 100)
    assert engine.on_event(inv("CONFIRMED", T0 + 10)) == []


def test_redelivery_is_ignored() -> None:
    engine = _engine()
    reserved = inv("RESERVED", T0)
    engine.on_event(reserved)
    assert len(engine.advance_to(D1)) == 2
    assert engine.on_event(reserved) == []
    state = engine.store.state("o1")  # type: ignore[attr-defined]
    assert state is not None and state.history_size() == 1


def test_same_due_outputs_follow_rule_order_and_open_before_command() -> None:
    engine = _engine()
    engine.on_event(placed(T0, total=1))
    engine.on_event(pay("SUCCEEDED", T0, "p1"))
    engine.on_event(pay("SUCCEEDED", T0, "p2"))
    out = engine.advance_to(T0)
    assert [(o.type.value, _target(o)) for o in out] == [
        ("DUPLICATE_PAYMENT", "p2"),
        ("REFUND_PAYMENT", "p2"),
        ("AMOUNT_MISMATCH", "p1"),
        ("AMOUNT_MISMATCH", "p2"),
    ]


def test_index_has_one_entry_per_due_and_order() -> None:
    store = MemoryStore()
    engine = _engine(store)
    engine.on_event(pay("SUCCEEDED", T0, "p1"))
    engine.on_event(pay("SUCCEEDED", T0, "p2"))
    # dues: T0 (rule 5 twice), T0 + reservation_timeout (rule 2 twice), expiry
    state = store.state("o1")
    assert state is not None
    expire = T0 + RULES.reservation_timeout + RULES.allowed_lateness
    assert sorted(state.dues) == [T0, T0 + RULES.reservation_timeout, expire]
    assert store.index_size() == 3
    assert len(pending_work(state, RULES, engine.watermark)) == 4  # rules 2 and 5, twice


def test_restart_on_the_same_store_changes_nothing() -> None:
    events = [
        inv("RESERVED", T0),
        pay("SUCCEEDED", T0 + 100, "p1"),
        pay("SUCCEEDED", T0 + 200, "p2"),
        ship("CREATED", T0 + 300, items=[("A", 3)]),
        pay("REFUNDED", T0 + 4_000, "p2"),
        inv("RELEASED", T0 + 9_000),
    ]
    whole = run_stream(events, until=FAR)
    store = MemoryStore()
    out: list[Output] = []
    for event in events:
        out += _engine(store).on_event(event)  # a new engine (process) for every event
        out += _engine(store).advance_to(event.event_time - 50)
    for source in Source:
        out += _engine(store).set_idle(source, True)
    out += _engine(store).advance_to(FAR)
    assert canonical(out) == canonical(whole)
    assert [(m.type.value, m.status.value) for m in mismatches(whole)] == [
        ("DUPLICATE_PAYMENT", "OPEN"),
        ("OVERSHIPMENT", "OPEN"),
        ("DUPLICATE_PAYMENT", "RESOLVED"),
    ]


def test_wall_clock_only_sets_detected_and_issued_at() -> None:
    events = [inv("RESERVED", T0), pay("SUCCEEDED", D1 + 1)]
    outs = []
    for clock_ms in (1, 10**12):
        engine = _engine(clock_ms=clock_ms)
        out: list[Output] = []
        for event in events:
            out += engine.on_event(event)
        out += engine.advance_to(FAR)
        assert {getattr(o, "detected_at", None) or getattr(o, "issued_at", None) for o in out} == {
            clock_ms
        }
        outs.append(strip(out))
    assert outs[0] == outs[1] and len(outs[0]) == 3


def test_events_of_other_orders_do_not_interfere() -> None:
    reserved = inv("RESERVED", T0)
    alone = run_stream([reserved], until=FAR)
    mixed = run_stream(
        [
            reserved,
            pay("SUCCEEDED", T0 + 10, order="o2"),
            inv("RESERVED", T0 + 10, order="o2", reservation="r2"),
        ],
        until=FAR,
    )
    assert canonical(m for m in mixed if isinstance(m, Mismatch) and m.order_id == "o1") == (
        canonical(mismatches(alone))
    )
    assert all(m.order_id == "o1" for m in mismatches(mixed))


def _target(output: Output) -> str:
    return output.subject_id if isinstance(output, Mismatch) else output.target_id
