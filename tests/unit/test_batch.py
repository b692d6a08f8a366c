"""The batch evaluator: final watermarks per partition, dedup, ledger, resolution, order."""

from __future__ import annotations

from builders import CLOCK_MS, RULES, T0, canonical, commands, inv, mismatches, pay, run_stream

from streams.batch import evaluate, evaluate_order, input_progress, watermarks_of
from streams.engine import Output
from streams.model import Event, Mismatch, Status
from topology.partitioner import partition_for

L = RULES.allowed_lateness
D1 = T0 + RULES.payment_timeout


def _eval(events: list[Event], partitions: int = 1, until: int | None = None) -> list[Output]:
    return evaluate(events, RULES, partitions=partitions, until=until, clock=lambda: CLOCK_MS)


def test_final_watermark_is_the_partitions_max_minus_lateness() -> None:
    assert partition_for("o0", 2) != partition_for("o1", 2)
    events = [
        inv("RESERVED", T0, order="o0"),
        inv("RESERVED", T0, order="o1", reservation="r2"),
        pay("FAILED", D1 + L, order="o1", payment="px"),
    ]
    # partition of o1 reaches D1; o0's partition stops at T0 - L
    assert watermarks_of(input_progress(events, 2), RULES) == {
        partition_for("o0", 2): T0 - L,
        partition_for("o1", 2): D1,
    }
    assert [m.order_id for m in mismatches(_eval(events, partitions=2))] == ["o1"]
    # one partition: both orders see the watermark D1
    assert [m.order_id for m in mismatches(_eval(events))] == ["o0", "o1"]


def test_until_overrides_the_final_watermark() -> None:
    events = [inv("RESERVED", T0)]
    assert _eval(events) == []
    assert _eval(events, until=D1 - 1) == []
    assert len(mismatches(_eval(events, until=D1))) == 1
    assert watermarks_of(input_progress(events, 4), RULES, until=7) == {partition_for("o1", 4): 7}


def test_duplicates_are_evaluated_once() -> None:
    reserved = inv("RESERVED", T0)
    once, twice = _eval([reserved], until=D1), _eval([reserved, reserved, reserved], until=D1)
    assert once == twice and len(once) == 2


def test_resolution_scans_later_event_times_up_to_the_watermark() -> None:
    paid = pay("SUCCEEDED", D1 + 10)
    assert [m.status for m in mismatches(_eval([inv("RESERVED", T0), paid], until=D1 + 9))] == [
        Status.OPEN
    ]
    out = mismatches(_eval([inv("RESERVED", T0), paid], until=D1 + 10))
    assert [(m.status, m.resolved_at, m.resolved_by) for m in out] == [
        (Status.OPEN, None, None),
        (Status.RESOLVED, D1 + 10, paid.event_id),
    ]


def test_resolved_by_is_the_smallest_event_id_at_that_time() -> None:
    events = [
        inv("RESERVED", T0),
        pay("SUCCEEDED", D1 + 10, eid="zz"),
        inv("CONFIRMED", D1 + 10, eid="aa"),
    ]
    resolved = [m for m in mismatches(_eval(events, until=D1 + 10)) if m.status is Status.RESOLVED]
    assert [m.resolved_by for m in resolved] == ["aa"]


def test_output_is_ordered_by_time_then_order() -> None:
    events = [
        inv("RESERVED", T0 + 5, order="o2", reservation="r2"),
        inv("RESERVED", T0),
        pay("SUCCEEDED", D1 + 100),
    ]
    out = _eval(events, until=D1 + 1_000)
    keys = [
        (o.decided_at if o.status is Status.OPEN else o.resolved_at, o.order_id)
        for o in out
        if isinstance(o, Mismatch)
    ]
    assert keys == [(D1, "o1"), (D1 + 5, "o2"), (D1 + 100, "o1")]
    assert [type(o).__name__ for o in out[:2]] == ["Mismatch", "Command"]


def test_commands_once_per_order_ledger() -> None:
    events = [pay("SUCCEEDED", T0, "p1"), pay("SUCCEEDED", T0 + 1, "p2")]
    out = _eval(events, until=T0 + 10 * L)
    assert sorted(c.target_id for c in commands(out)) == ["p1", "p2"]


def test_evaluate_order_matches_evaluate_and_stream() -> None:
    events = [inv("RESERVED", T0), inv("RELEASED", D1 + 3), pay("SUCCEEDED", T0 + 1)]
    direct = [o for _, o in evaluate_order("o1", events, RULES, D1 + 5, lambda: CLOCK_MS)]
    assert canonical(direct) == canonical(_eval(events, until=D1 + 5))
    assert canonical(direct) == canonical(run_stream(events, until=D1 + 5))
