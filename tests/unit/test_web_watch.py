"""`crosscheck watch`: folding output records and drawing a frame (no Kafka)."""

from __future__ import annotations

from click.testing import CliRunner

from schemas.validation import format_time
from streams.cli.main import _register, cli
from streams.cli.watch_cmd import RESET, Style, WatchState, render
from topology.topics import TopicId

T = 1_795_255_200_000


def _mismatch(mid: str, mtype: str, status: str = "OPEN", order: str = "o1") -> dict[str, object]:
    return {"mismatch_id": mid, "type": mtype, "status": status, "order_id": order,
            "subject_id": "s", "severity": "HIGH", "decided_at": T, "detected_at": T,
            "evidence": [], "command_id": None, "details": {}, "resolved_at": None,
            "resolved_by": None}


def _state() -> WatchState:
    s = WatchState(from_beginning=True)
    s.apply(TopicId.MISMATCHES, _mismatch("m1", "AMOUNT_MISMATCH"))
    s.apply(TopicId.MISMATCHES, _mismatch("m2", "TCC_HANGING", order="o2"))
    s.apply(TopicId.MISMATCHES, _mismatch("m3", "TCC_HANGING", order="o3"))
    s.apply(TopicId.MISMATCHES, _mismatch("m2", "TCC_HANGING", "RESOLVED", order="o2"))
    s.apply(TopicId.COMMANDS, {"type": "RELEASE_STOCK"})
    s.apply(TopicId.DLQ, {"source_topic": "payments", "partition": 1, "offset": 7,
                          "reason": "bad magic byte"})
    for i, (ok, failed) in enumerate([(3, 1), (1, 0)]):
        s.apply(TopicId.METRICS, {
            "window_start": T + i * 60_000, "window_end": T + (i + 1) * 60_000,
            "orders_placed": 2, "payments_succeeded": ok, "payments_failed": failed,
            "payment_success_rate": ok / (ok + failed), "gmv": {"CNY": 1000 * ok},
            "refunds": 0, "shipments_created": 1, "mismatches_opened": {"TCC_HANGING": 1},
            "mismatches_resolved": 0, "commands_issued": {}, "dead_letters": 0,
            "late_events": 0})
    s.apply(TopicId.ALERTS, {"alert_id": "a1", "kind": "STORM", "mismatch_type":
                             "AMOUNT_MISMATCH", "severity": "HIGH", "count": 25,
                             "window_start": T, "window_end": T + 60_000,
                             "sample_order_ids": ["o1", "o4"]})
    return s


def test_state_folds_records() -> None:
    s = _state()
    assert s.opened == {"AMOUNT_MISMATCH": 1, "TCC_HANGING": 2}
    assert s.resolved == {"TCC_HANGING": 1}
    assert sorted(s.open) == ["m1", "m3"]
    assert s.business["payments_succeeded"] == 4 and s.gmv == {"CNY": 4000}
    assert s.last_window is not None and s.last_window["window_start"] == T + 60_000
    assert s.records == {"mismatches": 4, "commands": 1, "dlq": 1, "metrics": 2, "alerts": 1}


def test_plain_frame() -> None:
    lines = render(_state(), "crosscheck watch", T + 5_000, width=200)
    text = "\n".join(lines)
    assert "\x1b[" not in text
    assert f"at {format_time(T + 5_000)}" in lines
    assert "records read  mismatches 4  commands 1  alerts 1  metrics 2  dlq 1" in lines
    assert f"{'AMOUNT_MISMATCH':30} {1:>8} {0:>9} {1:>7}" in lines
    assert f"{'TCC_HANGING':30} {2:>8} {1:>9} {1:>7}" in lines
    assert f"{'total':30} {3:>8} {1:>9} {2:>7}" in lines
    assert "success 80.0%" in text and "GMV 4000 CNY" in text
    assert "dead letters  1" in lines and "  payments[1]@7: bad magic byte" in lines
    assert any("STORM" in line and "x25" in line and "orders o1,o4" in line for line in lines)
    assert "latest window  " + format_time(T + 60_000) in text
    assert "(100.0%)" in text


def test_frame_since_start_and_clipped() -> None:
    lines = render(WatchState(), "h" * 300, T, width=40)
    assert all(len(line) <= 40 for line in lines)
    assert "(since wat" in lines[1]
    assert "  none" in lines


def test_ansi_colours_open_mismatches() -> None:
    lines = render(_state(), "crosscheck watch", T, style=Style(True))
    row = next(line for line in lines if "AMOUNT_MISMATCH" in line and "x25" not in line)
    assert row.startswith("\x1b[31m") and row.endswith(RESET)


def test_help() -> None:
    _register()
    result = CliRunner().invoke(cli, ["watch", "--help"])
    assert result.exit_code == 0
    assert "--from-beginning" in result.output and "Ctrl-C" in result.output


def _source_alert(kind: str, topic: str, at: int, partitions: list[int]) -> dict[str, object]:
    return {"alert_id": f"{kind}-{topic}", "kind": kind, "mismatch_type": None,
            "severity": "HIGH", "count": len(partitions), "window_start": T - 600_000,
            "window_end": at, "sample_order_ids": [],
            "source": {"topic": topic, "partitions": partitions, "last_event_time": None,
                       "stalled_ms": at - T + 600_000}}


def test_source_alerts_and_stalled_inputs() -> None:
    s = _state()
    s.apply(TopicId.ALERTS, _source_alert("SOURCE_STALLED", "inventory", T, [0, 2]))
    s.apply(TopicId.ALERTS, _source_alert("SOURCE_STALLED", "shipping", T, [1]))
    s.apply(TopicId.ALERTS, _source_alert("SOURCE_RECOVERED", "shipping", T + 60_000, [1]))
    assert list(s.stalled) == ["inventory"]
    lines = render(s, "crosscheck watch", T + 120_000, width=200)
    assert f"stalled inputs  inventory (partitions 0,2, since {format_time(T - 600_000)})" \
        in lines
    assert f"  {format_time(T)}  SOURCE_STALLED HIGH     inventory partitions=0,2 last=- " \
        "stalled 10m" in lines
    assert any("SOURCE_RECOVERED" in line and "recovered after 11m" in line for line in lines)
    assert any("STORM" in line and "x25" in line for line in lines)  # older alerts still there
    coloured = render(s, "crosscheck watch", T, style=Style(True))
    assert any(line.startswith("\x1b[32m") and "SOURCE_RECOVERED" in line for line in coloured)
