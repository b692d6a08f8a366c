"""Decisions and their trigger events: what an order's events call for, and when.

A **decision** is ``Decision(due, rule, key)``: rule number 1..10 (contract order), its
decision time D and its key (see ``catalog``). ``triggers`` derives every decision of an
order with its trigger event; ``trigger_of`` finds the trigger of one decision, looking at
its entity's events only (what ``decide`` needs, per decision, on the engine's hot path).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from streams.config import RuleConfig
from streams.model import Event, Source
from streams.rules.entities import ACTIVE_RESERVATION, OrderView, trigger_key

FOREVER = 2**62  # "no upper bound" for event-time queries

PAY, INV, SHIP = Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING


class Decision(NamedTuple):
    """One decision to make: at ``due`` (event time D), rule ``rule`` for ``key``."""

    due: int
    rule: int
    key: str


def triggers(view: OrderView, rules: RuleConfig, at: int) -> dict[Decision, Event]:
    """Every decision derivable from the events up to ``at``, with its trigger event.

    When several events trigger the same decision, the first by (event_time, event_id) is
    the trigger (it leads the evidence). ``view.events`` are in that order (event_ids are
    distinct), so the first event to call for a decision is its trigger.
    """
    found: dict[Decision, Event] = {}
    payment_timeout = rules.payment_timeout
    for reservation in view.entity_ids(INV):
        first = view.first(INV, reservation, ACTIVE_RESERVATION, at)
        if first is not None:
            found[Decision(first.event_time + payment_timeout, 1, reservation)] = first
    placed = view.placed(at)
    keep = found.setdefault
    for e in view.events:
        t = e.event_time
        if t > at:
            break
        source, kind = e.source, e.type
        if source is PAY:
            if kind == "SUCCEEDED":
                entity = e.entity_id
                keep(Decision(t + rules.reservation_timeout, 2, entity), e)
                keep(Decision(t, 5, entity), e)
                if placed is not None:
                    keep(Decision(max(t, placed.event_time), 6, entity), e)
            elif kind == "REFUNDED":
                keep(Decision(t + rules.release_timeout, 8, e.entity_id), e)
        elif source is INV:
            if kind == "CONFIRMED":
                keep(Decision(t + rules.shipment_timeout, 3, e.entity_id), e)
            elif kind == "RELEASED":
                keep(Decision(t + rules.tcc_grace, 9, e.entity_id), e)
            elif kind == "RESERVED":
                keep(Decision(t, 10, e.entity_id), e)
        elif source is SHIP and kind in ("CREATED", "DISPATCHED"):
            keep(Decision(t + rules.payment_grace, 4, e.entity_id), e)
            if kind == "CREATED":
                keep(Decision(t + rules.tcc_grace, 7, e.entity_id), e)
    return {d: ev for d, ev in found.items() if d.due <= at}


#: rule -> the source and event types of its trigger events (every rule but 1, whose
#: trigger is the first active event of a reservation)
_TRIGGERED_BY: dict[int, tuple[Source, frozenset[str]]] = {
    2: (PAY, frozenset({"SUCCEEDED"})),
    3: (INV, frozenset({"CONFIRMED"})),
    4: (SHIP, frozenset({"CREATED", "DISPATCHED"})),
    5: (PAY, frozenset({"SUCCEEDED"})),
    6: (PAY, frozenset({"SUCCEEDED"})),
    7: (SHIP, frozenset({"CREATED"})),
    8: (PAY, frozenset({"REFUNDED"})),
    9: (INV, frozenset({"RELEASED"})),
    10: (INV, frozenset({"RESERVED"})),
}


def _delay(rule: int, rules: RuleConfig) -> int:
    """Decision time minus trigger time of the rules other than 1 and 6."""
    if rule == 2:
        return rules.reservation_timeout
    if rule == 3:
        return rules.shipment_timeout
    if rule == 4:
        return rules.payment_grace
    if rule in (7, 9):
        return rules.tcc_grace
    if rule == 8:
        return rules.release_timeout
    return 0  # rules 5 and 10


def trigger_of(view: OrderView, rules: RuleConfig, decision: Decision) -> Event | None:
    """The trigger of a decision as of its time D, None if the events up to D do not call
    for it: ``triggers(view, rules, decision.due).get(decision)``, from the events of the
    decision's entity (its key) only."""
    at, rule, key = decision
    if rule == 1:
        first = view.first(INV, key, ACTIVE_RESERVATION, at)
        if first is not None and first.event_time + rules.payment_timeout == at:
            return first
        return None
    source, types = _TRIGGERED_BY[rule]
    if rule == 6:
        placed = view.placed(at)
        if placed is None:
            return None
        floor = placed.event_time  # D = max(t, placed time)
        matches = [e for e in view.history(source, key, at)
                   if e.type in types and max(e.event_time, floor) == at]
    else:
        delay = _delay(rule, rules)
        matches = [e for e in view.history(source, key, at)
                   if e.type in types and e.event_time + delay == at]
    return min(matches, key=trigger_key) if matches else None


