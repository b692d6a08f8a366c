"""Stage 2 of the metrics: the Aggregator adds up partitions, emits each window once, alerts."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from streams.metrics.aggregate import (
    Aggregator,
    AggregatorState,
    alert_id,
    decode_partial,
    decode_state,
    encode,
)
from streams.metrics.tracker import WindowTracker
from streams.metrics.windows import Partial, PartitionWindows, WindowCounts
from streams.model import Mismatch, MismatchType, Severity, Status

MIN = 60_000
THRESHOLD = 20
LIMIT = max(THRESHOLD + 1, 10)  # what the worker uses


def aggregator(partitions: int | None = None, threshold: int = THRESHOLD) -> Aggregator:
    return Aggregator(MIN, threshold, max(threshold + 1, 10), partitions)


def feed(agg: Aggregator, state: AggregatorState, *partials: Partial
         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fold partials in (through their msgpack form, as the worker does); all outputs."""
    windows: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for partial in partials:
        w, a = agg.on_partial(state, decode_partial(encode(partial)))
        windows += w
        alerts += a
    return windows, alerts


def starts(windows: list[dict[str, Any]]) -> list[int]:
    return [w["window_start"] for w in windows]


def opened(kind: MismatchType, severity: Severity, n: int, window: int = 0,
           prefix: str = "o") -> list[Mismatch]:
    return [Mismatch(f"{kind.value}-{prefix}{i}", kind, Status.OPEN, f"{prefix}{i}", f"s{i}",
                     severity, window + i % MIN, 0, ("e",), None, {}) for i in range(n)]


def counted(mismatches: list[Mismatch], limit: int = LIMIT) -> dict[int, WindowCounts]:
    """The windows a partition's WindowTracker makes of these outputs."""
    tracker, state = WindowTracker(MIN, limit), PartitionWindows()
    tracker.on_outputs(state, list(mismatches))
    return dict(state.open)


# -- summing and emission -------------------------------------------------------------------


def test_windows_are_the_sum_over_partitions() -> None:
    agg, state = aggregator(2), AggregatorState()
    a = WindowCounts(orders_placed=2, payments_succeeded=3, payments_failed=1,
                     gmv={"CNY": 100, "USD": 5}, refunds=1, shipments_created=2,
                     mismatches_opened={"OVERSHIPMENT": 1}, mismatches_resolved=1,
                     commands_issued={"HOLD_SHIPMENT": 1}, dead_letters=2)
    b = WindowCounts(orders_placed=1, payments_succeeded=1, gmv={"CNY": 50, "EUR": 7},
                     mismatches_opened={"OVERSHIPMENT": 2, "TCC_HANGING": 1},
                     commands_issued={"RELEASE_STOCK": 1}, dead_letters=1)
    windows, _ = feed(agg, state, Partial(0, MIN, False, {0: a}), Partial(1, MIN, False, {0: b}))
    assert windows == [{
        "window_start": 0, "window_end": MIN, "orders_placed": 3, "payments_succeeded": 4,
        "payments_failed": 1, "payment_success_rate": 0.8,
        "gmv": {"CNY": 150, "EUR": 7, "USD": 5}, "refunds": 1, "shipments_created": 2,
        "mismatches_opened": {"OVERSHIPMENT": 3, "TCC_HANGING": 1}, "mismatches_resolved": 1,
        "commands_issued": {"HOLD_SHIPMENT": 1, "RELEASE_STOCK": 1}, "dead_letters": 3,
        "late_events": 0,
    }]


def test_success_rate_is_none_without_payments() -> None:
    agg, state = aggregator(1), AggregatorState()
    windows, _ = feed(agg, state, Partial(0, 2 * MIN, False, {
        0: WindowCounts(orders_placed=4), MIN: WindowCounts(payments_failed=2)}))
    assert [w["payment_success_rate"] for w in windows] == [None, 0.0]
    assert windows[0]["gmv"] == {}


def test_a_window_is_emitted_only_when_every_non_idle_partition_passed_its_end() -> None:
    agg, state = aggregator(3), AggregatorState()
    one = WindowCounts(orders_placed=1)
    assert feed(agg, state, Partial(0, 3 * MIN, False, {0: one, MIN: one, 2 * MIN: one})) \
        == ([], [])
    assert feed(agg, state, Partial(1, MIN - 1, False, {})) == ([], [])
    assert feed(agg, state, Partial(2, 5 * MIN, False, {0: one})) == ([], [])
    windows, _ = feed(agg, state, Partial(1, MIN, False, {0: one}))
    assert starts(windows) == [0]
    assert windows[0]["orders_placed"] == 3
    windows, _ = feed(agg, state, Partial(1, 2 * MIN + 5, False, {MIN: one}))
    assert starts(windows) == [MIN]
    assert windows[0]["orders_placed"] == 2
    # partition 1 goes idle: it no longer holds the others back
    windows, _ = feed(agg, state, Partial(1, 2 * MIN + 5, True, {}))
    assert starts(windows) == [2 * MIN]
    assert state.next_emit == 3 * MIN


