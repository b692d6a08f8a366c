"""The rule table: each rule of the contract's section 4 defined once, in one block.

A block holds the rule's conditions and facts (functions of one order's events as of an
event time, over ``OrderView``) and its ``RuleSpec``: number, type, severity, command,
reads, trigger, subjects, resolvable. ``RULES`` lists the blocks in the contract's order.
Everything else derives from here: the decisions and their times (``triggers``), the
findings, records and rule watermarks (``catalog``), the held commands (``engine.held``).
The native engine has the same table (``native/src/table.rs``); docs/rules.md says how to
add a rule.

Conditions take (subject, key, trigger_time, view, at); facts and commands take (subject,
key, trigger event, view, at). The key is the entity of the trigger (see ``Trigger``); the
subject is the key unless the rule's ``subjects`` says otherwise.
"""

from __future__ import annotations

from streams.model import CommandType, MismatchType, Severity, Source, Step
from streams.rules.commands import COMMANDS as COMMANDS  # re-exported
from streams.rules.commands import (
    Evidence,
    active_reservations,
    payment_facts,
    reservation_facts,
    the_order,
)
from streams.rules.entities import (
    ACTIVE_PAYMENT,
    ACTIVE_RESERVATION,
    LIVE_SHIPMENT,
    RELEASED,
    OrderView,
)
from streams.rules.order_status import (
    CANCELLED_BUT_CHARGED,
    CANCELLED_BUT_RESERVED,
    CANCELLED_BUT_SHIPPED,
    PAID_WITHOUT_PAYMENT,
    PAYMENT_NOT_APPLIED,
)
from streams.rules.spec import RuleSpec, Trigger, iso

MT, CT, SV = MismatchType, CommandType, Severity
ORD, PAY, INV, SHIP = Source.ORDERS, Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING
_RELEASED = frozenset({RELEASED})


# -- 1 RESERVATION_WITHOUT_PAYMENT ---------------------------------------------------------


