"""The rules of the order's own status (11-15): a payment the order never applied, and a
cancelled order that is still charged, reserved or shipped, or marked paid with no money.

Entries of the rule table (``streams.rules.table`` lists them in ``RULES``). They read the
orders topic: a decision waits for the order event its D rests on (PLACED, CANCELLED or
PAID), so an order whose own events have not been seen is never judged by them. A
cancellation is for good: "the order is CANCELLED" at ``at`` is "it has a CANCELLED event
at or before ``at``", whatever came after it; "PAID" likewise.
"""

from __future__ import annotations

from streams.model import CommandType, MismatchType, Severity, Source, Step
from streams.rules.commands import (
    Evidence,
    active_reservations,
    payment_facts,
    reservation_facts,
)
from streams.rules.entities import ACTIVE_PAYMENT, ACTIVE_RESERVATION, ON_ITS_WAY, OrderView
from streams.rules.spec import RuleSpec, Trigger, iso

MT, CT, SV = MismatchType, CommandType, Severity
ORD, PAY, INV, SHIP = Source.ORDERS, Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING


def _cancelled_at(view: OrderView, at: int) -> dict[str, str]:
    cancelled = view.cancelled(at)
    return {} if cancelled is None else {"cancelled_at": iso(cancelled.event_time)}


# -- 11 PAYMENT_NOT_APPLIED (the payment callback was lost) --------------------------------


def _not_applied(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return (view.rank(PAY, subject, at) in ACTIVE_PAYMENT and view.paid(at) is None
            and view.cancelled(at) is None)


def _unapplied(subject: str, key: str, trigger: Step, view: OrderView, at: int
               ) -> tuple[Evidence, dict[str, str]]:
    return [view.latest(PAY, subject, at), view.placed(at)], payment_facts(key, trigger)


PAYMENT_NOT_APPLIED = RuleSpec(
    11, MT.PAYMENT_NOT_APPLIED, SV.HIGH, CT.MARK_ORDER_PAID, frozenset({PAY, ORD}),
    Trigger(PAY, ("SUCCEEDED",), "callback_timeout", after="PLACED"),
    holds=_not_applied, facts=_unapplied)


# -- 12 CANCELLED_BUT_CHARGED --------------------------------------------------------------


def _charged(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.rank(PAY, subject, at) in ACTIVE_PAYMENT and view.cancelled(at) is not None


def _charged_facts(subject: str, key: str, trigger: Step, view: OrderView, at: int
                   ) -> tuple[Evidence, dict[str, str]]:
    details = payment_facts(key, trigger) | _cancelled_at(view, at)
    return [view.latest(PAY, subject, at), view.cancelled(at)], details


CANCELLED_BUT_CHARGED = RuleSpec(
    12, MT.CANCELLED_BUT_CHARGED, SV.CRITICAL, CT.REFUND_PAYMENT, frozenset({ORD, PAY}),
    Trigger(PAY, ("SUCCEEDED",), "release_timeout", after="CANCELLED"),
    holds=_charged, facts=_charged_facts)


# -- 13 CANCELLED_BUT_RESERVED (key: the order; subjects: the active reservations) ---------


def _kept_after_cancel(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.rank(INV, subject, at) in ACTIVE_RESERVATION and view.cancelled(at) is not None


def _reserved_facts(subject: str, key: str, trigger: Step, view: OrderView, at: int
                    ) -> tuple[Evidence, dict[str, str]]:
    details = reservation_facts(view, subject, at) | _cancelled_at(view, at)
    return [view.latest(INV, subject, at)], details


CANCELLED_BUT_RESERVED = RuleSpec(
    13, MT.CANCELLED_BUT_RESERVED, SV.MEDIUM, CT.RELEASE_STOCK, frozenset({ORD, INV}),
    Trigger(ORD, ("CANCELLED",), "release_timeout", first=True),
    holds=_kept_after_cancel, facts=_reserved_facts, subjects=active_reservations)


# -- 14 CANCELLED_BUT_SHIPPED --------------------------------------------------------------


def _shipped_after_cancel(subject: str, key: str, since: int, view: OrderView, at: int
                          ) -> bool:
    return view.rank(SHIP, subject, at) in ON_ITS_WAY and view.cancelled(at) is not None


def _shipped_facts(subject: str, key: str, trigger: Step, view: OrderView, at: int
                   ) -> tuple[Evidence, dict[str, str]]:
    details = {"shipment_id": subject, "shipment_state": str(view.state(SHIP, subject, at))}
    details.update(_cancelled_at(view, at))
    return [view.latest(SHIP, subject, at), view.cancelled(at)], details


CANCELLED_BUT_SHIPPED = RuleSpec(
    14, MT.CANCELLED_BUT_SHIPPED, SV.HIGH, CT.HOLD_SHIPMENT, frozenset({ORD, SHIP}),
    Trigger(SHIP, ("CREATED", "DISPATCHED"), "payment_grace", after="CANCELLED"),
    holds=_shipped_after_cancel, facts=_shipped_facts)


# -- 15 PAID_WITHOUT_PAYMENT (subject: the order) ------------------------------------------


def _paid_for_nothing(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    # a cancelled order is no longer claimed paid (its payment is refunded as it should be)
    return (view.paid(at) is not None and view.cancelled(at) is None
            and not view.active_payments(at))


def _paid_facts(subject: str, key: str, trigger: Step, view: OrderView, at: int
                ) -> tuple[Evidence, dict[str, str]]:
    return [], {"paid_at": iso(trigger.event_time)}


PAID_WITHOUT_PAYMENT = RuleSpec(
    15, MT.PAID_WITHOUT_PAYMENT, SV.CRITICAL, None, frozenset({ORD, PAY}),
    Trigger(ORD, ("PAID",), "payment_grace", first=True),
    holds=_paid_for_nothing, facts=_paid_facts)
