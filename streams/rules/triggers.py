"""Decisions and their trigger events: what an order's events call for, and when.

A **decision** is ``Decision(due, rule, key)``: rule number 1..10 (contract order), its
decision time D and its key (see ``catalog``). ``triggers`` derives every decision of an
order with its trigger event; ``due_between`` the decisions due in a span of event time
(what the engine makes when the watermark crosses it); ``trigger_of`` finds the trigger of
one decision, looking at its entity's events only (what ``decide`` needs, per decision, on
the engine's hot path); ``new_decisions`` the decisions one arriving event adds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from streams.config import RuleConfig
from streams.model import RANK, Event, Source, Step
from streams.rules.entities import (
    ACTIVE_RESERVATION,
    CONFIRMED,
    CREATED,
    DISPATCHED,
    PLACED,
    REFUNDED,
    RELEASED,
    RESERVED,
    SUCCEEDED,
    OrderView,
    trigger_key,
)

FOREVER = 2**62  # "no upper bound" for event-time queries

PAY, INV, SHIP, ORD = Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING, Source.ORDERS


class Decision(NamedTuple):
    """One decision to make: at ``due`` (event time D), rule ``rule`` for ``key``."""

    due: int
    rule: int
    key: str


#: (due, rule, key, trigger step): one event calling for one decision
Candidate = tuple[int, int, str, Step]


def _candidates(view: OrderView, rules: RuleConfig, low: int, high: int) -> list[Candidate]:
    """Every (decision, trigger) pair the order's events call for with low < due <= high: a
    decision appears once per event that calls for it (rule 1: once, with its reservation's
    first active event)."""
    found: list[Candidate] = []
    for reservation, log in view.reservations.items():
        first: Step | None = None
        for s in log:
            rank, t = s.rank, s.event_time
            if rank == RELEASED:
                due = t + rules.tcc_grace
                if low < due <= high:
                    found.append((due, 9, reservation, s))
                continue
            if first is None or trigger_key(s) < trigger_key(first):
                first = s
            if rank == CONFIRMED:
                due = t + rules.shipment_timeout
                if low < due <= high:
                    found.append((due, 3, reservation, s))
            elif rank == RESERVED and low < t <= high:
                found.append((t, 10, reservation, s))
        if first is not None:
            due = first.event_time + rules.payment_timeout
            if low < due <= high:
                found.append((due, 1, reservation, first))
    placed: Step | None = None
    for payment, log in view.payments.items():
        for s in log:
            t = s.event_time
            if s.rank == SUCCEEDED:
                due = t + rules.reservation_timeout
                if low < due <= high:
                    found.append((due, 2, payment, s))
                if low < t <= high:
                    found.append((t, 5, payment, s))
                if placed is None:
                    placed = view.placed(FOREVER)
                if placed is not None:
                    due = max(t, placed.event_time)
                    if low < due <= high:
                        found.append((due, 6, payment, s))
            elif s.rank == REFUNDED:
                due = t + rules.release_timeout
                if low < due <= high:
                    found.append((due, 8, payment, s))
    for shipment, log in view.shipments.items():
        for s in log:
            if s.rank == CREATED or s.rank == DISPATCHED:
                due = s.event_time + rules.payment_grace
                if low < due <= high:
                    found.append((due, 4, shipment, s))
                if s.rank == CREATED:
                    due = s.event_time + rules.tcc_grace
                    if low < due <= high:
                        found.append((due, 7, shipment, s))
    return found


def triggers(view: OrderView, rules: RuleConfig, at: int) -> dict[Decision, Step]:
    """Every decision derivable from the events up to ``at``, with its trigger event.

    When several events trigger the same decision, the first by (event_time, event_id) is
    the trigger (it leads the evidence). A decision at D rests on events up to D only (its
    triggers come at or before D), so those with D <= at are what the events up to ``at``
    call for.
    """
    found: dict[Decision, Step] = {}
    for due, rule, key, step in _candidates(view, rules, -FOREVER, at):
        decision = Decision(due, rule, key)
        current = found.get(decision)
        if current is None or trigger_key(step) < trigger_key(current):
            found[decision] = step
    return found


def due_between(view: OrderView, rules: RuleConfig, low: int | None, high: int
                ) -> list[Decision]:
    """The decisions with low < due <= high (low None: no lower bound), sorted: what the
    engine makes when its watermark moves from ``low`` to ``high``."""
    found = _candidates(view, rules, -FOREVER if low is None else low, high)
    if not found:
        return []
    return sorted({Decision(due, rule, key) for due, rule, key, _ in found})


#: rule -> the source and ranks of its trigger events (every rule but 1, whose trigger is
#: the first active event of a reservation)
_TRIGGERED_BY: dict[int, tuple[Source, frozenset[int]]] = {
    2: (PAY, frozenset({SUCCEEDED})),
    3: (INV, frozenset({CONFIRMED})),
    4: (SHIP, frozenset({CREATED, DISPATCHED})),
    5: (PAY, frozenset({SUCCEEDED})),
    6: (PAY, frozenset({SUCCEEDED})),
    7: (SHIP, frozenset({CREATED})),
    8: (PAY, frozenset({REFUNDED})),
    9: (INV, frozenset({RELEASED})),
    10: (INV, frozenset({RESERVED})),
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


def trigger_of(view: OrderView, rules: RuleConfig, decision: Decision) -> Step | None:
    """The trigger of a decision as of its time D, None if the events up to D do not call
    for it: ``triggers(view, rules, decision.due).get(decision)``, from the events of the
    decision's entity (its key) only."""
    at, rule, key = decision
    if rule == 1:
        first = view.first(INV, key, ACTIVE_RESERVATION, at)
        if first is not None and first.event_time + rules.payment_timeout == at:
            return first
        return None
    source, ranks = _TRIGGERED_BY[rule]
    if rule == 6:
        placed = view.placed(at)
        if placed is None:
            return None
        floor = placed.event_time  # D = max(t, placed time)
        matches = [s for s in view.history(source, key, at)
                   if s.rank in ranks and max(s.event_time, floor) == at]
    else:
        delay = _delay(rule, rules)
        matches = [s for s in view.history(source, key, at)
                   if s.rank in ranks and s.event_time + delay == at]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else min(matches, key=trigger_key)


