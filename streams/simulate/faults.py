"""The injectable faults, one per rule: what each does to an order, and the --faults parser.

Every fault flow keeps the order going (or adds a natural follow-up such as a late refund,
a customer cancellation or an inventory sweep) until well after the decision time of its
rule plus allowed_lateness, so that the order's own events carry its partition's watermark
past the decision: a fault is always decided, wherever it falls in the traffic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streams.errors import ConfigError
from streams.model import MismatchType
from streams.simulate.flows import deliver, ship_at, ship_order
from streams.simulate.scenario import CURRENCIES, DAY, HOUR, MINUTE, SECOND, OrderBuilder

MT = MismatchType


def _placed_and_reserved(b: OrderBuilder) -> int:
    b.order_event(b.t0, "PLACED")
    return b.reserve_lines(b.t0)


def _paid(b: OrderBuilder, amount: int | None = None,
          currency: str | None = None) -> tuple[str, int, int]:
    """PLACED, Tries, checkout, Confirms: (payment_id, paid, confirmed) true times."""
    _placed_and_reserved(b)
    pid, paid = b.checkout(b.first_attempt(), b.failures(), amount, currency)
    return pid, paid, b.each_active(paid, "CONFIRMED")


def _after(b: OrderBuilder, horizon: int, low: int, high: int) -> int:
    """A delay beyond a rule's horizon plus allowed_lateness (the decision is made first)."""
    return horizon + b.rules.allowed_lateness + b.between(low, high)


def never_paid(b: OrderBuilder) -> None:
    """Tries succeed, the customer never pays (maybe after declined attempts); the order
    service auto-cancels the order, but the inventory Cancel is lost."""
    _placed_and_reserved(b)
    t = b.first_attempt()
    for _ in range(b.rng.choice((0, 1, 1, 2))):
        b.payment(t, "FAILED", b.new_id("PAY"))
        t += b.retry_gap()
    b.order_event(b.t0 + _after(b, b.rules.payment_timeout, MINUTE, 15 * MINUTE), "CANCELLED")


