"""Held commands: issued once the inputs their rule reads confirm D, dropped if refuted."""

from __future__ import annotations

from dataclasses import replace

from builders import CLOCK_MS, T0, canonical, commands, inv, mismatches, pay, ship
from builders import RULES as EVICTING
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_streaming_equals_batch import streams_of_events

from streams.batch import evaluate
from streams.engine import MemoryStore, Output, PartitionEngine
from streams.engine.confirming import Confirming
from streams.engine.held import confirmed_until, is_confirmed
from streams.model import Event, Source, Status

#: the builders' rules, with histories kept (late input must find the order's events)
RULES = replace(EVICTING, state_retention=10**9)
L = RULES.allowed_lateness
D2 = T0 + RULES.reservation_timeout  # PAYMENT_WITHOUT_RESERVATION of a payment at T0


def _confirming(store: MemoryStore | None = None) -> Confirming:
    store = store or MemoryStore()
    return Confirming(PartitionEngine(RULES, store, lambda: CLOCK_MS), RULES, store,
                      lambda: CLOCK_MS)


def _feed(c: Confirming, *events: Event) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += c.settle(c.engine.on_event(event))
    return out


def _stock(t: int, order: str) -> list[Event]:
    """Inventory events of another order that open nothing: progress of inventory to t."""
    return [inv("RESERVED", t - 1, f"r-{order}", order=order),
            inv("RELEASED", t, f"r-{order}", order=order)]


def _later(t: int, order: str) -> list[Event]:
    """Payments and inventory of another order that open nothing, at t."""
    return [*_stock(t, order), pay("FAILED", t, f"p-{order}", order=order)]


def _all_quiet(c: Confirming) -> list[Output]:
    out: list[Output] = []
    for source in Source:
        out += c.settle(c.engine.set_idle(source, True))
    return out


def test_confirmed_until_is_the_slowest_input_read_minus_lateness() -> None:
    progress = {"payments": T0 + 500, "inventory": T0 + 200}
    assert confirmed_until(progress, frozenset({Source.PAYMENTS}), L) == T0 + 500 - L
    reads = frozenset({Source.PAYMENTS, Source.INVENTORY})
    assert confirmed_until(progress, reads, L) == T0 + 200 - L
    assert confirmed_until(progress, reads | {Source.SHIPPING}, L) is None
    assert is_confirmed(progress, 5, T0 + 500 - L, L)  # DUPLICATE_PAYMENT reads payments
    assert not is_confirmed(progress, 2, T0 + 500 - L, L)  # ... PWR payments and inventory


def test_a_decision_on_quiet_input_is_emitted_but_its_command_is_held() -> None:
    """The end of the traffic decides PAYMENT_WITHOUT_RESERVATION with inventory far behind:
    the mismatch goes out, the refund waits for inventory to pass D."""
    c = _confirming()
    out = _feed(c, pay("SUCCEEDED", T0), *_stock(T0 - 50_000, "o2"),
                ship("CANCELLED", T0 + 10 * L, order="o3"))
    out += _all_quiet(c)
    assert [m.type for m in mismatches(out)] == ["PAYMENT_WITHOUT_RESERVATION"]
    assert commands(out) == [] and len(c.held) == 1
    [row] = c.held.describe()
    assert (row["type"], row["decided_at"], row["waits_for"]) == (
        "REFUND_PAYMENT", D2, ["inventory", "payments"])
    out = _feed(c, pay("FAILED", D2 + L, "px", order="o5"))  # payments alone: not enough
    assert commands(out) == []
    # inventory moves to D + lateness with nothing for o1: the refund goes out
    out = _feed(c, *_stock(D2 + L, "o4"))
    assert [(x.type, x.target_id) for x in commands(out)] == [("REFUND_PAYMENT", "p1")]
    assert len(c.held) == 0 and c.held.released == 1


def test_a_held_command_is_dropped_when_late_input_proves_the_decision_wrong() -> None:
    c = _confirming()
    out = _feed(c, pay("SUCCEEDED", T0), *_stock(T0 - 50_000, "o2"),
                ship("CANCELLED", T0 + 10 * L, order="o3"))
    out += _all_quiet(c)
    [opened] = mismatches(out)
    # inventory's backlog: the reservation was there before D all along
    out = _feed(c, inv("RESERVED", T0 + 100), *_later(D2 + 2 * L, "o4"))
    assert commands(out) == []
    [resolved] = mismatches(out, Status.RESOLVED)
    assert resolved.mismatch_id == opened.mismatch_id
    assert len(c.held) == 0 and c.held.dropped == 1
    state = c.store.state("o1")  # type: ignore[attr-defined]
    assert state is not None and opened.command_id not in state.commands


