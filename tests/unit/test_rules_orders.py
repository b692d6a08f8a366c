"""Rules about the order's own status: PAYMENT_NOT_APPLIED, CANCELLED_BUT_CHARGED,
CANCELLED_BUT_RESERVED, CANCELLED_BUT_SHIPPED, PAID_WITHOUT_PAYMENT; and PAID_NOT_SHIPPED
for a cancelled order."""

from __future__ import annotations

from builders import (
    RULES,
    T0,
    assert_robust,
    commands,
    inv,
    of_type,
    pay,
    placed,
    ship,
)

from streams.model import CommandType, Severity, Status

PNA = "PAYMENT_NOT_APPLIED"
CBC = "CANCELLED_BUT_CHARGED"
CBR = "CANCELLED_BUT_RESERVED"
CBS = "CANCELLED_BUT_SHIPPED"
PWP = "PAID_WITHOUT_PAYMENT"
CALLBACK = RULES.callback_timeout
RELEASE = RULES.release_timeout
GRACE = RULES.payment_grace


def cancelled(t: int) -> object:
    return placed(t, kind="CANCELLED")


def paid(t: int) -> object:
    return placed(t, kind="PAID")


def _of(types: str, out: list) -> list:  # type: ignore[type-arg]
    return [c for c in commands(out) if c.type.value == types]


# -- PAYMENT_NOT_APPLIED ---------------------------------------------------------------------


def test_pna_fires_at_the_callback_timeout_and_marks_the_order_paid() -> None:
    order = placed(T0)
    succeeded = pay("SUCCEEDED", T0 + 100, amount=3000, currency="CNY")
    out = assert_robust([order, succeeded, inv("RESERVED", T0)])
    [m] = of_type(out, PNA)
    assert (m.subject_id, m.decided_at, m.severity) == ("p1", T0 + 100 + CALLBACK, Severity.HIGH)
    assert m.evidence == (succeeded.event_id, order.event_id)
    [c] = _of("MARK_ORDER_PAID", out)
    assert (c.type, c.target_id, c.payment_id, c.amount, c.currency) == (
        CommandType.MARK_ORDER_PAID, "o1", "p1", 3000, "CNY")
    assert c.mismatch_id == m.mismatch_id and m.command_id == c.command_id


def test_pna_d_is_after_a_late_placed() -> None:
    out = assert_robust([pay("SUCCEEDED", T0), placed(T0 + 500), inv("RESERVED", T0)])
    [m] = of_type(out, PNA)
    assert m.decided_at == T0 + 500 + CALLBACK


def test_pna_paid_at_d_counts_one_after_resolves() -> None:
    base = [placed(T0), pay("SUCCEEDED", T0), inv("RESERVED", T0)]
    assert of_type(assert_robust([*base, paid(T0 + CALLBACK)]), PNA) == []
    late = paid(T0 + CALLBACK + 1)
    opened, resolved = of_type(assert_robust([*base, late]), PNA)
    assert opened.status is Status.OPEN and opened.decided_at == T0 + CALLBACK
    assert (resolved.status, resolved.resolved_at, resolved.resolved_by) == (
        Status.RESOLVED, T0 + CALLBACK + 1, late.event_id)


def test_pna_cancelled_or_refunded_order_does_not_fire() -> None:
    base = [placed(T0), pay("SUCCEEDED", T0), inv("RESERVED", T0)]
    assert of_type(assert_robust([*base, cancelled(T0 + CALLBACK)]), PNA) == []
    assert of_type(assert_robust([*base, pay("REFUNDED", T0 + CALLBACK - 1)]), PNA) == []
    refund = pay("REFUNDED", T0 + CALLBACK + 5)
    _, resolved = of_type(assert_robust([*base, refund]), PNA)
    assert resolved.resolved_by == refund.event_id


def test_pna_skips_an_order_it_has_not_seen() -> None:
    assert of_type(assert_robust([pay("SUCCEEDED", T0), inv("RESERVED", T0)]), PNA) == []


# -- CANCELLED_BUT_CHARGED -------------------------------------------------------------------


def test_cbc_payment_after_the_cancel_is_refunded_once() -> None:
    events = [placed(T0), cancelled(T0 + 100), pay("SUCCEEDED", T0 + 1_000, amount=3000)]
    out = assert_robust(events)
    [m] = of_type(out, CBC)
    assert (m.subject_id, m.decided_at, m.severity) == ("p1", T0 + 1_000 + RELEASE,
                                                         Severity.CRITICAL)
    # it is a payment without reservation too: one refund for both
    assert len(of_type(out, "PAYMENT_WITHOUT_RESERVATION")) == 1
    [refund] = _of("REFUND_PAYMENT", out)
    assert refund.target_id == "p1" and refund.amount == 3000


def test_cbc_d_follows_a_later_cancel_and_a_refund_before_it_prevents_it() -> None:
    base = [placed(T0), pay("SUCCEEDED", T0), inv("RESERVED", T0)]
    [m] = of_type(assert_robust([*base, cancelled(T0 + 2_000)]), CBC)
    assert m.decided_at == T0 + 2_000 + RELEASE
    refunded = [*base, cancelled(T0 + 2_000), pay("REFUNDED", T0 + 2_000 + RELEASE)]
    assert of_type(assert_robust(refunded), CBC) == []
    refund = pay("REFUNDED", T0 + 2_000 + RELEASE + 1)
    _, resolved = of_type(assert_robust([*base, cancelled(T0 + 2_000), refund]), CBC)
    assert (resolved.resolved_at, resolved.resolved_by) == (refund.event_time, refund.event_id)