def paid_no_stock(b: OrderBuilder) -> None:
    """The payment succeeds with no active reservation: the Try was lost, or it expired
    (RELEASED) before the payment came through. Customer service refunds hours later."""
    if b.chance(0.5):
        b.order_event(b.t0, "PLACED")
        pid, paid = b.checkout(b.first_attempt(), b.failures())
    else:
        pt = b.rules.payment_timeout
        reserved = _placed_and_reserved(b)
        released = b.each_active(reserved + b.between(pt * 3 // 10, pt * 6 // 10), "RELEASED")
        pid, paid = b.checkout(released + b.timing.settle + b.between(SECOND, pt // 5), 0)
    cancelled = paid + _after(b, b.rules.reservation_timeout, 30 * MINUTE, 6 * HOUR)
    b.order_event(cancelled, "CANCELLED")
    b.payment(cancelled + b.between(SECOND, 20 * SECOND), "REFUNDED", pid)


def never_shipped(b: OrderBuilder) -> None:
    """Paid and confirmed, but no parcel is ever created; the customer cancels after the
    shipment timeout and gets a refund, the stock is released."""
    pid, _, confirmed = _paid(b)
    cancelled = confirmed + _after(b, b.rules.shipment_timeout, HOUR, 12 * HOUR)
    b.order_event(cancelled, "CANCELLED")
    b.refund_then_release(cancelled + b.between(SECOND, 20 * SECOND), pid)


def shipped_unpaid(b: OrderBuilder) -> None:
    """The warehouse creates the parcel before any payment; the payment arrives after
    payment_grace, then the order completes."""
    reserved = _placed_and_reserved(b)
    quick, grace = b.timing.quick, b.rules.payment_grace
    created = reserved + b.timing.settle + b.between(min(20 * SECOND, quick), min(MINUTE, quick))
    sid = b.create_parcel(created, b.units())
    paid_at = created + grace + b.timing.settle
    paid_at += b.between(5 * SECOND, max(5 * SECOND, min(3 * MINUTE, b.rules.payment_timeout // 5)))
    _, paid = b.checkout(paid_at, 0)
    confirmed = b.each_active(paid, "CONFIRMED")
    deliver(b, confirmed, sid)


def double_charge(b: OrderBuilder) -> None:
    """A second payment SUCCEEDED (a client retry) seconds to minutes after the first; half
    of the duplicates are refunded by finance a day or so later."""
    _, paid, confirmed = _paid(b)
    second = b.new_id("PAY")
    charged = paid + b.between(SECOND, 5 * MINUTE)
    b.payment(charged, "SUCCEEDED", second)
    ship_order(b, confirmed)
    if b.chance(0.5):
        b.payment(charged + b.between(HOUR, 2 * DAY), "REFUNDED", second)


def wrong_amount(b: OrderBuilder) -> None:
    """The charge differs from the order total: a coupon not applied, applied twice, or the
    amount charged in another currency."""
    kind = b.rng.random()
    amount, currency = b.total, b.currency
    if kind < 0.4:
        amount += max(1, round(b.total * (0.05 + 0.2 * b.rng.random())))
    elif kind < 0.8:
        amount -= max(1, round(b.total * (0.05 + 0.25 * b.rng.random())))
    else:
        currency = next(c for c, _, _ in CURRENCIES if c != b.currency)
    _, _, confirmed = _paid(b, max(0, amount), currency)
    ship_order(b, confirmed)


def overship(b: OrderBuilder) -> None:
    """The parcel carries extra units of a sku, or a duplicate parcel is created (and voided
    by operations hours later)."""
    _, _, confirmed = _paid(b)
    created = ship_at(b, confirmed)
    units = b.units()
    if b.chance(0.5):
        sku = b.rng.choice(sorted(units))
        units[sku] += b.rng.choice((1, 1, 2))
        deliver(b, created, b.create_parcel(created, units))
        return
    sid = b.create_parcel(created, units)
    duplicated = created + b.between(SECOND, 30 * MINUTE)
    duplicate = b.create_parcel(duplicated, units)
    deliver(b, created, sid)
    b.parcel_event(duplicated + b.between(HOUR, 12 * HOUR), duplicate, "CANCELLED")


def refund_no_release(b: OrderBuilder) -> None:
    """The customer cancels after paying: refunded, but the inventory Cancel is lost until a
    sweep releases the stock hours later."""
    pid, paid, confirmed = _paid(b)
    st = b.rules.shipment_timeout
    cancelled = max(paid + b.between(10 * SECOND, min(3 * HOUR, st // 2)),
                    confirmed + b.timing.settle)
    b.order_event(cancelled, "CANCELLED")
    refunded = cancelled + b.between(SECOND, 20 * SECOND)
    b.payment(refunded, "REFUNDED", pid)
    b.each_active(refunded + _after(b, b.rules.release_timeout, 30 * MINUTE, 6 * HOUR),
                  "RELEASED")


def _lost_try(b: OrderBuilder, *, hangs: bool) -> None:
    """The first Try times out at the coordinator, whose Cancel reaches the inventory first
    (an empty rollback); with ``hangs`` the delayed Try arrives after it and hangs. The Try
    phase is retried under new reservation ids and the order completes."""
    b.order_event(b.t0, "PLACED")
    sku, quantity, _ = b.lines[0]
    cancelled = b.t0 + b.between(2 * SECOND, 10 * SECOND)
    rid = b.empty_cancel(cancelled, sku, quantity)
    if hangs:
        b.reserve(cancelled + b.between(SECOND, 30 * SECOND), sku, quantity, rid)
    b.reserve_lines(cancelled + b.between(500, 3 * SECOND))
    _, paid = b.checkout(b.first_attempt(), b.failures())
    ship_order(b, b.each_active(paid, "CONFIRMED"))


def lost_callback(b: OrderBuilder) -> None:
    """The payment succeeds but its callback never reaches the order service: the order
    is never marked PAID, while the TCC confirms and the warehouse ships as usual."""
    _placed_and_reserved(b)
    _, paid = b.checkout(b.first_attempt(), b.failures(), applied=False)
    ship_order(b, b.each_active(paid, "CONFIRMED"))


def paid_after_cancel(b: OrderBuilder) -> None:
    """The unpaid order is closed (timeout close) and its stock released; then a payment
    for it succeeds (a payment page left open). The order service refuses the callback, and
    finance refunds the payment hours later. With the stock gone it is also a payment
    without reservation (one refund)."""
    _placed_and_reserved(b)
    pt = b.rules.payment_timeout
    cancelled = b.t0 + b.between(pt * 3 // 10, pt // 2)
    b.order_event(cancelled, "CANCELLED")
    b.each_active(cancelled + b.between(200, min(2 * SECOND, b.timing.quick)), "RELEASED")
    late = cancelled + b.timing.settle + b.between(5 * SECOND, max(5 * SECOND, pt * 2 // 3))
    pid, paid = b.checkout(late, 0, applied=False)
    b.payment(paid + _after(b, b.rules.release_timeout, 30 * MINUTE, 6 * HOUR), "REFUNDED", pid)


def cancel_kept_stock(b: OrderBuilder) -> None:
    """The customer cancels the unpaid order a minute after placing it, but the inventory
    Cancel is lost: the stock stays reserved until the inventory's sweep releases it (past
    release_timeout, before payment_timeout)."""
    reserved = _placed_and_reserved(b)
    cancelled = reserved + b.timing.settle + b.between(10 * SECOND, MINUTE)
    b.order_event(cancelled, "CANCELLED")
    b.each_active(cancelled + _after(b, b.rules.release_timeout, 10 * SECOND, MINUTE),
                  "RELEASED")


def cancel_shipped(b: OrderBuilder) -> None:
    """The parcel is created (half the time dispatched too) when the customer cancels the
    paid order: refunded and the stock released, but the warehouse never hears of it, and
    operations intercept the parcel (CANCELLED) hours later."""
    pid, _, confirmed = _paid(b)
    last = ship_at(b, confirmed)
    sid = b.create_parcel(last, b.units())
    if b.chance(0.5):
        last += b.between(15 * MINUTE, 8 * HOUR)
        b.parcel_event(last, sid, "DISPATCHED")
    grace = b.rules.payment_grace
    cancelled = last + b.timing.settle + b.between(max(5 * MINUTE, 2 * grace),
                                                   max(2 * HOUR, 3 * grace))
    b.order_event(cancelled, "CANCELLED")
    b.refund_then_release(cancelled + b.between(SECOND, 20 * SECOND), pid)
    b.parcel_event(cancelled + _after(b, grace, HOUR, 12 * HOUR), sid, "CANCELLED")


def phantom_paid(b: OrderBuilder) -> None:
    """The order service marks the order PAID on the callback of a declined attempt (a
    forged or misread notification). The customer, told the payment failed, pays again
    after payment_grace, and the order completes."""
    _placed_and_reserved(b)
    t = b.first_attempt()
    declined = b.new_id("PAY")
    b.payment(t, "FAILED", declined)
    marked = t + b.timing.settle + b.between(200, min(3 * SECOND, b.timing.quick))
    b.order_paid(marked, declined)
    again = marked + _after(b, b.rules.payment_grace, 10 * SECOND, 2 * MINUTE)
    _, paid = b.checkout(again, 0)
    ship_order(b, b.each_active(paid, "CONFIRMED"))


def empty_rollback(b: OrderBuilder) -> None:
    """RELEASED of a reservation that was never RESERVED (the Try is retried)."""
    _lost_try(b, hangs=False)


def hanging_try(b: OrderBuilder) -> None:
    """RESERVED after the reservation's RELEASED, then never confirmed or released."""
    _lost_try(b, hangs=True)


@dataclass(frozen=True)
class Fault:
    """A named fault: the rule it trips, what it does, and the flow that does it."""

    name: str
    type: MismatchType
    injects: str
    flow: Callable[[OrderBuilder], None]


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("never_paid", MT.RESERVATION_WITHOUT_PAYMENT,
              "stock reserved, never paid; the order is auto-cancelled but the stock "
              "stays RESERVED", never_paid),
        Fault("paid_no_stock", MT.PAYMENT_WITHOUT_RESERVATION,
              "payment SUCCEEDED with no active reservation (Try lost, or expired before "
              "the payment); refunded hours later", paid_no_stock),
        Fault("never_shipped", MT.PAID_NOT_SHIPPED,
              "paid and CONFIRMED, no parcel ever created; cancelled and refunded after "
              "the shipment timeout", never_shipped),
        Fault("shipped_unpaid", MT.SHIPPED_WITHOUT_PAYMENT,
              "parcel CREATED before any payment; the payment comes after payment_grace",
              shipped_unpaid),
        Fault("double_charge", MT.DUPLICATE_PAYMENT,
              "a second SUCCEEDED payment of the order; half are refunded later",
              double_charge),
        Fault("wrong_amount", MT.AMOUNT_MISMATCH,
              "charged amount or currency differs from the order's total", wrong_amount),
        Fault("overship", MT.OVERSHIPMENT,
              "extra units in a parcel, or a duplicate parcel (voided hours later)", overship),
        Fault("refund_no_release", MT.REFUND_WITHOUT_RELEASE,
              "cancelled after paying: refunded, stock released only by a sweep hours later",
              refund_no_release),
        Fault("empty_rollback", MT.TCC_EMPTY_ROLLBACK,
              "RELEASED of a reservation never RESERVED (Cancel before Try; Try retried)",
              empty_rollback),
        Fault("hanging_try", MT.TCC_HANGING,
              "the late Try is RESERVED after its RELEASED and hangs (also an empty "
              "rollback)", hanging_try),
        Fault("lost_callback", MT.PAYMENT_NOT_APPLIED,
              "payment SUCCEEDED, its callback lost: the order is never marked PAID",
              lost_callback),
        Fault("paid_after_cancel", MT.CANCELLED_BUT_CHARGED,
              "a payment SUCCEEDED after the order was closed unpaid (also a payment "
              "without reservation); refunded hours later", paid_after_cancel),
        Fault("cancel_kept_stock", MT.CANCELLED_BUT_RESERVED,
              "cancelled unpaid, the inventory Cancel lost; a sweep releases the stock "
              "later", cancel_kept_stock),
        Fault("cancel_shipped", MT.CANCELLED_BUT_SHIPPED,
              "cancelled and refunded with the parcel CREATED or DISPATCHED; intercepted "
              "hours later", cancel_shipped),
        Fault("phantom_paid", MT.PAID_WITHOUT_PAYMENT,
              "the order marked PAID on a declined attempt; the customer pays after "
              "payment_grace", phantom_paid),
    )
}

_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*$")


def parse_faults(spec: str) -> dict[str, float]:
    """'never_paid=0.01,double_charge=0.2%' -> {name: rate}; 'all=RATE' sets every fault.

    Rates are probabilities per order (a number in [0, 1] or a percentage); an order gets
    at most one fault, so the rates must add up to at most 1.
    """
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = (s.strip() for s in part.partition("="))
        match = _RATE.match(value)
        if not sep or not match:
            raise ConfigError(f"--faults: {part!r} is not NAME=RATE (e.g. never_paid=0.01)")
        rate = float(match[1]) / (100 if match[2] else 1)
        if rate > 1:
            raise ConfigError(f"--faults: {part!r}: a rate is at most 1 (or 100%)")
        if name == "all":
            rates.update(dict.fromkeys(FAULTS, rate))
        elif name in FAULTS:
            rates[name] = rate
        else:
            raise ConfigError(f"--faults: unknown fault {name!r} (known: {', '.join(FAULTS)})")
    check_rates(rates)
    return rates


def check_rates(rates: Mapping[str, float]) -> None:
    """ConfigError unless every name is a fault and the rates are in [0, 1] and sum to <= 1."""
    for name, rate in rates.items():
        if name not in FAULTS:
            raise ConfigError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
        if not 0 <= rate <= 1:
            raise ConfigError(f"fault {name}: rate {rate} is not in [0, 1]")
    if sum(rates.values()) > 1 + 1e-9:
        raise ConfigError(f"fault rates add up to {sum(rates.values()):g}, more than 1 "
                          "(an order gets at most one fault)")


def pick_fault(u: float, rates: Mapping[str, float]) -> Fault | None:
    """The fault of an order whose uniform draw is ``u`` (None: a healthy order)."""
    for name, fault in FAULTS.items():
        rate = rates.get(name, 0.0)
        if u < rate:
            return fault
        u -= rate
    return None
