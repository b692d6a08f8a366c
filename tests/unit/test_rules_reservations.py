"""Rules about reservations: RESERVATION_WITHOUT_PAYMENT, TCC_EMPTY_ROLLBACK, TCC_HANGING."""

from __future__ import annotations

from builders import (
    FAR,
    RULES,
    T0,
    assert_robust,
    commands,
    inv,
    of_type,
    pay,
    run_both,
    run_stream,
)

from streams.model import CommandType, Severity, Status
from streams.rules.ids import command_id, mismatch_id

RWP = "RESERVATION_WITHOUT_PAYMENT"
EMPTY = "TCC_EMPTY_ROLLBACK"
HANGING = "TCC_HANGING"
D1 = T0 + RULES.payment_timeout  # rule 1's decision time for a reservation at T0


# -- RESERVATION_WITHOUT_PAYMENT ------------------------------------------------------------


def test_rwp_fires_with_release_command() -> None:
    reserved = inv("RESERVED", T0, "r1", sku="SKU-9", quantity=3)
    out = assert_robust([reserved])
    [m] = of_type(out, RWP)
    assert (m.status, m.subject_id, m.decided_at, m.severity) == (
        Status.OPEN,
        "r1",
        D1,
        Severity.LOW,
    )
    assert m.mismatch_id == mismatch_id(RWP, "o1", "r1")
    assert m.evidence == (reserved.event_id,)
    assert m.details["sku"] == "SKU-9" and m.details["quantity"] == "3"
    assert m.details["trigger_time"] == "1970-01-01T00:16:40.000Z"
    [c] = commands(out)
    assert (c.type, c.target_id, c.sku, c.quantity) == (CommandType.RELEASE_STOCK, "r1", "SKU-9", 3)
    assert c.command_id == command_id("RELEASE_STOCK", "r1") == m.command_id
    assert c.mismatch_id == m.mismatch_id


def test_rwp_not_decided_before_the_watermark_reaches_d() -> None:
    out = run_both([inv("RESERVED", T0, "r1")], until=D1 - 1)
    assert of_type(out, RWP) == []
    out = run_both([inv("RESERVED", T0, "r1")], until=D1)
    assert len(of_type(out, RWP)) == 1


def test_rwp_payment_before_d_prevents_it() -> None:
    out = assert_robust([inv("RESERVED", T0), pay("SUCCEEDED", T0 + 5_000)])
    assert of_type(out, RWP) == []


def test_rwp_payment_exactly_at_d_counts() -> None:
    out = assert_robust([inv("RESERVED", T0), pay("SUCCEEDED", D1)])
    assert of_type(out, RWP) == []


def test_rwp_payment_one_ms_after_d_fires_then_resolves() -> None:
    paid = pay("SUCCEEDED", D1 + 1)
    out = assert_robust([inv("RESERVED", T0), paid])
    opened, resolved = of_type(out, RWP)
    assert opened.status is Status.OPEN and opened.decided_at == D1
    assert resolved.status is Status.RESOLVED
    assert (resolved.resolved_at, resolved.resolved_by) == (D1 + 1, paid.event_id)
    assert resolved.mismatch_id == opened.mismatch_id and resolved.decided_at == D1


def test_rwp_a_failed_payment_is_not_a_payment() -> None:
    out = assert_robust([inv("RESERVED", T0), pay("FAILED", T0 + 1_000)])
    assert len(of_type(out, RWP)) == 1


def test_rwp_released_before_d_does_not_fire() -> None:
    out = assert_robust([inv("RESERVED", T0), inv("RELEASED", D1 - 1)])
    assert of_type(out, RWP) == []


def test_rwp_released_after_d_resolves() -> None:
    released = inv("RELEASED", D1 + 500)
    out = assert_robust([inv("RESERVED", T0), released])
    _, resolved = of_type(out, RWP)
    assert (resolved.resolved_at, resolved.resolved_by) == (D1 + 500, released.event_id)


def test_rwp_trigger_is_the_first_reserved_or_confirmed() -> None:
    out = assert_robust([inv("CONFIRMED", T0), inv("RESERVED", T0 + 3_000)])
    [m] = of_type(out, RWP)
    assert m.decided_at == D1