def _unpaid(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.rank(INV, subject, at) in ACTIVE_RESERVATION and not view.any_succeeded(at)


def _reservation(subject: str, key: str, trigger: Step, view: OrderView, at: int
                 ) -> tuple[Evidence, dict[str, str]]:
    return [view.latest(INV, subject, at)], reservation_facts(view, subject, at)


RESERVATION_WITHOUT_PAYMENT = RuleSpec(
    1, MT.RESERVATION_WITHOUT_PAYMENT, SV.LOW, CT.RELEASE_STOCK, frozenset({INV, PAY}),
    Trigger(INV, ("RESERVED", "CONFIRMED"), "payment_timeout", first=True),
    holds=_unpaid, facts=_reservation)


# -- 2 PAYMENT_WITHOUT_RESERVATION ---------------------------------------------------------


def _unreserved(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.rank(PAY, subject, at) in ACTIVE_PAYMENT and not view.active_reservations(at)


def _payment(subject: str, key: str, trigger: Step, view: OrderView, at: int
             ) -> tuple[Evidence, dict[str, str]]:
    return [view.latest(PAY, subject, at)], payment_facts(key, trigger)


PAYMENT_WITHOUT_RESERVATION = RuleSpec(
    2, MT.PAYMENT_WITHOUT_RESERVATION, SV.HIGH, CT.REFUND_PAYMENT, frozenset({PAY, INV}),
    Trigger(PAY, ("SUCCEEDED",), "reservation_timeout"),
    holds=_unreserved, facts=_payment)


# -- 3 PAID_NOT_SHIPPED (key: the CONFIRMED reservation; subject: the order) ---------------


def _not_shipped(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return (view.rank(INV, key, at) in ACTIVE_RESERVATION and bool(view.active_payments(at))
            and not view.live_shipments(at) and view.cancelled(at) is None)


def _paid_reservation(subject: str, key: str, trigger: Step, view: OrderView, at: int
                      ) -> tuple[Evidence, dict[str, str]]:
    payments = view.active_payments(at)
    evidence = [view.latest(INV, key, at)] + [view.latest(PAY, p, at) for p in payments]
    return evidence, {"reservation_id": key, "payment_ids": ",".join(payments)}


PAID_NOT_SHIPPED = RuleSpec(
    3, MT.PAID_NOT_SHIPPED, SV.MEDIUM, CT.EXPEDITE_SHIPMENT, frozenset({INV, PAY, SHIP, ORD}),
    Trigger(INV, ("CONFIRMED",), "shipment_timeout"),
    holds=_not_shipped, facts=_paid_reservation, subjects=the_order)


# -- 4 SHIPPED_WITHOUT_PAYMENT -------------------------------------------------------------


def _shipped_unpaid(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.rank(SHIP, subject, at) in LIVE_SHIPMENT and not view.active_payments(at)


def _shipment(subject: str, key: str, trigger: Step, view: OrderView, at: int
              ) -> tuple[Evidence, dict[str, str]]:
    details = {"shipment_id": subject, "shipment_state": str(view.state(SHIP, subject, at))}
    return [view.latest(SHIP, subject, at)], details


SHIPPED_WITHOUT_PAYMENT = RuleSpec(
    4, MT.SHIPPED_WITHOUT_PAYMENT, SV.CRITICAL, CT.HOLD_SHIPMENT, frozenset({SHIP, PAY}),
    Trigger(SHIP, ("CREATED", "DISPATCHED"), "payment_grace"),
    holds=_shipped_unpaid, facts=_shipment)


# -- 5 DUPLICATE_PAYMENT -------------------------------------------------------------------


def _duplicate(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return (view.rank(PAY, subject, at) in ACTIVE_PAYMENT
            and view.earlier_payment(subject, since, at) is not None)


def _duplicate_facts(subject: str, key: str, trigger: Step, view: OrderView, at: int
                     ) -> tuple[Evidence, dict[str, str]]:
    other = view.earlier_payment(subject, trigger.event_time, at) or ""
    details = payment_facts(key, trigger) | {"other_payment_id": other}
    return [view.first(PAY, other, ACTIVE_PAYMENT, at)], details


DUPLICATE_PAYMENT = RuleSpec(
    5, MT.DUPLICATE_PAYMENT, SV.CRITICAL, CT.REFUND_PAYMENT, frozenset({PAY}),
    Trigger(PAY, ("SUCCEEDED",)),
    holds=_duplicate, facts=_duplicate_facts)


# -- 6 AMOUNT_MISMATCH (decided once: a fixed fact) ----------------------------------------


def _fixed(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return True


def _amount_differs(subject: str, key: str, trigger: Step, view: OrderView, at: int) -> bool:
    placed = view.placed(at)
    if placed is None:
        return False
    return trigger.amount != placed.total_amount or trigger.currency != placed.currency


def _amounts(subject: str, key: str, trigger: Step, view: OrderView, at: int
             ) -> tuple[Evidence, dict[str, str]]:
    placed = view.placed(at)
    details = payment_facts(key, trigger)
    if placed is not None:
        details["expected_amount"] = str(placed.total_amount)
        details["expected_currency"] = str(placed.currency)
    return [placed], details


AMOUNT_MISMATCH = RuleSpec(
    6, MT.AMOUNT_MISMATCH, SV.HIGH, None, frozenset({PAY, ORD}),
    Trigger(PAY, ("SUCCEEDED",), after="PLACED"),
    holds=_fixed, fires=_amount_differs, facts=_amounts, resolvable=False)


# -- 7 OVERSHIPMENT ------------------------------------------------------------------------


def _overshipped(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.rank(SHIP, subject, at) in LIVE_SHIPMENT and view.overshipped(at) is not None


def _overshipment(subject: str, key: str, trigger: Step, view: OrderView, at: int
                  ) -> tuple[Evidence, dict[str, str]]:
    evidence, details = _shipment(subject, key, trigger, view, at)
    over = view.overshipped(at)
    if over is not None:
        sku, shipped, reserved = over
        details.update(sku=sku, shipped=str(shipped), reserved=str(reserved))
        for s in view.live_shipments(at):
            if sku in view.shipment_items(s, at):
                evidence.append(view.latest(SHIP, s, at))
        for r in view.active_reservations(at):
            line = view.reservation_line(r, at)
            if line and line[0] == sku:
                evidence.append(view.latest(INV, r, at))
    return evidence, details


OVERSHIPMENT = RuleSpec(
    7, MT.OVERSHIPMENT, SV.HIGH, CT.HOLD_SHIPMENT, frozenset({SHIP, INV}),
    Trigger(SHIP, ("CREATED",), "tcc_grace"),
    holds=_overshipped, facts=_overshipment)


# -- 8 REFUND_WITHOUT_RELEASE (key: the refunded payment; subjects: the active reservations)


def _kept_after_refund(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return (view.rank(INV, subject, at) in ACTIVE_RESERVATION
            and not view.active_payments(at) and not view.shipped(at))


def _refunded_reservation(subject: str, key: str, trigger: Step, view: OrderView, at: int
                          ) -> tuple[Evidence, dict[str, str]]:
    evidence, details = _reservation(subject, key, trigger, view, at)
    details["payment_id"] = key
    return evidence, details


REFUND_WITHOUT_RELEASE = RuleSpec(
    8, MT.REFUND_WITHOUT_RELEASE, SV.MEDIUM, CT.RELEASE_STOCK, frozenset({PAY, INV, SHIP}),
    Trigger(PAY, ("REFUNDED",), "release_timeout"),
    holds=_kept_after_refund, facts=_refunded_reservation, subjects=active_reservations)


# -- 9 TCC_EMPTY_ROLLBACK (only a late Try resolves it) ------------------------------------


def _empty_rollback(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    return view.first(INV, subject, ACTIVE_RESERVATION, min(at, since)) is None


def _rollback(subject: str, key: str, trigger: Step, view: OrderView, at: int
              ) -> tuple[Evidence, dict[str, str]]:
    return [], {"reservation_id": subject}


TCC_EMPTY_ROLLBACK = RuleSpec(
    9, MT.TCC_EMPTY_ROLLBACK, SV.LOW, None, frozenset({INV}),
    Trigger(INV, ("RELEASED",), "tcc_grace"),
    holds=_empty_rollback, facts=_rollback)


# -- 10 TCC_HANGING (a fixed fact) ---------------------------------------------------------


def _hanging(subject: str, key: str, since: int, view: OrderView, at: int) -> bool:
    released = view.first(INV, subject, _RELEASED, at)
    return released is not None and released.event_time < since


def _hanging_facts(subject: str, key: str, trigger: Step, view: OrderView, at: int
                   ) -> tuple[Evidence, dict[str, str]]:
    released = view.first(INV, subject, _RELEASED, at)
    details = {"reservation_id": subject}
    if released is not None:
        details["released_at"] = iso(released.event_time)
    return [released], details


TCC_HANGING = RuleSpec(
    10, MT.TCC_HANGING, SV.MEDIUM, CT.RELEASE_STOCK, frozenset({INV}),
    Trigger(INV, ("RESERVED",)),
    holds=_hanging, facts=_hanging_facts, resolvable=False)


#: The rule table, by rule number (the contract's order).
RULES: dict[int, RuleSpec] = {spec.number: spec for spec in (
    RESERVATION_WITHOUT_PAYMENT,
    PAYMENT_WITHOUT_RESERVATION,
    PAID_NOT_SHIPPED,
    SHIPPED_WITHOUT_PAYMENT,
    DUPLICATE_PAYMENT,
    AMOUNT_MISMATCH,
    OVERSHIPMENT,
    REFUND_WITHOUT_RELEASE,
    TCC_EMPTY_ROLLBACK,
    TCC_HANGING,
    PAYMENT_NOT_APPLIED,
    CANCELLED_BUT_CHARGED,
    CANCELLED_BUT_RESERVED,
    CANCELLED_BUT_SHIPPED,
    PAID_WITHOUT_PAYMENT,
)}
