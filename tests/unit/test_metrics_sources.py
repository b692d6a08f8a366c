"""Stage 2 of the metrics: SOURCE_STALLED / SOURCE_RECOVERED alerts from the partials' stalls."""

from __future__ import annotations

from typing import Any

import msgspec
from test_metrics_aggregate import counted, opened

from schemas.codec import Codec
from streams.metrics.aggregate import (
    Aggregator,
    AggregatorState,
    decode_partial,
    decode_state,
    encode,
)
from streams.metrics.sources import alert_key, duration
from streams.metrics.windows import Partial, StalledInput, WindowCounts
from streams.model import MismatchType, Severity
from streams.worker.echo import describe_alert

MIN = 60_000
HOLD = 10 * MIN  # source_hold
T = 1_795_255_200_000  # 2026-11-21T10:00:00Z, wall clock of the stalls
E = T - 3_600_000  # event times, an hour behind


def partial(p: int, *stalled: StalledInput, at: int | None = None, wm: int | None = E,
            windows: dict[int, WindowCounts] | None = None) -> Partial:
    return Partial(p, wm, False, windows or {}, list(stalled), at)


def stalled(topic: str = "inventory", last: int | None = E, since: int = T) -> StalledInput:
    return StalledInput(topic, last, since)


def feed(state: AggregatorState, *partials: Partial, now: int | None = None,
         partitions: int | None = 4) -> list[dict[str, Any]]:
    """The alerts of folding partials in (through their msgpack form, as the worker does)."""
    agg = Aggregator(MIN, 20, 21, partitions)
    alerts: list[dict[str, Any]] = []
    for p in partials:
        alerts += agg.on_partial(state, decode_partial(encode(p)), now)[1]
    return alerts


def kinds(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["kind"], a["source"]["topic"]) for a in alerts]


def test_the_first_stalled_partition_raises_one_source_stalled() -> None:
    state = AggregatorState()
    alerts = feed(state, partial(2, stalled(last=E - 5, since=T), at=T + HOLD))
    assert alerts == [{
        "alert_id": alerts[0]["alert_id"], "kind": "SOURCE_STALLED", "mismatch_type": None,
        "severity": "HIGH", "count": 1, "window_start": T, "window_end": T + HOLD,
        "sample_order_ids": [],
        "source": {"topic": "inventory", "partitions": [2], "last_event_time": E - 5,
                   "stalled_ms": HOLD},
    }]
    assert len(alerts[0]["alert_id"]) == 32


def test_a_stalled_source_is_said_once_not_per_partition_nor_again() -> None:
    state = AggregatorState()
    assert kinds(feed(state, partial(0, stalled(since=T), at=T + HOLD))) == \
        [("SOURCE_STALLED", "inventory")]
    later = [partial(0, stalled(since=T), at=T + HOLD + 1000),  # still stalled
             partial(2, stalled(since=T + 5000), at=T + HOLD + 6000),  # another partition
             partial(1, at=T + HOLD + 7000),  # a partition that is not stalled
             partial(2, stalled(since=T + 5000), at=T + HOLD + 9000)]
    assert feed(state, *later) == []
    assert sorted(state.stalls["inventory"].partitions) == [0, 2]


def test_recovered_when_the_last_stalled_partition_is_no_longer_stalled() -> None:
    state = AggregatorState()
    stall = feed(state, partial(0, stalled(last=E, since=T), at=T + HOLD),
                 partial(2, stalled(last=E + 70, since=T - 500), at=T + HOLD + 10))
    assert feed(state, partial(0, at=T + HOLD + 20_000)) == []  # partition 2 still stalled
    alerts = feed(state, partial(2, at=T + HOLD + 30_000))
    assert alerts == [{
        "alert_id": alerts[0]["alert_id"], "kind": "SOURCE_RECOVERED", "mismatch_type": None,
        "severity": "HIGH", "count": 2, "window_start": T - 500,
        "window_end": T + HOLD + 30_000, "sample_order_ids": [],
        "source": {"topic": "inventory", "partitions": [0, 2], "last_event_time": E + 70,
                   "stalled_ms": HOLD + 30_500},
    }]
    assert alerts[0]["alert_id"] not in {a["alert_id"] for a in stall}
    assert state.stalls == {}
    assert feed(state, partial(2, at=T + HOLD + 40_000)) == []


def test_topics_stall_and_recover_independently() -> None:
    state = AggregatorState()
    both = feed(state, partial(1, stalled("shipping"), stalled("inventory"), at=T + HOLD))
    assert kinds(both) == [("SOURCE_STALLED", "inventory"), ("SOURCE_STALLED", "shipping")]
    assert kinds(feed(state, partial(1, stalled("shipping"), at=T + HOLD + 1))) == \
        [("SOURCE_RECOVERED", "inventory")]
    assert kinds(feed(state, partial(1, at=T + HOLD + 2))) == [("SOURCE_RECOVERED", "shipping")]


def test_a_second_stall_is_a_new_alert_with_a_new_id() -> None:
    state = AggregatorState()
    first = feed(state, partial(0, stalled(since=T), at=T + HOLD), partial(0, at=T + HOLD + 1))
    second = feed(state, partial(0, stalled(since=T + HOLD + 5), at=T + 2 * HOLD + 5),
                  partial(0, at=T + 2 * HOLD + 9))
    assert [a["kind"] for a in first + second] == ["SOURCE_STALLED", "SOURCE_RECOVERED"] * 2
    assert len({a["alert_id"] for a in first + second}) == 4


