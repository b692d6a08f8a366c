"""The healthy life of an order: checkout with retries, TCC, cancellations, parcels, refunds.

None of these flows may trip a rule with the thresholds the builder's Timing was made for:
every delay is bounded by the horizon it must stay inside, and events of two services whose
order matters are separated by more than their clocks' skews (``Timing.settle``).
"""

from __future__ import annotations

from streams.simulate.scenario import DAY, HOUR, MINUTE, SECOND, OrderBuilder

#: Shares of the healthy orders that take each alternative path.
CANCEL_UNPAID = 0.025
CANCEL_PAID = 0.025
CANCEL_PACKED = 0.01
REFUND_AFTER_DELIVERY = 0.05
PARTIAL_SHIPMENT = 0.12
MULTI_PARCEL = 0.15
LABEL_VOIDED = 0.03


def healthy(b: OrderBuilder) -> None:
    """One consistent order; a few are cancelled, some refunded after delivery."""
    b.order_event(b.t0, "PLACED")
    b.reserve_lines(b.t0)
    path = b.rng.random()
    if path < CANCEL_UNPAID:
        cancel_unpaid(b)
        return
    pid, paid = b.checkout(b.first_attempt(), b.failures())
    confirmed = b.each_active(paid, "CONFIRMED")
    if path < CANCEL_UNPAID + CANCEL_PAID:
        st = b.rules.shipment_timeout
        cancelled = max(paid + b.between(10 * SECOND, min(3 * HOUR, st // 2)),
                        confirmed + b.timing.settle)
        b.order_event(cancelled, "CANCELLED")
        b.refund_then_release(cancelled + b.between(SECOND, 20 * SECOND), pid)
        return
    if path < CANCEL_UNPAID + CANCEL_PAID + CANCEL_PACKED:
        cancel_packed(b, confirmed, pid)
        return
    delivered = ship_order(b, confirmed, voids=True)
    if b.chance(REFUND_AFTER_DELIVERY):
        # a return: the whole order or one line, long after the last parcel arrived
        amount = b.total
        if b.chance(0.5):
            _, quantity, price = b.rng.choice(b.lines)
            amount = quantity * price
        b.payment(delivered + b.between(HOUR, 5 * DAY), "REFUNDED", pid, amount)


def cancel_unpaid(b: OrderBuilder) -> None:
    """The customer gives up before paying (maybe after a declined attempt): CANCELLED, and
    the inventory releases the stock well inside payment_timeout."""
    pt = b.rules.payment_timeout
    cancelled = b.t0 + b.between(min(30 * SECOND, pt // 20), pt // 2)
    if b.chance(0.5):
        span = cancelled - b.t0
        b.payment(b.t0 + b.between(span // 3, span * 2 // 3), "FAILED", b.new_id("PAY"))
    b.order_event(cancelled, "CANCELLED")
    b.each_active(cancelled + b.between(200, min(2 * SECOND, b.timing.quick)), "RELEASED")


def cancel_packed(b: OrderBuilder, confirmed: int, pid: str) -> None:
    """Cancelled after the parcels were created but before dispatch: parcels CANCELLED
    within payment_grace of the cancellation, refund, release. The refund comes well after
    payment_grace of every CREATED."""
    st, grace = b.rules.shipment_timeout, b.rules.payment_grace
    t = confirmed + b.between(min(30 * MINUTE, st // 20), st * 6 // 10)
    parcels = []
    for items in b.split(b.units(), b.rng.choice((1, 1, 2))):
        parcels.append(b.create_parcel(t, items))
        t += b.between(SECOND, 2 * MINUTE)
    cancelled = t + b.between(max(5 * MINUTE, 2 * grace), max(2 * HOUR, 3 * grace))
    b.order_event(cancelled, "CANCELLED")
    for sid in parcels:
        b.parcel_event(cancelled + b.between(2 * SECOND, min(MINUTE, grace // 2)), sid,
                       "CANCELLED")
    b.refund_then_release(cancelled + b.between(SECOND, 20 * SECOND), pid)


def ship_at(b: OrderBuilder, confirmed: int) -> int:
    """When the warehouse creates the first parcel: well inside shipment_timeout."""
    st = b.rules.shipment_timeout
    return confirmed + b.between(min(30 * MINUTE, st // 20), st * 6 // 10)


def deliver(b: OrderBuilder, created: int, sid: str) -> int:
    """DISPATCHED and DELIVERED of a parcel; returns the delivery's true time."""
    dispatched = created + b.between(15 * MINUTE, 8 * HOUR)
    b.parcel_event(dispatched, sid, "DISPATCHED")
    delivered = dispatched + b.between(6 * HOUR, 3 * DAY)
    b.parcel_event(delivered, sid, "DELIVERED")
    return delivered


def ship_order(b: OrderBuilder, confirmed: int, *, voids: bool = False) -> int:
    """Ship every ordered unit: one parcel, several at once, or a partial shipment with the
    rest days later; with ``voids`` a first label is sometimes voided and re-created.
    Returns the true time of the last delivery."""
    st = b.rules.shipment_timeout
    t = ship_at(b, confirmed)
    units = b.units()
    several = sum(units.values()) >= 2
    path = b.rng.random()
    if several and path < PARTIAL_SHIPMENT:
        now, later = b.split(units, 2)
        plan = [(t, now), (t + b.between(4 * HOUR, 2 * DAY), later)]
    elif several and path < PARTIAL_SHIPMENT + MULTI_PARCEL:
        plan = []
        for items in b.split(units, b.rng.choice((2, 2, 3))):
            plan.append((t, items))
            t += b.between(SECOND, 5 * MINUTE)
    else:
        plan = [(t, units)]
    void = voids and b.chance(LABEL_VOIDED)
    last = 0
    for i, (created, items) in enumerate(plan):
        sid = b.create_parcel(created, items)
        if i == 0 and void:
            voided = created + b.between(min(5 * MINUTE, st // 20), min(HOUR, st // 10))
            b.parcel_event(voided, sid, "CANCELLED")
            created = voided + b.between(SECOND, min(10 * MINUTE, st // 20))
            sid = b.create_parcel(created, items)
        last = max(last, deliver(b, created, sid))
    return last