def test_held_commands_survive_a_restart() -> None:
    store = MemoryStore()
    c = _confirming(store)
    _feed(c, pay("SUCCEEDED", T0), *_stock(T0 - 50_000, "o2"),
          ship("CANCELLED", T0 + 10 * L, order="o3"))
    _all_quiet(c)
    assert len(c.held) == 1
    again = _confirming(store)  # a new process over the same state
    assert len(again.held) == 1
    out = _feed(again, *_later(D2 + L, "o4"))
    assert [x.type for x in commands(out)] == ["REFUND_PAYMENT"]


def test_a_later_confirmed_claim_issues_the_held_command_once() -> None:
    """DUPLICATE_PAYMENT (reads payments) and PAYMENT_WITHOUT_RESERVATION (payments and
    inventory) both refund p2: both decisions are made at the end of the traffic, the
    duplicate's refund is confirmed by payments alone and goes out with the duplicate's
    mismatch, once; p1's refund (no reservation) waits for inventory."""
    c = _confirming()
    out = _feed(c, *_stock(T0 - 50_000, "o2"), ship("CANCELLED", T0 + 10 * L, order="o3"),
                pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 10, "p2"))
    out += _all_quiet(c)
    dup = [m for m in mismatches(out) if m.type == "DUPLICATE_PAYMENT"]
    assert len(dup) == 1 and commands(out) == []
    assert sorted(r["target_id"] for r in c.held.describe()) == ["p1", "p2"]
    out = _feed(c, pay("FAILED", D2 + 10 * L, "px", order="o5"))
    [refund] = commands(out)
    assert (refund.target_id, refund.mismatch_id) == ("p2", dup[0].mismatch_id)
    out = _feed(c, *_later(D2 + 11 * L, "o4"))
    assert [x.target_id for x in commands(out)] == ["p1"]
    assert len(c.held) == 0


@st.composite
def stalled_arrivals(draw: st.DrawFn) -> tuple[list[Event], list[Event], Source, int]:
    """Traffic, one input held back (stalled) for part of it: the events of the others
    arrive in time order up to a point, then the stalled input is released, the rest of
    the others arrive, then its backlog, then everything else."""
    events, arrival = draw(streams_of_events())
    stalled = draw(st.sampled_from([Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING]))
    cut = draw(st.integers(0, len(arrival)))
    return events, arrival, stalled, cut


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stalled_arrivals())
def test_a_stalled_input_never_causes_a_command_the_complete_data_lacks(
        data: tuple[list[Event], list[Event], Source, int]) -> None:
    _, arrival, stalled, cut = data
    c = _confirming()
    held_back = [e for e in arrival if e.source is stalled]
    others = [e for e in arrival if e.source is not stalled]
    # the stalled input's first events arrive, then it stops
    early = held_back[:len(held_back) * cut // max(len(arrival), 1)]
    out: list[Output] = []
    out += _feed(c, *early)
    out += c.settle(c.engine.set_released(stalled, True))
    out += _feed(c, *others)
    out += _feed(c, *held_back[len(early):])
    out += _all_quiet(c)
    expected = evaluate(arrival, RULES, clock=lambda: CLOCK_MS)
    want = {x.command_id for x in commands(expected)}
    got = [x.command_id for x in commands(out)]
    assert len(got) == len(set(got))  # each command once
    assert set(got) == want  # none the complete data lacks, and after the backlog, all
    opened = [m.mismatch_id for m in mismatches(out, Status.OPEN)]
    assert len(opened) == len(set(opened))
    assert {m.mismatch_id for m in mismatches(expected, Status.OPEN)} <= set(opened)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams_of_events())
def test_in_order_traffic_holds_nothing_it_would_not_hold_in_batch(
        data: tuple[list[Event], list[Event]]) -> None:
    """Without an excused input, a command goes out with its decision: streaming equals
    batch, the held commands at the end included."""
    _, arrival = data
    c = _confirming()
    out = _feed(c, *arrival) + _all_quiet(c)
    expected = evaluate(arrival, RULES, clock=lambda: CLOCK_MS)
    assert canonical(out) == canonical(expected)