def test_the_watermark_of_a_partition_never_moves_backwards() -> None:
    agg, state = aggregator(1), AggregatorState()
    feed(agg, state, Partial(0, 2 * MIN, False, {0: WindowCounts(orders_placed=1)}))
    feed(agg, state, Partial(0, MIN, False, {}))
    assert state.watermarks == {0: 2 * MIN}


def test_when_every_partition_is_idle_the_furthest_one_counts() -> None:
    agg, state = aggregator(2), AggregatorState()
    one = WindowCounts(orders_placed=1)
    feed(agg, state, Partial(0, MIN, True, {0: one}))
    windows, _ = feed(agg, state, Partial(1, 3 * MIN, True, {0: one, 2 * MIN: one}))
    assert starts(windows) == [0, MIN, 2 * MIN]
    assert [w["orders_placed"] for w in windows] == [2, 0, 1]


def test_an_empty_idle_partition_does_not_hold_windows_back() -> None:
    agg, state = aggregator(2), AggregatorState()
    one = WindowCounts(orders_placed=1)
    assert feed(agg, state, Partial(0, 2 * MIN, False, {0: one})) == ([], [])
    windows, _ = feed(agg, state, Partial(1, None, True, {}))  # no data at all, idle
    assert starts(windows) == [0, MIN]


def test_nothing_is_final_before_every_partition_reported() -> None:
    agg, state = aggregator(2), AggregatorState()
    one = WindowCounts(orders_placed=1)
    assert feed(agg, state, Partial(0, 3 * MIN, False, {MIN: one, 2 * MIN: one})) == ([], [])
    # partition 1 reports later, with an earlier window: it is not late
    windows, _ = feed(agg, state, Partial(1, 3 * MIN, False, {0: one, MIN: one}))
    assert starts(windows) == [0, MIN, 2 * MIN]
    assert [w["orders_placed"] for w in windows] == [1, 2, 1]
    assert sum(w["late_events"] for w in windows) == 0


def test_without_a_partition_count_only_reporting_partitions_count() -> None:
    agg, state = aggregator(None), AggregatorState()
    windows, _ = feed(agg, state, Partial(0, 2 * MIN, False, {0: WindowCounts(refunds=1)}))
    assert starts(windows) == [0, MIN]


def test_each_window_once_in_order_with_empty_windows() -> None:
    agg, state = aggregator(2), AggregatorState()
    one = WindowCounts(shipments_created=1)
    emitted: list[dict[str, Any]] = []
    steps = [Partial(0, MIN, False, {0: one}), Partial(1, 30_000, False, {}),
             Partial(1, 4 * MIN, False, {0: one, 3 * MIN: one}),
             Partial(0, 4 * MIN, False, {}), Partial(0, 4 * MIN, False, {}),
             Partial(1, 6 * MIN + 1, False, {5 * MIN: one}),
             Partial(0, 6 * MIN, False, {5 * MIN: one})]
    for step in steps:
        windows, _ = feed(agg, state, step)
        emitted += windows
    assert starts(emitted) == [0, MIN, 2 * MIN, 3 * MIN, 4 * MIN, 5 * MIN]
    assert [w["shipments_created"] for w in emitted] == [2, 0, 0, 1, 0, 2]
    assert all(w["window_end"] == w["window_start"] + MIN for w in emitted)
    empty = emitted[1]
    assert (empty["orders_placed"], empty["gmv"], empty["mismatches_opened"],
            empty["payment_success_rate"]) == (0, {}, {}, None)
    assert feed(agg, state, Partial(1, 6 * MIN + 2, False, {})) == ([], [])