def test_an_input_that_never_had_a_record_has_no_last_event_time() -> None:
    state = AggregatorState()
    alert = feed(state, partial(3, stalled("orders", last=None), at=T + HOLD))[0]
    assert alert["source"]["last_event_time"] is None
    feed(state, partial(1, stalled("orders", last=E), at=T + HOLD + 1))
    recovered = feed(state, partial(3, at=T + HOLD + 2), partial(1, at=T + HOLD + 3))
    assert recovered[0]["source"]["last_event_time"] == E


def test_ids_are_stable_across_runs_redeliveries_and_restarts() -> None:
    partials = [partial(0, stalled(since=T), at=T + HOLD),
                partial(1, stalled(since=T + 1), at=T + HOLD + 50),
                partial(0, at=T + HOLD + 60), partial(1, at=T + HOLD + 70)]
    straight = feed(AggregatorState(), *partials)
    assert [a["kind"] for a in straight] == ["SOURCE_STALLED", "SOURCE_RECOVERED"]
    state = AggregatorState()
    first = feed(state, *partials[:2])
    saved = encode(state)
    redelivered = feed(decode_state(saved), *partials[2:])  # a batch that was not committed
    rest = feed(decode_state(saved), *partials[2:])  # its redelivery, after a restart
    assert first + rest == straight == first + redelivered


def test_without_the_partials_clock_stage_2_uses_its_own() -> None:
    state = AggregatorState()
    assert feed(state, partial(0, stalled(since=T)), now=T + HOLD + 7)[0]["source"][
        "stalled_ms"] == HOLD + 7
    assert feed(state, partial(0), now=None)[0]["source"]["stalled_ms"] == 0  # no clock at all
    # the partial's own clock wins over the aggregator's
    assert feed(state, partial(0, stalled(since=T), at=T + HOLD), now=T + 99 * HOLD)[0][
        "window_end"] == T + HOLD


def test_source_alerts_go_out_when_the_partial_arrives_before_window_alerts() -> None:
    state = AggregatorState()
    # partition 1 of 2 has not reported: no window is final, the stall is still said
    assert kinds(feed(state, partial(0, stalled(), at=T + HOLD), partitions=2)) == \
        [("SOURCE_STALLED", "inventory")]
    three = counted(opened(MismatchType.DUPLICATE_PAYMENT, Severity.CRITICAL, 3))
    alerts = feed(state, partial(1, stalled("payments"), at=T + HOLD, wm=MIN, windows=three),
                  partitions=2)  # closes window 0 too (its 3 alerts)
    assert [a["kind"] for a in alerts] == ["SOURCE_STALLED"] + ["MISMATCH"] * 3
    alerts = feed(state, partial(0, at=T + HOLD + 1), partial(1, at=T + HOLD + 2, wm=MIN),
                  partitions=2)
    assert kinds(alerts) == [("SOURCE_RECOVERED", "inventory"),
                             ("SOURCE_RECOVERED", "payments")]


def test_a_state_written_before_source_alerts_decodes_without_stalls() -> None:
    old = msgspec.msgpack.encode({"watermarks": {0: E}, "idle": {0: False}, "pending": {},
                                  "next_emit": 0, "late_carry": 0})
    state = decode_state(old)
    assert state.stalls == {} and state.watermarks == {0: E}
    assert kinds(feed(state, partial(0, stalled(), at=T + HOLD))) == \
        [("SOURCE_STALLED", "inventory")]
    assert decode_state(encode(state)).stalls == state.stalls


def test_a_partial_written_before_stalls_and_clocks_decodes() -> None:
    old = msgspec.msgpack.encode({"partition": 1, "watermark": E, "all_idle": False,
                                  "windows": {}})
    p = decode_partial(old)
    assert (p.stalled, p.sent_at) == ([], None)


def test_source_alerts_are_avro_alerts_keyed_by_their_topic() -> None:
    state = AggregatorState()
    alerts = feed(state, partial(0, stalled("t1.inventory"), at=T + HOLD),
                  partial(0, at=T + HOLD + 1))
    codec = Codec()
    for a in alerts:
        assert codec.decode_as("Alert", codec.encode("Alert", a, "crosscheck.alerts")) == a
        assert alert_key(a) == "SOURCE:t1.inventory"
    assert alert_key({"kind": "STORM", "mismatch_type": "OVERSHIPMENT", "source": None}) == \
        "OVERSHIPMENT"


def test_echo_lines() -> None:
    state = AggregatorState()
    stall, = feed(state, partial(0, stalled(last=T - 60_000, since=T), at=T + HOLD),
                  partial(2, stalled(since=T), at=T + HOLD))
    assert describe_alert(stall) == ("ALERT    SOURCE_STALLED inventory partitions=0 "
                                     "last=2026-11-21T09:59:00.000Z stalled 10m")
    recovered = feed(state, partial(0, at=T + HOLD + 90_000), partial(2, at=T + 2 * HOLD))[0]
    assert describe_alert(recovered) == ("ALERT    SOURCE_RECOVERED inventory partitions=0,2 "
                                         "last=2026-11-21T09:59:00.000Z recovered after 20m")
    storm = {"kind": "STORM", "severity": "HIGH", "mismatch_type": "OVERSHIPMENT", "count": 30,
             "sample_order_ids": ["o1", "o2"], "source": None}
    assert describe_alert(storm) == f"ALERT    STORM    HIGH     {'OVERSHIPMENT':28} " \
        "count=30 orders=o1,o2"
    assert [duration(ms) for ms in (-5, 999, 45_000, 600_000, 630_000, 3_900_000,
                                    2 * 86_400_000 + 3 * 3_600_000)] == \
        ["0s", "0s", "45s", "10m", "10m30s", "1h05m", "2d03h"]