def test_cbc_and_duplicate_payment_refund_a_payment_once() -> None:
    events = [placed(T0), inv("RESERVED", T0), pay("SUCCEEDED", T0, "p1"),
              pay("SUCCEEDED", T0 + 10, "p2"), cancelled(T0 + 20)]
    out = assert_robust(events)
    assert len(of_type(out, "DUPLICATE_PAYMENT")) == 1 and len(of_type(out, CBC)) == 2
    refunds = _of("REFUND_PAYMENT", out)
    assert sorted(c.target_id for c in refunds) == ["p1", "p2"]


# -- CANCELLED_BUT_RESERVED ------------------------------------------------------------------


def test_cbr_one_release_per_reservation_still_active() -> None:
    events = [placed(T0), inv("RESERVED", T0, "r1"), inv("RESERVED", T0, "r2"),
              inv("RELEASED", T0 + 100, "r2"), cancelled(T0 + 200)]
    out = assert_robust(events)
    [m] = of_type(out, CBR)
    assert (m.subject_id, m.decided_at, m.severity) == ("r1", T0 + 200 + RELEASE, Severity.MEDIUM)
    [c] = _of("RELEASE_STOCK", out)
    assert c.target_id == "r1"


def test_cbr_released_at_d_does_not_fire_one_after_resolves() -> None:
    base = [placed(T0), inv("RESERVED", T0, "r1"), cancelled(T0 + 200)]
    assert of_type(assert_robust([*base, inv("RELEASED", T0 + 200 + RELEASE, "r1")]), CBR) == []
    late = inv("RELEASED", T0 + 201 + RELEASE, "r1")
    _, resolved = of_type(assert_robust([*base, late]), CBR)
    assert resolved.resolved_at == late.event_time


# -- CANCELLED_BUT_SHIPPED -------------------------------------------------------------------


def test_cbs_parcel_of_a_cancelled_order_is_held() -> None:
    events = [placed(T0), pay("SUCCEEDED", T0), inv("RESERVED", T0), ship("CREATED", T0 + 100),
              cancelled(T0 + 500)]
    out = assert_robust(events)
    [m] = of_type(out, CBS)
    assert (m.subject_id, m.decided_at) == ("s1", T0 + 500 + GRACE)
    [c] = _of("HOLD_SHIPMENT", out)
    assert c.target_id == "s1"


def test_cbs_parcel_cancelled_at_d_does_not_fire_after_d_resolves() -> None:
    base = [placed(T0), pay("SUCCEEDED", T0), inv("RESERVED", T0), ship("CREATED", T0 + 100),
            cancelled(T0 + 500)]
    assert of_type(assert_robust([*base, ship("CANCELLED", T0 + 500 + GRACE)]), CBS) == []
    late = ship("CANCELLED", T0 + 501 + GRACE)
    _, resolved = of_type(assert_robust([*base, late]), CBS)
    assert resolved.resolved_by == late.event_id


def test_cbs_delivered_parcel_is_not_held() -> None:
    events = [placed(T0), pay("SUCCEEDED", T0), inv("RESERVED", T0), ship("CREATED", T0 + 100),
              ship("DELIVERED", T0 + 200), cancelled(T0 + 500)]
    assert of_type(assert_robust(events), CBS) == []


# -- PAID_WITHOUT_PAYMENT --------------------------------------------------------------------


def test_pwp_paid_order_without_money_fires_without_command() -> None:
    mark = paid(T0 + 100)
    out = assert_robust([placed(T0), pay("FAILED", T0), mark])
    [m] = of_type(out, PWP)
    assert (m.subject_id, m.decided_at, m.severity) == ("o1", T0 + 100 + GRACE,
                                                         Severity.CRITICAL)
    assert m.command_id is None and m.evidence == (mark.event_id,)


def test_pwp_payment_at_d_counts_one_after_resolves() -> None:
    base = [placed(T0), paid(T0 + 100)]
    assert of_type(assert_robust([*base, pay("SUCCEEDED", T0 + 100 + GRACE)]), PWP) == []
    late = pay("SUCCEEDED", T0 + 101 + GRACE)
    _, resolved = of_type(assert_robust([*base, late]), PWP)
    assert resolved.resolved_by == late.event_id


def test_pwp_a_paid_order_cancelled_and_refunded_is_not_paid_for_nothing() -> None:
    events = [placed(T0), pay("SUCCEEDED", T0), paid(T0 + 100), cancelled(T0 + 200),
              pay("REFUNDED", T0 + 300)]
    assert of_type(assert_robust(events), PWP) == []


# -- PAID_NOT_SHIPPED, cancelled -------------------------------------------------------------


def test_paid_not_shipped_no_longer_fires_for_a_cancelled_order() -> None:
    base = [placed(T0), pay("SUCCEEDED", T0), inv("CONFIRMED", T0), paid(T0 + 10)]
    assert len(of_type(assert_robust(base), "PAID_NOT_SHIPPED")) == 1
    out = assert_robust([*base, cancelled(T0 + 50)])
    assert of_type(out, "PAID_NOT_SHIPPED") == []
