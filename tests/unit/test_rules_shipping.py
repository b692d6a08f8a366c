"""Rules about shipments: PAID_NOT_SHIPPED, SHIPPED_WITHOUT_PAYMENT, OVERSHIPMENT."""

from __future__ import annotations

from builders import (
    RULES,
    T0,
    assert_robust,
    commands,
    inv,
    of_type,
    pay,
    ship,
)

from streams.model import CommandType, Severity, Status

PNS = "PAID_NOT_SHIPPED"
SWP = "SHIPPED_WITHOUT_PAYMENT"
OVER = "OVERSHIPMENT"
D3 = T0 + 100 + RULES.shipment_timeout
D4 = T0 + RULES.payment_grace
D7 = T0 + RULES.tcc_grace

PAID_AND_CONFIRMED = [pay("SUCCEEDED", T0), inv("RESERVED", T0), inv("CONFIRMED", T0 + 100)]


# -- PAID_NOT_SHIPPED ------------------------------------------------------------------------


def test_pns_fires_on_the_order_with_expedite() -> None:
    out = assert_robust(PAID_AND_CONFIRMED)
    [m] = of_type(out, PNS)
    assert (m.subject_id, m.decided_at, m.severity) == ("o1", D3, Severity.MEDIUM)
    assert m.evidence[0] == PAID_AND_CONFIRMED[2].event_id
    assert m.details["reservation_id"] == "r1" and m.details["payment_ids"] == "p1"
    [c] = commands(out)
    assert (c.type, c.target_id) == (CommandType.EXPEDITE_SHIPMENT, "o1")


def test_pns_shipment_at_d_counts_one_after_resolves() -> None:
    assert of_type(assert_robust([*PAID_AND_CONFIRMED, ship("CREATED", D3)]), PNS) == []
    created = ship("CREATED", D3 + 1)
    _, resolved = of_type(assert_robust([*PAID_AND_CONFIRMED, created]), PNS)
    assert (resolved.resolved_at, resolved.resolved_by) == (D3 + 1, created.event_id)


def test_pns_needs_an_active_payment_and_an_active_reservation() -> None:
    unpaid = [inv("RESERVED", T0), inv("CONFIRMED", T0 + 100)]
    assert of_type(assert_robust(unpaid), PNS) == []
    released = [*PAID_AND_CONFIRMED, inv("RELEASED", T0 + 200)]
    assert of_type(assert_robust(released), PNS) == []
    refunded = [*PAID_AND_CONFIRMED, pay("REFUNDED", D3 - 1)]
    assert of_type(assert_robust(refunded), PNS) == []


def test_pns_cancelled_shipment_is_not_live() -> None:
    events = [*PAID_AND_CONFIRMED, ship("CREATED", T0 + 200), ship("CANCELLED", T0 + 300)]
    assert len(of_type(assert_robust(events), PNS)) == 1


# -- SHIPPED_WITHOUT_PAYMENT -----------------------------------------------------------------


def test_swp_fires_with_hold() -> None:
    created = ship("CREATED", T0)
    out = assert_robust([created, inv("RESERVED", T0)])
    [m] = of_type(out, SWP)
    assert (m.subject_id, m.decided_at, m.severity) == ("s1", D4, Severity.CRITICAL)
    assert m.evidence == (created.event_id,) and m.details["shipment_state"] == "CREATED"
    [c] = [c for c in commands(out) if c.mismatch_id == m.mismatch_id]
    assert (c.type, c.target_id) == (CommandType.HOLD_SHIPMENT, "s1")


def test_swp_payment_at_d_counts_one_after_resolves() -> None:
    assert of_type(assert_robust([ship("CREATED", T0), pay("SUCCEEDED", D4)]), SWP) == []
    paid = pay("SUCCEEDED", D4 + 1)
    _, resolved = of_type(assert_robust([ship("CREATED", T0), paid]), SWP)
    assert (resolved.resolved_at, resolved.resolved_by) == (D4 + 1, paid.event_id)


def test_swp_cancelled_shipment_resolves() -> None:
    cancelled = ship("CANCELLED", D4 + 50)
    _, resolved = of_type(assert_robust([ship("CREATED", T0), cancelled]), SWP)
    assert resolved.resolved_by == cancelled.event_id


def test_swp_dispatched_after_a_refund_triggers_again() -> None:
    events = [
        inv("RESERVED", T0),
        ship("CREATED", T0),
        pay("SUCCEEDED", T0 + 1_000),
        pay("REFUNDED", T0 + 5_000),
        ship("DISPATCHED", T0 + 6_000),
    ]
    [m] = of_type(assert_robust(events), SWP)
    assert m.decided_at == T0 + 6_000 + RULES.payment_grace


# -- OVERSHIPMENT ----------------------------------------------------------------------------


def test_overshipment_fires_with_sku_facts() -> None:
    created = ship("CREATED", T0, items=[("A", 2)])
    reserved = inv("RESERVED", T0, sku="A", quantity=1)
    out = assert_robust([pay("SUCCEEDED", T0), reserved, created])
    [m] = of_type(out, OVER)
    assert (m.decided_at, m.severity) == (D7, Severity.HIGH)
    assert (m.details["sku"], m.details["shipped"], m.details["reserved"]) == ("A", "2", "1")
    assert m.evidence == (created.event_id, reserved.event_id)
    [c] = [c for c in commands(out) if c.mismatch_id == m.mismatch_id]
    assert (c.type, c.target_id) == (CommandType.HOLD_SHIPMENT, "s1")


def test_overshipment_counts_all_live_shipments_and_active_reservations() -> None:
    base = [pay("SUCCEEDED", T0), inv("RESERVED", T0, "r1", quantity=2)]
    fits = [ship("CREATED", T0, "s1"), ship("CREATED", T0 + 1, "s2")]
    assert of_type(assert_robust(base + fits), OVER) == []
    too_many = [*fits, ship("CREATED", D7 + 10, "s3")]
    assert [m.subject_id for m in of_type(assert_robust(base + too_many), OVER)] == ["s3"]
    # every shipment created within tcc_grace of the third is judged with all three live
    crowded = [*fits, ship("CREATED", T0 + 2, "s3")]
    found = of_type(assert_robust(base + crowded), OVER)
    assert [m.subject_id for m in found] == ["s1", "s2", "s3"]


def test_overshipment_reservation_at_d_counts_one_after_resolves() -> None:
    base = [
        pay("SUCCEEDED", T0),
        ship("CREATED", T0, items=[("A", 1), ("B", 1)]),
        inv("RESERVED", T0, "r1", sku="A"),
    ]
    assert of_type(assert_robust([*base, inv("RESERVED", D7, "r2", sku="B")]), OVER) == []
    late_stock = inv("RESERVED", D7 + 1, "r2", sku="B")
    opened, resolved = of_type(assert_robust([*base, late_stock]), OVER)
    assert opened.details["sku"] == "B"
    assert resolved.status is Status.RESOLVED and resolved.resolved_by == late_stock.event_id


def test_overshipment_and_swp_hold_the_shipment_once() -> None:
    out = assert_robust([ship("CREATED", T0, items=[("A", 1)])])
    [swp], [over] = of_type(out, SWP), of_type(out, OVER)
    holds = [c for c in commands(out) if c.type is CommandType.HOLD_SHIPMENT]
    assert len(holds) == 1 and holds[0].mismatch_id == swp.mismatch_id
    assert over.command_id == swp.command_id