def _same_time(others: list[Event], types: frozenset[str], t: int) -> bool:
    """Whether one of ``others`` of ``types`` has event time ``t``."""
    return any(e.event_time == t and e.type in types for e in others)


_SUCCEEDED = frozenset({"SUCCEEDED"})
_REFUNDED = frozenset({"REFUNDED"})
_CONFIRMED = frozenset({"CONFIRMED"})
_RELEASED = frozenset({"RELEASED"})
_RESERVED = frozenset({"RESERVED"})
_SHIPPED_OR_CREATED = frozenset({"CREATED", "DISPATCHED"})
_CREATED = frozenset({"CREATED"})
_PLACED = frozenset({"PLACED"})


def new_decisions(view: OrderView, event: Event, rules: RuleConfig) -> list[Decision]:
    """``derive_decisions(view) - derive_decisions(view without event)``, sorted, from the
    few decisions ``event`` can add (the engine's hot path: no second derivation).

    ``view`` holds ``event`` (and no other event with its event_id). A decision is new when
    no other event calls for it: for the rules triggered by one event (2-5, 7-10), no other
    event of the entity with a trigger type at the same event time; for rule 1, the event
    became its reservation's first active event at another time than the previous first;
    for rule 6, a SUCCEEDED payment (D = max(its time, PLACED time)) or a PLACED that became
    the order's first PLACED, which moves every payment's D.
    """
    eid, source, kind, t = event.event_id, event.source, event.type, event.event_time
    entity = event.entity_id
    found: list[Decision] = []

    def others(src: Source, key: str) -> list[Event]:
        return [e for e in view.history(src, key, FOREVER) if e.event_id != eid]

    if source is PAY:
        rest = others(PAY, entity)
        if kind == "SUCCEEDED":
            if not _same_time(rest, _SUCCEEDED, t):
                found += [Decision(t + rules.reservation_timeout, 2, entity),
                          Decision(t, 5, entity)]
            placed = view.placed(FOREVER)
            if placed is not None:
                floor = placed.event_time
                due = max(t, floor)
                if not any(e.type == "SUCCEEDED" and max(e.event_time, floor) == due
                           for e in rest):
                    found.append(Decision(due, 6, entity))
        elif kind == "REFUNDED" and not _same_time(rest, _REFUNDED, t):
            found.append(Decision(t + rules.release_timeout, 8, entity))
    elif source is INV:
        rest = others(INV, entity)
        if kind in ACTIVE_RESERVATION:
            first = view.first(INV, entity, ACTIVE_RESERVATION, FOREVER)
            if first is not None and first.event_id == eid:
                earlier = [e for e in rest if e.type in ACTIVE_RESERVATION]
                previous = min(earlier, key=trigger_key) if earlier else None
                if previous is None or previous.event_time != t:
                    found.append(Decision(t + rules.payment_timeout, 1, entity))
        if kind == "CONFIRMED" and not _same_time(rest, _CONFIRMED, t):
            found.append(Decision(t + rules.shipment_timeout, 3, entity))
        elif kind == "RELEASED" and not _same_time(rest, _RELEASED, t):
            found.append(Decision(t + rules.tcc_grace, 9, entity))
        elif kind == "RESERVED" and not _same_time(rest, _RESERVED, t):
            found.append(Decision(t, 10, entity))
    elif source is SHIP and kind in _SHIPPED_OR_CREATED:
        rest = others(SHIP, entity)
        if not _same_time(rest, _SHIPPED_OR_CREATED, t):
            found.append(Decision(t + rules.payment_grace, 4, entity))
        if kind == "CREATED" and not _same_time(rest, _CREATED, t):
            found.append(Decision(t + rules.tcc_grace, 7, entity))
    elif source is Source.ORDERS and kind == "PLACED":
        placed = view.placed(FOREVER)
        if placed is not None and placed.event_id == eid:
            earlier = [e for e in others(Source.ORDERS, view.order_id) if e.type in _PLACED]
            previous = min(earlier, key=trigger_key) if earlier else None
            for payment in view.entity_ids(PAY):
                paid = [e for e in view.history(PAY, payment, FOREVER)
                        if e.type == "SUCCEEDED"]
                for due in {max(e.event_time, t) for e in paid}:
                    if previous is None or all(max(e.event_time, previous.event_time) != due
                                               for e in paid):
                        found.append(Decision(due, 6, payment))
    return sorted(set(found))


def derive_decisions(events: Iterable[Event] | OrderView, rules: RuleConfig) -> set[Decision]:
    """All decisions the given events of one order (or a view of them) call for."""
    if isinstance(events, OrderView):
        return set(triggers(events, rules, FOREVER))
    evs = list(events)
    if not evs:
        return set()
    return set(triggers(OrderView(evs[0].order_id, evs), rules, FOREVER))