def test_rwp_earlier_trigger_arriving_later_moves_the_decision() -> None:
    # the RESERVED at T0+500 arrives first; the one at T0+100 arrives later (not late).
    later, earlier = inv("RESERVED", T0 + 500), inv("RESERVED", T0 + 100)
    paid = pay("SUCCEEDED", T0 + 100 + RULES.payment_timeout + 200)
    out = run_stream([later, earlier, paid], until=FAR)
    opened, resolved = of_type(out, RWP)
    assert opened.decided_at == T0 + 100 + RULES.payment_timeout
    assert opened.evidence[0] == earlier.event_id
    assert resolved.resolved_by == paid.event_id
    assert out == run_both([later, earlier, paid])


def test_rwp_one_mismatch_per_reservation() -> None:
    out = assert_robust([inv("RESERVED", T0, "r1"), inv("RESERVED", T0 + 10, "r2")])
    assert sorted(m.subject_id for m in of_type(out, RWP)) == ["r1", "r2"]
    assert len(commands(out)) == 2


# -- TCC_EMPTY_ROLLBACK ----------------------------------------------------------------------


def test_empty_rollback_fires_without_command() -> None:
    released = inv("RELEASED", T0)
    out = assert_robust([released])
    [m] = of_type(out, EMPTY)
    assert (m.decided_at, m.severity, m.command_id) == (T0 + RULES.tcc_grace, Severity.LOW, None)
    assert m.evidence == (released.event_id,)
    assert commands(out) == []


def test_empty_rollback_reserved_at_the_same_time_counts() -> None:
    out = assert_robust([inv("RESERVED", T0), inv("RELEASED", T0)])
    assert of_type(out, EMPTY) == []


def test_empty_rollback_reserved_after_the_trigger_does_not_count() -> None:
    # RESERVED after the RELEASED, even before D: still an empty rollback (and hanging).
    out = assert_robust([inv("RELEASED", T0), inv("RESERVED", T0 + 1)])
    assert len(of_type(out, EMPTY)) == 1
    assert [m.status for m in of_type(out, EMPTY)] == [Status.OPEN]
    assert len(of_type(out, HANGING)) == 1


# -- TCC_HANGING -----------------------------------------------------------------------------


def test_hanging_fires_at_the_reserved_time() -> None:
    released, reserved = inv("RELEASED", T0, sku="B", quantity=2), inv("RESERVED", T0 + 100)
    out = assert_robust([released, reserved])
    [m] = of_type(out, HANGING)
    assert (m.decided_at, m.severity) == (T0 + 100, Severity.MEDIUM)
    assert m.evidence == (reserved.event_id, released.event_id)
    [c] = [c for c in commands(out) if c.mismatch_id == m.mismatch_id]
    assert (c.type, c.target_id) == (CommandType.RELEASE_STOCK, "r1")


def test_hanging_needs_a_strictly_earlier_release() -> None:
    out = assert_robust([inv("RELEASED", T0), inv("RESERVED", T0)])
    assert of_type(out, HANGING) == []


def test_hanging_never_resolves() -> None:
    out = assert_robust([inv("RELEASED", T0), inv("RESERVED", T0 + 100), inv("RELEASED", T0 + 200)])
    assert [m.status for m in of_type(out, HANGING)] == [Status.OPEN]


def test_rwp_decision_whose_trigger_moved_is_skipped() -> None:
    # Arrival: RESERVED@+500 schedules D=+10500; RESERVED@+100 (arrives later, not late)
    # moves the trigger: D=+10100. At +10100 r1 is released (no fire); at +10500 it is
    # reserved again and still unpaid, but that decision is no longer derived: skipped.
    events = [
        inv("RESERVED", T0 + 500),
        inv("RESERVED", T0 + 100),
        inv("RELEASED", T0 + 10_050),
        inv("RESERVED", T0 + 10_200),
    ]
    out = run_stream(events, until=FAR)
    assert of_type(out, RWP) == []
    assert of_type(run_both(events), RWP) == []
