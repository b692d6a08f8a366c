"""The JSON documents of the web endpoints and the recent-mismatch map (no Faust, no Kafka)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from builders import FAR, RULES, T0, inv, pay, placed, run_stream

from schemas.validation import format_time
from streams.engine import MemoryStore
from streams.metrics.aggregate import Aggregator
from streams.metrics.windows import WindowCounts
from streams.model import Mismatch, MismatchType, Severity, Status
from streams.web.documents import (
    event_json,
    health_doc,
    lag_doc,
    order_doc,
    summary_doc,
    watermarks_doc,
    windows_doc,
)
from streams.web.inputs import InputRow, held_doc, input_rows, inputs_doc, merged_state
from streams.web.probe import PartitionLag, Probe
from streams.web.recent import RecentMismatches
from streams.worker.runtime_types import Counters
from topology.topics import Topology

SERVED = {"worker_id": "w1", "url": "http://127.0.0.1:6066"}


def _mismatch(mid: str, status: Status = Status.OPEN, mtype: MismatchType =
              MismatchType.AMOUNT_MISMATCH, order: str = "o1") -> Mismatch:
    return Mismatch(mid, mtype, status, order, "p1", Severity.HIGH, T0, T0 + 5, ("e1",), None,
                    {"amount": "1"}, T0 + 9 if status is Status.RESOLVED else None,
                    "e9" if status is Status.RESOLVED else None)


# -- recent mismatches --------------------------------------------------------------------


def test_recent_keeps_the_latest_status_newest_first() -> None:
    recent = RecentMismatches(capacity=10)
    recent.add(_mismatch("m1"))
    recent.add(_mismatch("m2", mtype=MismatchType.TCC_HANGING, order="o2"))
    recent.add(_mismatch("m1", Status.RESOLVED))
    assert len(recent) == 2
    assert [m["mismatch_id"] for m in recent.query()] == ["m1", "m2"]  # m1 updated last
    m1 = recent.get("m1")
    assert m1 is not None and m1["status"] == "RESOLVED"
    assert m1["resolved_at"] == format_time(T0 + 9) and m1["decided_at"] == format_time(T0)
    assert [m["mismatch_id"] for m in recent.query(status="OPEN")] == ["m2"]
    assert [m["mismatch_id"] for m in recent.query(mtype="TCC_HANGING")] == ["m2"]
    assert [m["mismatch_id"] for m in recent.query(order_id="o1")] == ["m1"]
    assert len(recent.query(limit=1)) == 1
    assert recent.counts() == {"RESOLVED": {"AMOUNT_MISMATCH": 1}, "OPEN": {"TCC_HANGING": 1}}


def test_recent_is_bounded_oldest_update_first_out() -> None:
    recent = RecentMismatches(capacity=3)
    for i in range(5):
        recent.add(_mismatch(f"m{i}"))
    recent.add(_mismatch("m2", Status.RESOLVED))  # refreshed: survives the next eviction
    recent.add(_mismatch("m5"))
    assert [m["mismatch_id"] for m in recent.query()] == ["m5", "m2", "m4"]


# -- /orders/{id} -------------------------------------------------------------------------


def test_order_doc_joins_events_pending_and_ledger() -> None:
    store = MemoryStore()
    events = [placed(T0, total=3000), inv("RESERVED", T0 + 1), pay("SUCCEEDED", T0 + 2,
                                                                    amount=2500)]
    out = run_stream(events, store=store, until=T0 + 100)
    opened = [o for o in out if isinstance(o, Mismatch)]
    assert [m.type for m in opened] == [MismatchType.AMOUNT_MISMATCH]
    recent = RecentMismatches()
    recent.add(opened[0])
    state = store.state("o1")
    assert state is not None
    doc = order_doc(state, 3, recent, SERVED, RULES, T0 + 100)
    assert doc["order_id"] == "o1" and doc["partition"] == 3 and doc["served_by"] == SERVED
    assert [e["event_id"] for e in doc["events"]] == [e.event_id for e in events]
    assert doc["events"][2] == {"source": "payments", "event_id": events[2].event_id,
                                "type": "SUCCEEDED", "event_time": format_time(T0 + 2),
                                "entity_id": "p1", "amount": 2500, "currency": "CNY"}
    [m] = doc["mismatches"]
    assert m["mismatch_id"] == opened[0].mismatch_id and m["status"] == "OPEN"
    assert m["decided_at"] == format_time(opened[0].decided_at)
    assert m["detected_at"] == format_time(opened[0].detected_at)  # remembered by the worker
    assert m["frozen"] is False
    assert doc["open_mismatches"] == 1 and doc["history_evicted"] is False
    # decisions still waiting for the watermark, with their rule names
    assert {p["rule"] for p in doc["pending"] if p["kind"] == "DECIDE"} >= \
        {"RESERVATION_WITHOUT_PAYMENT"}
    assert all(p["due"].endswith("Z") for p in doc["pending"])
    # a worker that does not remember the emission: detected_at is unknown
    forgotten = order_doc(state, 3, RecentMismatches(), SERVED, RULES, T0 + 100)
    assert forgotten["mismatches"][0]["detected_at"] is None


def test_order_doc_after_eviction_keeps_the_ledger() -> None:
    store = MemoryStore()
    run_stream([placed(T0), inv("RESERVED", T0 + 1)], store=store, until=FAR)
    state = store.state("o1")
    assert state is not None
    doc = order_doc(state, 0, RecentMismatches(), SERVED, RULES, FAR)
    assert doc["events"] == [] and doc["history_evicted"] is True
    assert [m["type"] for m in doc["mismatches"]] == ["RESERVATION_WITHOUT_PAYMENT"]
    assert doc["mismatches"][0]["decided_at"] == format_time(T0 + 1 + RULES.payment_timeout)


def test_order_doc_shows_the_order_marked_paid() -> None:
    store = MemoryStore()
    events = [placed(T0), pay("SUCCEEDED", T0 + 2), placed(T0 + 3, kind="PAID"),
              placed(T0 + 9, kind="CANCELLED")]
    run_stream(events, store=store, until=T0 + 100)
    state = store.state("o1")
    assert state is not None
    doc = order_doc(state, 0, RecentMismatches(), SERVED, RULES, T0 + 100)
    assert [(e["source"], e["type"]) for e in doc["events"]] == [
        ("orders", "PLACED"), ("payments", "SUCCEEDED"), ("orders", "PAID"),
        ("orders", "CANCELLED")]
    assert doc["events"][2]["event_time"] == format_time(T0 + 3)


def test_event_json_has_items_and_no_empty_fields() -> None:
    body = event_json(placed(T0, total=1200, currency="USD"))
    assert body["items"] == [{"sku": "A", "quantity": 1, "unit_price": 1200}]
    assert body["total_amount"] == 1200 and body["currency"] == "USD"
    assert "amount" not in body and "sku" not in body


# -- /health pieces ------------------------------------------------------------------------


def test_lag_doc_sums_what_is_known() -> None:
    doc = lag_doc([PartitionLag("payments", 0, 10, 7), PartitionLag("payments", 1, 5, 5),
                   PartitionLag("orders", 0, None, 3)])
    assert doc["records"] == 3 and doc["complete"] is False
    assert [r["lag"] for r in doc["partitions"]] == [3, 0, None]
    assert lag_doc([])["complete"] is True


def test_watermarks_doc_ages_in_seconds() -> None:
    doc = watermarks_doc({1: T0, 0: None}, T0 + 90_500)
    assert doc == [
        {"partition": 0, "watermark": None, "watermark_ms": None, "age_seconds": None},
        {"partition": 1, "watermark": format_time(T0), "watermark_ms": T0, "age_seconds": 90.5},
    ]


# -- inputs and held commands --------------------------------------------------------------


def test_merged_state_prefers_the_engines_release_then_the_tickers_stall() -> None:
    assert merged_state("released", None) == "released"
    assert merged_state("released", "quiet") == "released"
    assert merged_state("quiet", "stalled") == "stalled"
    assert merged_state("quiet", "released") == "stalled"  # the release is not applied yet
    assert merged_state("active", "stalled") == "stalled"
    assert merged_state("quiet", "quiet") == "quiet"
    assert merged_state("quiet", None) == "quiet"
    assert merged_state("never seen", None) == "never seen"
    assert merged_state("active", None) == "active"


def _input_states() -> dict[int, dict[str, Any]]:
    def inp(progress: int | None, state: str, lag: int | None = 0) -> dict[str, Any]:
        return {"progress": progress, "state": state, "lag": lag}

    return {
        0: {"watermark": T0, "all_quiet": False, "held_commands": 1, "inputs": {
            "orders": inp(T0 + 5, "active", 3), "payments": inp(T0 + 4, "quiet"),
            "inventory": inp(T0 + 1, "released"), "shipping": inp(None, "never seen", None)}},
        1: {"watermark": None, "all_quiet": True, "held_commands": 0, "inputs": {
            "orders": inp(T0, "quiet"), "payments": inp(T0, "active")}},
    }


STALLS = {("payments", 0): ("stalled", T0 + 7_000), ("inventory", 0): ("released", T0 + 2_000),
          ("orders", 1): ("quiet", T0 + 1_000), ("payments", 1): ("quiet", T0 + 1_500)}


def test_input_rows_merge_the_engine_and_the_ticker() -> None:
    rows = input_rows(_input_states(), STALLS)
    assert rows == [
        InputRow("inventory", 0, T0 + 1, 0, "released", T0 + 2_000),
        InputRow("orders", 0, T0 + 5, 3, "active", None),
        InputRow("payments", 0, T0 + 4, 0, "stalled", T0 + 7_000),
        InputRow("shipping", 0, None, None, "never seen", None),
        InputRow("orders", 1, T0, 0, "quiet", T0 + 1_000),
        # the ticker saw it quiet, the engine has not applied the tick yet: still active
        InputRow("payments", 1, T0, 0, "active", None),
    ]


def test_inputs_doc_has_iso_and_ms_times_and_durations() -> None:
    [row] = inputs_doc([InputRow("payments", 0, T0 + 4, 0, "stalled", T0 + 7_000)],
                       T0 + 67_000)
    assert row == {"topic": "payments", "partition": 0, "progress": format_time(T0 + 4),
                   "progress_ms": T0 + 4, "lag": 0, "state": "stalled",
                   "since": format_time(T0 + 7_000), "since_ms": T0 + 7_000,
                   "for_seconds": 60.0}
    [never] = inputs_doc([InputRow("shipping", 2, None, None, "never seen", None)], T0)
    assert never["progress"] is None and never["since"] is None and never["for_seconds"] is None


def _held(cid: str, decided: int, waits: list[str]) -> dict[str, Any]:
    return {"command_id": cid, "type": "REFUND_PAYMENT", "order_id": f"o-{cid}",
            "target_id": "p1", "mismatch_id": f"m-{cid}", "decided_at": decided,
            "waits_for": waits, "held_at": T0 + 10_000}


HELD = {0: [_held("c2", T0 + 2, ["inventory", "payments"])],
        3: [_held("c1", T0 + 1, ["shipping"]), _held("c3", T0 + 3, ["orders"])]}


def test_held_doc_counts_all_and_lists_the_oldest_decisions() -> None:
    doc = held_doc(HELD, T0 + 40_000, shown=2)
    assert doc["count"] == 3
    assert [(h["partition"], h["command_id"]) for h in doc["oldest"]] == [(3, "c1"), (0, "c2")]
    first = doc["oldest"][0]
    assert first["decided_at"] == format_time(T0 + 1)
    assert first["held_at"] == format_time(T0 + 10_000) and first["held_seconds"] == 30.0
    assert first["waits_for"] == ["shipping"] and first["order_id"] == "o-c1"
    assert held_doc({}, T0) == {"count": 0, "oldest": []}


def _probe() -> Probe:
    counters = Counters(held_issued=2, held_dropped=1, reactivated=4)
    counters.excused.update({"AMOUNT_MISMATCH": 3})
    runtime = SimpleNamespace(
        counters=counters, worker_id="w1", watermarks=lambda: {0: T0, 1: None},
        input_states=_input_states, held_commands=lambda: HELD, held_count=lambda: 3,
        rule_watermarks=lambda: {0: [{"inputs": ["inventory"], "rules": ["TCC_EMPTY_ROLLBACK"],
                                      "watermark": T0}]})
    app = SimpleNamespace(started=False, should_stop=False,
                          conf=SimpleNamespace(canonical_url=SERVED["url"], id="cc"),
                          assignor=SimpleNamespace(assigned_actives=lambda: set()),
                          consumer=SimpleNamespace(highwater=lambda tp: None))
    tracker = SimpleNamespace(stall_states=lambda now: STALLS, next_offset={})
    worker: Any = SimpleNamespace(app=app, runtime=runtime, records=9, batches=2,
                                  topology=Topology(4), tracker=tracker)
    return Probe(worker, clock=lambda: T0 + 60_000)


def test_health_and_summary_show_inputs_and_held_commands() -> None:
    probe = _probe()
    health = health_doc(probe, T0 + 60_000)
    assert health["ready"] is False
    assert [(r["topic"], r["partition"], r["state"]) for r in health["inputs"]] == [
        ("inventory", 0, "released"), ("orders", 0, "active"), ("payments", 0, "stalled"),
        ("shipping", 0, "never seen"), ("orders", 1, "quiet"), ("payments", 1, "active")]
    assert health["inputs"][2]["for_seconds"] == 53.0
    assert health["held_commands"]["count"] == 3
    assert [h["command_id"] for h in health["held_commands"]["oldest"]] == ["c1", "c2", "c3"]
    assert [w["partition"] for w in health["watermarks"]] == [0, 1]
    assert health["rule_watermarks"] == [
        {"partition": 0, "inputs": ["inventory"], "rules": ["TCC_EMPTY_ROLLBACK"],
         "watermark": format_time(T0), "watermark_ms": T0}]
    summary = summary_doc(probe, T0 + 60_000)
    assert summary["inputs"] == health["inputs"]
    assert summary["held_commands"] == health["held_commands"]
    assert (summary["held_issued"], summary["held_dropped"]) == (2, 1)
    assert summary["decisions_excused"] == {"AMOUNT_MISMATCH": 3}
    assert summary["inputs_reactivated"] == 4


# -- /api/windows --------------------------------------------------------------------------


def test_windows_doc_converts_times_and_limits() -> None:
    agg = Aggregator(60_000, 20, 21)
    counts = WindowCounts(orders_placed=3, payments_succeeded=2, payments_failed=1,
                          gmv={"CNY": 6000}, mismatches_opened={"AMOUNT_MISMATCH": 1})
    windows = [agg.window_record(T0 + i * 60_000, counts) for i in range(5)]
    alerts = [{"alert_id": f"a{i}", "kind": "MISMATCH", "mismatch_type": "AMOUNT_MISMATCH",
               "severity": "HIGH", "count": 1, "window_start": T0, "window_end": T0 + 60_000,
               "sample_order_ids": ["o1"]} for i in range(4)]
    doc = windows_doc(windows, alerts, SERVED, limit=2, alert_limit=3)
    assert [w["window_start"] for w in doc["windows"]] == \
        [format_time(T0 + 3 * 60_000), format_time(T0 + 4 * 60_000)]
    w = doc["windows"][0]
    assert w["payment_success_rate"] == 2 / 3 and w["gmv"] == {"CNY": 6000}
    assert [a["alert_id"] for a in doc["alerts"]] == ["a3", "a2", "a1"]  # newest first
    assert doc["alerts"][0]["window_end"] == format_time(T0 + 60_000)
    assert windows_doc(windows, alerts, SERVED, 0, 0)["windows"] == []


def test_windows_doc_shows_source_alerts_with_iso_times() -> None:
    stalled = {"alert_id": "s1", "kind": "SOURCE_STALLED", "mismatch_type": None,
               "severity": "HIGH", "count": 2, "window_start": T0, "window_end": T0 + 600_000,
               "sample_order_ids": [],
               "source": {"topic": "inventory", "partitions": [0, 2],
                          "last_event_time": T0 - 1, "stalled_ms": 600_000}}
    [a] = windows_doc([], [stalled], SERVED, limit=5, alert_limit=5)["alerts"]
    assert a["mismatch_type"] is None and a["window_end"] == format_time(T0 + 600_000)
    assert a["source"] == {"topic": "inventory", "partitions": [0, 2],
                           "last_event_time": format_time(T0 - 1), "stalled_ms": 600_000}
