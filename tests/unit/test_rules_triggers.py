"""Decisions and triggers: ``triggers`` against its definition, ``trigger_of`` against both."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.config import RuleConfig
from streams.model import LIFECYCLE, Event, Item, Source, Step
from streams.rules.entities import ACTIVE_RESERVATION, OrderView, dedup, trigger_key
from streams.rules.triggers import (
    FOREVER,
    Decision,
    derive_decisions,
    due_between,
    new_decisions,
    trigger_of,
    triggers,
)

RULES = RuleConfig(payment_timeout=40, reservation_timeout=20, shipment_timeout=60,
                   payment_grace=10, release_timeout=30, tcc_grace=5)
TYPES = {
    Source.ORDERS: ["PLACED", "CANCELLED"],
    Source.PAYMENTS: ["SUCCEEDED", "FAILED", "REFUNDED"],
    Source.INVENTORY: ["RESERVED", "CONFIRMED", "RELEASED"],
    Source.SHIPPING: ["CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"],
}
ORD, PAY, INV, SHIP = Source.ORDERS, Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING


def by_definition(view: OrderView, rules: RuleConfig, at: int) -> dict[Decision, Step]:
    """Every decision up to ``at``: each candidate trigger compared with the kept one."""
    found: dict[Decision, Step] = {}

    def add(rule: int, key: str, due: int, step: Step) -> None:
        decision = Decision(due, rule, key)
        current = found.get(decision)
        if current is None or trigger_key(step) < trigger_key(current):
            found[decision] = step

    for reservation in view.entity_ids(INV):
        first = view.first(INV, reservation, ACTIVE_RESERVATION, at)
        if first is not None:
            add(1, reservation, first.event_time + rules.payment_timeout, first)
    placed, cancelled = view.placed(at), view.cancelled(at)
    for kind, rule, delay in (("CANCELLED", 13, rules.release_timeout),
                              ("PAID", 15, rules.payment_grace)):
        steps = [s for s in view.history(ORD, view.order_id, at)
                 if LIFECYCLE[ORD][s.rank] == kind]
        if steps:
            first = min(steps, key=trigger_key)
            add(rule, view.order_id, first.event_time + delay, first)
    for source in (PAY, INV, SHIP):
        for entity in view.entity_ids(source):
            for e in view.log(source, entity):
                t, kind = e.event_time, LIFECYCLE[source][e.rank]
                if t > at:
                    continue
                if source is PAY and kind == "SUCCEEDED":
                    add(2, entity, t + rules.reservation_timeout, e)
                    add(5, entity, t, e)
                    if placed is not None:
                        add(6, entity, max(t, placed.event_time), e)
                        add(11, entity, max(t, placed.event_time) + rules.callback_timeout, e)
                    if cancelled is not None:
                        add(12, entity, max(t, cancelled.event_time) + rules.release_timeout, e)
                elif source is PAY and kind == "REFUNDED":
                    add(8, entity, t + rules.release_timeout, e)
                elif source is INV and kind == "CONFIRMED":
                    add(3, entity, t + rules.shipment_timeout, e)
                elif source is INV and kind == "RELEASED":
                    add(9, entity, t + rules.tcc_grace, e)
                elif source is INV and kind == "RESERVED":
                    add(10, entity, t, e)
                elif source is SHIP and kind in ("CREATED", "DISPATCHED"):
                    add(4, entity, t + rules.payment_grace, e)
                    if cancelled is not None:
                        add(14, entity, max(t, cancelled.event_time) + rules.payment_grace, e)
                    if kind == "CREATED":
                        add(7, entity, t + rules.tcc_grace, e)
    return {d: ev for d, ev in found.items() if d.due <= at}


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    """One order's events: few entities, coarse times (many ties), some repeated ids."""
    result: list[Event] = []
    for n in range(draw(st.integers(0, 10))):
        source = draw(st.sampled_from(list(Source)))
        kind = draw(st.sampled_from(TYPES[source]))
        t = draw(st.integers(0, 12)) * 5
        entity = "o" if source is Source.ORDERS else draw(st.sampled_from(["a", "b"]))
        eid = f"e{draw(st.integers(0, n))}"  # a repeated id: deduplicated by the view
        result.append(Event(source, eid, "o", kind, t, entity, amount=100, currency="CNY",
                            sku="A", quantity=1, items=(Item("A", 1),), total_amount=100))
    return result


@settings(max_examples=400, deadline=None)
@given(events(), st.integers(0, 130))
def test_triggers_and_trigger_of_agree_with_the_definition(evs: list[Event], at: int) -> None:
    view = OrderView("o", evs)
    assert triggers(view, RULES, at) == by_definition(view, RULES, at)
    everything = by_definition(view, RULES, FOREVER)
    for decision in everything:
        assert trigger_of(view, RULES, decision) == by_definition(
            view, RULES, decision.due).get(decision)
        for due in (decision.due - 5, decision.due + 5):  # a decision not called for (or is)
            other = decision._replace(due=due)
            assert trigger_of(view, RULES, other) == by_definition(view, RULES, due).get(other)
    assert trigger_of(view, RULES, Decision(at, 1, "a")) == by_definition(
        view, RULES, at).get(Decision(at, 1, "a"))


@settings(max_examples=1500, deadline=None)
@given(events(), st.data())
def test_new_decisions_are_what_the_event_adds_to_the_derivation(
        evs: list[Event], data: st.DataObject) -> None:
    history = dedup(evs)
    if not history:
        return
    at = data.draw(st.integers(0, len(history) - 1))
    event = history.pop(at)  # the event that arrives after the others (any position in time)
    before = derive_decisions(history, RULES)
    view = OrderView("o", [*history, event])
    expected = sorted(derive_decisions(view, RULES) - before)
    assert new_decisions(view, event, RULES) == expected


@settings(max_examples=400, deadline=None)
@given(events(), st.integers(-10, 130), st.integers(0, 130))
def test_due_between_is_the_derivation_within_the_span(evs: list[Event], low: int,
                                                       high: int) -> None:
    view = OrderView("o", evs)
    everything = derive_decisions(view, RULES)
    assert due_between(view, RULES, low, high) == sorted(
        d for d in everything if low < d.due <= high)
    assert due_between(view, RULES, None, high) == sorted(d for d in everything if d.due <= high)