def _same_time(others: list[Step], ranks: frozenset[int], t: int) -> bool:
    """Whether one of ``others`` of ``ranks`` has event time ``t``."""
    return any(s.event_time == t and s.rank in ranks for s in others)


_SUCCEEDED = frozenset({SUCCEEDED})
_REFUNDED = frozenset({REFUNDED})
_CONFIRMED = frozenset({CONFIRMED})
_RELEASED = frozenset({RELEASED})
_RESERVED = frozenset({RESERVED})
_SHIPPED_OR_CREATED = frozenset({CREATED, DISPATCHED})
_CREATED = frozenset({CREATED})
_PLACED = frozenset({PLACED})


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
    eid, source, t = event.event_id, event.source, event.event_time
    entity = event.entity_id if source is not ORD else view.order_id
    rest = [s for s in view.log(source, entity) if s.event_id != eid]
    rank = RANK[source].get(event.type, -1)
    found: list[Decision] = []
    if source is PAY:
        if rank == SUCCEEDED:
            if not _same_time(rest, _SUCCEEDED, t):
                found += [Decision(t + rules.reservation_timeout, 2, entity),
                          Decision(t, 5, entity)]
            placed = view.placed(FOREVER)
            if placed is not None:
                floor = placed.event_time
                due = max(t, floor)
                if not any(s.rank == SUCCEEDED and max(s.event_time, floor) == due
                           for s in rest):
                    found.append(Decision(due, 6, entity))
        elif rank == REFUNDED and not _same_time(rest, _REFUNDED, t):
            found.append(Decision(t + rules.release_timeout, 8, entity))
    elif source is INV:
        if rank in ACTIVE_RESERVATION:
            first = view.first(INV, entity, ACTIVE_RESERVATION, FOREVER)
            if first is not None and first.event_id == eid:
                earlier = [s for s in rest if s.rank in ACTIVE_RESERVATION]
                previous = min(earlier, key=trigger_key) if earlier else None
                if previous is None or previous.event_time != t:
                    found.append(Decision(t + rules.payment_timeout, 1, entity))
        if rank == CONFIRMED and not _same_time(rest, _CONFIRMED, t):
            found.append(Decision(t + rules.shipment_timeout, 3, entity))
        elif rank == RELEASED and not _same_time(rest, _RELEASED, t):
            found.append(Decision(t + rules.tcc_grace, 9, entity))
        elif rank == RESERVED and not _same_time(rest, _RESERVED, t):
            found.append(Decision(t, 10, entity))
    elif source is SHIP and rank in _SHIPPED_OR_CREATED:
        if not _same_time(rest, _SHIPPED_OR_CREATED, t):
            found.append(Decision(t + rules.payment_grace, 4, entity))
        if rank == CREATED and not _same_time(rest, _CREATED, t):
            found.append(Decision(t + rules.tcc_grace, 7, entity))
    elif source is ORD and rank == PLACED:
        placed = view.placed(FOREVER)
        if placed is not None and placed.event_id == eid:
            earlier = [s for s in rest if s.rank == PLACED]
            previous = min(earlier, key=trigger_key) if earlier else None
            for payment in view.entity_ids(PAY):
                paid = [s for s in view.log(PAY, payment) if s.rank == SUCCEEDED]
                for due in {max(s.event_time, t) for s in paid}:
                    if previous is None or all(max(s.event_time, previous.event_time) != due
                                               for s in paid):
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
