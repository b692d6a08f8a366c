"""The rule catalog: the table, decision derivation, decide and holds."""

from __future__ import annotations

from builders import RULES, T0, inv, pay, placed, ship

from streams.model import CommandType, MismatchType, Severity
from streams.rules.catalog import RULES as CATALOG
from streams.rules.catalog import Decision, decide, derive_decisions, holds
from streams.rules.entities import OrderView


def test_catalog_matches_the_contract_table() -> None:
    expected = [
        (MismatchType.RESERVATION_WITHOUT_PAYMENT, Severity.LOW, CommandType.RELEASE_STOCK),
        (MismatchType.PAYMENT_WITHOUT_RESERVATION, Severity.HIGH, CommandType.REFUND_PAYMENT),
        (MismatchType.PAID_NOT_SHIPPED, Severity.MEDIUM, CommandType.EXPEDITE_SHIPMENT),
        (MismatchType.SHIPPED_WITHOUT_PAYMENT, Severity.CRITICAL, CommandType.HOLD_SHIPMENT),
        (MismatchType.DUPLICATE_PAYMENT, Severity.CRITICAL, CommandType.REFUND_PAYMENT),
        (MismatchType.AMOUNT_MISMATCH, Severity.HIGH, None),
        (MismatchType.OVERSHIPMENT, Severity.HIGH, CommandType.HOLD_SHIPMENT),
        (MismatchType.REFUND_WITHOUT_RELEASE, Severity.MEDIUM, CommandType.RELEASE_STOCK),
        (MismatchType.TCC_EMPTY_ROLLBACK, Severity.LOW, None),
        (MismatchType.TCC_HANGING, Severity.MEDIUM, CommandType.RELEASE_STOCK),
        (MismatchType.PAYMENT_NOT_APPLIED, Severity.HIGH, CommandType.MARK_ORDER_PAID),
        (MismatchType.CANCELLED_BUT_CHARGED, Severity.CRITICAL, CommandType.REFUND_PAYMENT),
        (MismatchType.CANCELLED_BUT_RESERVED, Severity.MEDIUM, CommandType.RELEASE_STOCK),
        (MismatchType.CANCELLED_BUT_SHIPPED, Severity.HIGH, CommandType.HOLD_SHIPMENT),
        (MismatchType.PAID_WITHOUT_PAYMENT, Severity.CRITICAL, None),
    ]
    assert [(r.type, r.severity, r.command) for r in CATALOG.values()] == expected
    assert list(CATALOG) == list(range(1, 16))
    assert [n for n, r in CATALOG.items() if not r.resolvable] == [6, 10]


def test_derived_decision_times() -> None:
    events = [
        placed(T0 + 50),
        pay("SUCCEEDED", T0, "p1"),
        pay("REFUNDED", T0 + 10, "p1"),
        inv("RESERVED", T0 + 20, "r1"),
        inv("CONFIRMED", T0 + 30, "r1"),
        inv("RELEASED", T0 + 40, "r1"),
        ship("CREATED", T0 + 60, "s1"),
        ship("DISPATCHED", T0 + 70, "s1"),
    ]
    assert derive_decisions(events, RULES) == {
        Decision(T0 + 20 + RULES.payment_timeout, 1, "r1"),
        Decision(T0 + RULES.reservation_timeout, 2, "p1"),
        Decision(T0 + 30 + RULES.shipment_timeout, 3, "r1"),
        Decision(T0 + 60 + RULES.payment_grace, 4, "s1"),
        Decision(T0 + 70 + RULES.payment_grace, 4, "s1"),
        Decision(T0, 5, "p1"),
        Decision(T0 + 50, 6, "p1"),
        Decision(T0 + 60 + RULES.tcc_grace, 7, "s1"),
        Decision(T0 + 10 + RULES.release_timeout, 8, "p1"),
        Decision(T0 + 40 + RULES.tcc_grace, 9, "r1"),
        Decision(T0 + 20, 10, "r1"),
        Decision(T0 + 50 + RULES.callback_timeout, 11, "p1"),
    }
    assert derive_decisions([], RULES) == set()


def test_rule_1_has_one_decision_per_reservation() -> None:
    events = [inv("RESERVED", T0 + 5), inv("CONFIRMED", T0 + 9), inv("RESERVED", T0 + 7, "r2")]
    rule1 = sorted(d for d in derive_decisions(events, RULES) if d.rule == 1)
    assert rule1 == [
        Decision(T0 + 5 + RULES.payment_timeout, 1, "r1"),
        Decision(T0 + 7 + RULES.payment_timeout, 1, "r2"),
    ]


def test_decide_skips_a_decision_the_events_no_longer_call_for() -> None:
    view = OrderView("o1", [inv("RESERVED", T0)])
    assert len(decide(Decision(T0 + RULES.payment_timeout, 1, "r1"), view, RULES)) == 1
    assert decide(Decision(T0 + RULES.payment_timeout + 1, 1, "r1"), view, RULES) == []
    assert decide(Decision(T0 + RULES.payment_timeout, 1, "r9"), view, RULES) == []


def test_decide_only_looks_at_events_up_to_d() -> None:
    d = Decision(T0 + RULES.payment_timeout, 1, "r1")
    early = [inv("RESERVED", T0)]
    later = [*early, pay("SUCCEEDED", d.due + 1), inv("RESERVED", T0 + 1, "r2")]
    assert decide(d, OrderView("o1", early), RULES) == decide(d, OrderView("o1", later), RULES)


def test_holds_is_the_condition_at_a_time() -> None:
    view = OrderView("o1", [ship("CREATED", T0), pay("SUCCEEDED", T0 + 100)])
    assert holds(4, "s1", "s1", T0, view, T0 + 99)
    assert not holds(4, "s1", "s1", T0, view, T0 + 100)
    tcc = OrderView("o1", [inv("RELEASED", T0), inv("RESERVED", T0 - 1)])
    assert not holds(9, "r1", "r1", T0, tcc, T0 + 10)
    assert holds(9, "r1", "r1", T0 - 2, tcc, T0 + 10)
