"""Rules about payments: PAYMENT_WITHOUT_RESERVATION, DUPLICATE_PAYMENT, AMOUNT_MISMATCH,
REFUND_WITHOUT_RELEASE."""

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

from streams.model import CommandType, Event, Severity, Status

PWR = "PAYMENT_WITHOUT_RESERVATION"
DUP = "DUPLICATE_PAYMENT"
AMOUNT = "AMOUNT_MISMATCH"
RWR = "REFUND_WITHOUT_RELEASE"
D2 = T0 + RULES.reservation_timeout


# -- PAYMENT_WITHOUT_RESERVATION ------------------------------------------------------------


def test_pwr_fires_with_refund_of_the_paid_amount() -> None:
    paid = pay("SUCCEEDED", T0, "p1", amount=4200, currency="USD")
    out = assert_robust([paid])
    [m] = of_type(out, PWR)
    assert (m.subject_id, m.decided_at, m.severity) == ("p1", D2, Severity.HIGH)
    assert m.evidence == (paid.event_id,)
    assert m.details["amount"] == "4200" and m.details["currency"] == "USD"
    [c] = commands(out)
    assert (c.type, c.target_id, c.amount, c.currency) == (
        CommandType.REFUND_PAYMENT,
        "p1",
        4200,
        "USD",
    )
    assert c.mismatch_id == m.mismatch_id


def test_pwr_reservation_at_d_counts_and_one_after_does_not() -> None:
    assert of_type(assert_robust([pay("SUCCEEDED", T0), inv("RESERVED", D2)]), PWR) == []
    reserved = inv("RESERVED", D2 + 1)
    opened, resolved = of_type(assert_robust([pay("SUCCEEDED", T0), reserved]), PWR)
    assert opened.decided_at == D2
    assert (resolved.resolved_at, resolved.resolved_by) == (D2 + 1, reserved.event_id)


def test_pwr_released_reservation_is_not_active() -> None:
    events = [inv("RESERVED", T0 - 100), inv("RELEASED", T0 + 100), pay("SUCCEEDED", T0)]
    assert len(of_type(assert_robust(events), PWR)) == 1


def test_pwr_refunded_before_d_does_not_fire_after_d_resolves() -> None:
    assert of_type(assert_robust([pay("SUCCEEDED", T0), pay("REFUNDED", D2 - 1)]), PWR) == []
    refund = pay("REFUNDED", D2 + 10)
    _, resolved = of_type(assert_robust([pay("SUCCEEDED", T0), refund]), PWR)
    assert resolved.resolved_at == D2 + 10 and resolved.resolved_by == refund.event_id


def test_pwr_resolved_mismatch_is_never_opened_again() -> None:
    # p1 opens at D2, is resolved by a reservation, that reservation is released and p1
    # succeeds again (a new event): the second decision is for the same mismatch_id.
    events = [
        pay("SUCCEEDED", T0),
        inv("RESERVED", D2 + 100),
        inv("RELEASED", D2 + 200),
        pay("SUCCEEDED", D2 + 300),
    ]
    out = assert_robust(events)
    assert [m.status for m in of_type(out, PWR)] == [Status.OPEN, Status.RESOLVED]
    assert len([c for c in commands(out) if c.type is CommandType.REFUND_PAYMENT]) == 1


# -- DUPLICATE_PAYMENT -----------------------------------------------------------------------


def test_duplicate_fires_on_the_later_payment_at_its_time() -> None:
    first, second = pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 100, "p2", amount=10)
    out = assert_robust([first, second, inv("RESERVED", T0)])
    [m] = of_type(out, DUP)
    assert (m.subject_id, m.decided_at, m.severity) == ("p2", T0 + 100, Severity.CRITICAL)
    assert m.details["other_payment_id"] == "p1"
    assert m.evidence == (second.event_id, first.event_id)
    [c] = [c for c in commands(out) if c.mismatch_id == m.mismatch_id]
    assert (c.type, c.target_id, c.amount) == (CommandType.REFUND_PAYMENT, "p2", 10)


def test_duplicate_at_the_same_time_the_larger_id_is_the_duplicate() -> None:
    out = assert_robust([pay("SUCCEEDED", T0, "p2"), pay("SUCCEEDED", T0, "p1")])
    assert [m.subject_id for m in of_type(out, DUP)] == ["p2"]


def test_duplicate_refund_of_the_first_before_or_at_d_prevents_it() -> None:
    for refund_at in (T0 + 50, T0 + 100):
        events = [
            pay("SUCCEEDED", T0, "p1"),
            pay("REFUNDED", refund_at, "p1"),
            pay("SUCCEEDED", T0 + 100, "p2"),
        ]
        assert of_type(assert_robust(events), DUP) == []


def test_duplicate_resolves_when_the_duplicate_is_refunded() -> None:
    refund = pay("REFUNDED", T0 + 101, "p2")
    events = [pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 100, "p2"), refund]
    _, resolved = of_type(assert_robust(events), DUP)
    assert resolved.status is Status.RESOLVED and resolved.resolved_by == refund.event_id