def test_a_late_partial_counts_as_late_events_in_the_next_window() -> None:
    agg, state = aggregator(2), AggregatorState()
    feed(agg, state, Partial(0, 2 * MIN, True, {0: WindowCounts(orders_placed=1)}),
         Partial(1, 2 * MIN, False, {0: WindowCounts(orders_placed=1)}))
    assert state.next_emit == 2 * MIN
    # partition 0 was idle; its tail window 1 min arrives after window 1 min was emitted
    late = WindowCounts(orders_placed=2, payments_succeeded=1, gmv={"CNY": 10},
                        shipments_created=1, late_events=1, dead_letters=1,
                        mismatches_opened={"AMOUNT_MISMATCH": 1}, mismatches_resolved=1,
                        commands_issued={"HOLD_SHIPMENT": 1})
    assert feed(agg, state, Partial(0, 2 * MIN, False, {MIN: late})) == ([], [])
    windows, _ = feed(agg, state, Partial(0, 3 * MIN, False, {2 * MIN: WindowCounts(refunds=1)}),
                      Partial(1, 3 * MIN, False, {}))
    assert starts(windows) == [2 * MIN]
    w = windows[0]
    assert w["late_events"] == 5  # 2 + 1 + 1 events, and the late event already counted
    assert (w["orders_placed"], w["payments_succeeded"], w["gmv"], w["shipments_created"],
            w["refunds"]) == (0, 0, {}, 0, 1)
    # the outputs are not lost: counted like stage 1 counts outputs of a closed window
    assert (w["mismatches_opened"], w["mismatches_resolved"], w["commands_issued"],
            w["dead_letters"]) == ({"AMOUNT_MISMATCH": 1}, 1, {"HOLD_SHIPMENT": 1}, 1)


def test_alerts_of_a_late_partial_are_raised_with_the_next_window() -> None:
    agg, state = aggregator(1), AggregatorState()
    feed(agg, state, Partial(0, 2 * MIN, False, {0: WindowCounts()}))
    late = counted(opened(MismatchType.DUPLICATE_PAYMENT, Severity.CRITICAL, 2))[0]
    feed(agg, state, Partial(0, 2 * MIN, False, {0: late}))
    windows, alerts = feed(agg, state, Partial(0, 3 * MIN, False, {}))
    assert starts(windows) == [2 * MIN]
    assert [(a["kind"], a["window_start"]) for a in alerts] == [("MISMATCH", 2 * MIN)] * 2


def test_state_survives_a_restart_mid_way() -> None:
    one = WindowCounts(orders_placed=1)
    partials = [Partial(0, MIN, False, {0: one}), Partial(1, 2 * MIN, False, {0: one, MIN: one}),
                Partial(0, 3 * MIN, False, {MIN: one, 2 * MIN: one}),
                Partial(1, 3 * MIN, False, {2 * MIN: one})]
    straight, _ = feed(aggregator(2), AggregatorState(), *partials)
    state = AggregatorState()
    first, _ = feed(aggregator(2), state, *partials[:2])
    state = decode_state(encode(state))
    rest, _ = feed(aggregator(2), state, *partials[2:])
    assert first + rest == straight
    assert starts(straight) == [0, MIN, 2 * MIN]


# -- alerts ---------------------------------------------------------------------------------


def test_five_high_mismatches_of_one_type_make_five_single_alerts() -> None:
    agg, state = aggregator(1), AggregatorState()
    windows, alerts = feed(agg, state, Partial(0, MIN, False, counted(
        opened(MismatchType.AMOUNT_MISMATCH, Severity.HIGH, 5))))
    assert windows[0]["mismatches_opened"] == {"AMOUNT_MISMATCH": 5}
    assert len(alerts) == 5
    assert {a["kind"] for a in alerts} == {"MISMATCH"}
    assert {a["mismatch_type"] for a in alerts} == {"AMOUNT_MISMATCH"}
    assert {a["severity"] for a in alerts} == {"HIGH"}
    assert {a["count"] for a in alerts} == {1}
    assert sorted(o for a in alerts for o in a["sample_order_ids"]) == [f"o{i}" for i in range(5)]
    assert all((a["window_start"], a["window_end"]) == (0, MIN) for a in alerts)
    assert len({a["alert_id"] for a in alerts}) == 5


def test_a_hundred_mismatches_of_one_type_make_one_storm_alert() -> None:
    agg, state = aggregator(4), AggregatorState()
    storm = opened(MismatchType.SHIPPED_WITHOUT_PAYMENT, Severity.CRITICAL, 100)
    singles = opened(MismatchType.OVERSHIPMENT, Severity.HIGH, 2, prefix="x")
    parts = [Partial(p, MIN, False, counted([m for i, m in enumerate(storm) if i % 4 == p]
                                           + (singles if p == 0 else [])))
             for p in range(4)]
    windows, alerts = feed(agg, state, *parts)
    assert windows[0]["mismatches_opened"] == {"SHIPPED_WITHOUT_PAYMENT": 100, "OVERSHIPMENT": 2}
    storms = [a for a in alerts if a["mismatch_type"] == "SHIPPED_WITHOUT_PAYMENT"]
    assert len(storms) == 1  # and no single alert of that type
    s = storms[0]
    assert (s["kind"], s["severity"], s["count"], s["window_start"], s["window_end"]) == \
        ("STORM", "CRITICAL", 100, 0, MIN)
    assert 1 <= len(s["sample_order_ids"]) <= 10
    assert len(set(s["sample_order_ids"])) == len(s["sample_order_ids"])
    assert set(s["sample_order_ids"]) <= {m.order_id for m in storm}
    # other types of the same window still alert one by one
    assert sorted((a["kind"], a["sample_order_ids"][0]) for a in alerts
                  if a["mismatch_type"] == "OVERSHIPMENT") == [("MISMATCH", "x0"),
                                                                ("MISMATCH", "x1")]


@pytest.mark.parametrize(("n", "kinds"), [(THRESHOLD, ["MISMATCH"] * THRESHOLD),
                                          (THRESHOLD + 1, ["STORM"])])
def test_storm_threshold_boundary(n: int, kinds: list[str]) -> None:
    agg, state = aggregator(1), AggregatorState()
    _, alerts = feed(agg, state, Partial(0, MIN, False, counted(
        opened(MismatchType.PAYMENT_WITHOUT_RESERVATION, Severity.HIGH, n))))
    assert [a["kind"] for a in alerts] == kinds
    if kinds == ["STORM"]:
        assert alerts[0]["count"] == n
        assert len(alerts[0]["sample_order_ids"]) == 10


def test_the_storm_threshold_counts_per_window_and_type() -> None:
    agg, state = aggregator(1), AggregatorState()
    first = opened(MismatchType.DUPLICATE_PAYMENT, Severity.CRITICAL, THRESHOLD, 0, "a")
    second = opened(MismatchType.DUPLICATE_PAYMENT, Severity.CRITICAL, THRESHOLD, MIN, "b")
    other = opened(MismatchType.AMOUNT_MISMATCH, Severity.HIGH, THRESHOLD, 0, "c")
    _, alerts = feed(agg, state, Partial(0, 2 * MIN, False, counted(first + second + other)))
    assert len(alerts) == 3 * THRESHOLD
    assert {a["kind"] for a in alerts} == {"MISMATCH"}


@pytest.mark.parametrize("severity", [Severity.MEDIUM, Severity.LOW])
@pytest.mark.parametrize("n", [1, 5, 100])
def test_medium_and_low_mismatches_never_alert(severity: Severity, n: int) -> None:
    agg, state = aggregator(1), AggregatorState()
    windows, alerts = feed(agg, state, Partial(0, MIN, False, counted(
        opened(MismatchType.PAID_NOT_SHIPPED, severity, n))))
    assert windows[0]["mismatches_opened"] == {"PAID_NOT_SHIPPED": n}
    assert alerts == []


def test_alert_ids_are_stable() -> None:
    def run() -> list[dict[str, Any]]:
        agg, state = aggregator(1), AggregatorState()
        mismatches = (opened(MismatchType.AMOUNT_MISMATCH, Severity.HIGH, 3)
                      + opened(MismatchType.OVERSHIPMENT, Severity.HIGH, 30, MIN, "x"))
        return feed(agg, state, Partial(0, 2 * MIN, False, counted(mismatches)))[1]

    first, second = run(), run()
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in second]
    singles = [a for a in first if a["kind"] == "MISMATCH"]
    assert [a["alert_id"] for a in singles] == \
        [alert_id("MISMATCH", f"AMOUNT_MISMATCH-o{i}") for i in range(3)]
    (storm,) = [a for a in first if a["kind"] == "STORM"]
    assert storm["alert_id"] == alert_id("STORM", "OVERSHIPMENT", MIN)
    assert storm["alert_id"] != alert_id("STORM", "OVERSHIPMENT", 2 * MIN)
    assert len({a["alert_id"] for a in first}) == len(first)


def test_mismatches_decided_without_a_stalled_input_raise_no_alert() -> None:
    """A stalled source is one root cause, said once by SOURCE_STALLED: the mismatches
    decided without it are counted in the window but raise neither single nor STORM
    alerts; the others of the type still alert as they would alone."""
    agg, state = aggregator(1), AggregatorState()
    without = [msgspec.structs.replace(m, details={"decided_without": "inventory"}) for m in
               opened(MismatchType.PAYMENT_WITHOUT_RESERVATION, Severity.HIGH, 50, prefix="w")]
    alone = opened(MismatchType.PAYMENT_WITHOUT_RESERVATION, Severity.HIGH, 2)
    windows, alerts = feed(agg, state, Partial(0, MIN, False, counted([*without, *alone])))
    assert windows[0]["mismatches_opened"] == {"PAYMENT_WITHOUT_RESERVATION": 52}
    assert sorted((a["kind"], a["sample_order_ids"][0]) for a in alerts) == [
        ("MISMATCH", "o0"), ("MISMATCH", "o1")]