def test_duplicate_and_no_reservation_refund_once() -> None:
    events = [pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 100, "p2")]
    out = assert_robust(events)
    [dup] = of_type(out, DUP)
    pwr = {m.subject_id: m for m in of_type(out, PWR)}
    refunds = [c for c in commands(out) if c.target_id == "p2"]
    assert len(refunds) == 1 and refunds[0].mismatch_id == dup.mismatch_id
    assert pwr["p2"].command_id == dup.command_id == refunds[0].command_id


# -- AMOUNT_MISMATCH -------------------------------------------------------------------------


def test_amount_mismatch_fires_without_command() -> None:
    order, paid = placed(T0, total=3000), pay("SUCCEEDED", T0 + 100, amount=2500)
    out = assert_robust([order, paid, inv("RESERVED", T0)])
    [m] = of_type(out, AMOUNT)
    assert (m.decided_at, m.severity, m.command_id) == (T0 + 100, Severity.HIGH, None)
    assert m.details["expected_amount"] == "3000" and m.details["amount"] == "2500"
    assert m.evidence == (paid.event_id, order.event_id)


def test_amount_mismatch_on_currency() -> None:
    out = assert_robust([placed(T0, currency="USD"), pay("SUCCEEDED", T0, currency="CNY")])
    assert len(of_type(out, AMOUNT)) == 1


def test_amount_match_does_not_fire() -> None:
    assert of_type(assert_robust([placed(T0), pay("SUCCEEDED", T0 + 5)]), AMOUNT) == []


def test_amount_rule_skipped_without_orders() -> None:
    assert of_type(assert_robust([pay("SUCCEEDED", T0, amount=1)]), AMOUNT) == []


def test_amount_decided_when_placed_comes_after_the_payment() -> None:
    out = assert_robust([pay("SUCCEEDED", T0, amount=1), placed(T0 + 500)])
    [m] = of_type(out, AMOUNT)
    assert m.decided_at == T0 + 500


def test_amount_uses_the_first_placed_and_never_resolves() -> None:
    events = [
        placed(T0, total=3000),
        placed(T0 + 50, total=2500),
        pay("SUCCEEDED", T0 + 100, amount=2500),
        pay("REFUNDED", T0 + 200),
    ]
    assert [m.status for m in of_type(assert_robust(events), AMOUNT)] == [Status.OPEN]


# -- REFUND_WITHOUT_RELEASE ------------------------------------------------------------------

D8 = T0 + 1_000 + RULES.release_timeout


def _refunded_with(*more: Event) -> list[Event]:
    return [pay("SUCCEEDED", T0), pay("REFUNDED", T0 + 1_000), *more]


def test_rwr_one_mismatch_and_release_per_active_reservation() -> None:
    refund = pay("REFUNDED", T0 + 1_000)
    r1 = inv("RESERVED", T0, "r1", sku="A", quantity=2)
    events = [pay("SUCCEEDED", T0), refund, r1, inv("RESERVED", T0, "r2", sku="B")]
    out = assert_robust(events)
    found = of_type(out, RWR)
    assert [(m.subject_id, m.decided_at) for m in found] == [("r1", D8), ("r2", D8)]
    assert all(m.severity is Severity.MEDIUM for m in found)
    assert found[0].evidence == (refund.event_id, r1.event_id)
    assert found[0].details["payment_id"] == "p1"
    releases = {c.target_id: c for c in commands(out) if c.type is CommandType.RELEASE_STOCK}
    assert (releases["r1"].sku, releases["r1"].quantity) == ("A", 2)
    assert set(releases) == {"r1", "r2"}


def test_rwr_released_at_d_is_excluded_one_after_resolves() -> None:
    out = assert_robust(_refunded_with(inv("RESERVED", T0), inv("RELEASED", D8)))
    assert of_type(out, RWR) == []
    released = inv("RELEASED", D8 + 1)
    _, resolved = of_type(assert_robust(_refunded_with(inv("RESERVED", T0), released)), RWR)
    assert (resolved.resolved_at, resolved.resolved_by) == (D8 + 1, released.event_id)


def test_rwr_not_when_shipped_or_another_payment_is_active() -> None:
    dispatched = [inv("RESERVED", T0), ship("CREATED", T0), ship("DISPATCHED", T0 + 10)]
    assert of_type(assert_robust(_refunded_with(*dispatched)), RWR) == []
    other = [inv("RESERVED", T0), pay("SUCCEEDED", T0 + 2_000, "p2")]
    assert of_type(assert_robust(_refunded_with(*other)), RWR) == []
    created_only = [inv("RESERVED", T0), ship("CREATED", T0)]
    assert len(of_type(assert_robust(_refunded_with(*created_only)), RWR)) == 1


def test_rwr_and_hanging_release_the_same_reservation_once() -> None:
    events = _refunded_with(inv("RELEASED", T0 - 10), inv("RESERVED", T0))
    out = assert_robust(events)
    [hanging] = of_type(out, "TCC_HANGING")
    [rwr] = of_type(out, RWR)
    [release] = [c for c in commands(out) if c.target_id == "r1"]
    assert release.mismatch_id == hanging.mismatch_id
    assert rwr.command_id == hanging.command_id == release.command_id
