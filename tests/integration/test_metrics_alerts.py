"""Real-broker tests of the metrics and alerts of `crosscheck worker`.

The worker runs as a subprocess with short thresholds (1 min windows, 10 s allowed lateness,
2 s idle timeout). Its MetricsWindow records (`crosscheck export metrics`) are compared,
window by window, with figures computed here from the input events (and, for the mismatch
figures and alerts, from batch.evaluate's decisions); every window and alert must appear
exactly once, also when the worker is killed with SIGKILL in the middle and restarted.

Every scenario ends with clock orders on all partitions, so at the end (all inputs idle)
every partition's watermark lies in the same window: the windows before it are final on
every partition, and no partition's tail can be cut off.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException

from schemas.validation import parse_event_time
from streams.config import Settings
from streams.metrics.aggregate import alert_id
from tests.integration.conftest import env_of
from tests.integration.scenarios import (
    FAULTS,
    HEALTHY,
    MINUTE,
    PARTITIONS,
    RULES,
    SECOND,
    T0,
    OrderBuilder,
    Scenario,
    Template,
    fault_horizon,
    healthy,
    paid_in,
    worker_rule_args,
)
from tests.integration.worker_support import (
    CROSSCHECK,
    FAST_GROUP_ENV,
    Progress,
    WorkerProcess,
    free_port,
    produce,
    read_records,
    running_worker,
    start_worker,
    wait_until_judged,
)
from topology.partitioner import partition_for
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration

LATENESS = 10 * SECOND
WINDOW = MINUTE
STORM_THRESHOLD = 20
METRICS_RULES = replace(RULES, allowed_lateness=LATENESS, idle_timeout=2 * SECOND,
                        metrics_window=WINDOW, storm_threshold=STORM_THRESHOLD)
#: after the scenario defaults of start_worker: the last value of an option wins
WORKER_ARGS = tuple(worker_rule_args(METRICS_RULES))
ENV = {"CROSSCHECK_STORM_THRESHOLD": str(STORM_THRESHOLD)}
#: commit every 0.25 s (the worker's own option), so that a SIGKILL finds part of the input
#: committed: each commit then covers a few thousand records at most, where one every second
#: (Faust's BROKER_COMMIT_INTERVAL, as before) covered more than half of this input once the
#: worker judged over 10k records/s
KILL_ENV = {**ENV, **FAST_GROUP_ENV, "CROSSCHECK_COMMIT_INTERVAL": "0.25"}
#: and batches of 50 for the worker that is killed (as the recovery tests' MIDWAY_ARGS): at
#: 30k records/s, batches of 2,000 had 10,000 of this input's 15,726 records committed by
#: the first commit the test saw
MIDWAY_ARGS = ("--batch-size", "50")
CLOCK_PERIOD = 8 * SECOND
ALERTING = {"HIGH", "CRITICAL"}
SECRETS = ("s3cret-pass", "s3cret-token")


# -- scenarios ------------------------------------------------------------------------------


def paid_after_failure(currency: str, amount: int) -> Template:
    """A consistent order whose first payment attempt fails."""
    def template(b: OrderBuilder) -> None:
        (b.placed(0, total=amount, currency=currency).inv("RESERVED", 0.5)
         .pay("FAILED", 1, "p1", amount, currency).pay("SUCCEEDED", 1.5, "p2", amount, currency)
         .inv("CONFIRMED", 2).ship("CREATED", 2.5))
    return template


def failed_only(b: OrderBuilder) -> None:
    """Placed and reserved; the payment fails (RESERVATION_WITHOUT_PAYMENT later, LOW)."""
    b.placed(0).inv("RESERVED", 0.5).pay("FAILED", 1)


EXTRA: dict[str, Template] = {
    "failed-then-eur": paid_after_failure("EUR", 4200),
    "failed-then-cny": paid_after_failure("CNY", 1999),
    "usd": paid_in("USD", 1250),
    "jpy": paid_in("JPY", 880),
    "failed-only": failed_only,
}


def clock_end(at_least: int) -> int:
    """The last clock order's start: at or after `at_least`, on the clock's grid, and such that
    every partition's final watermark (last clock order + 3-3.75 s - lateness) falls in the
    middle of one window."""
    k = max(0, -(-(at_least - T0) // CLOCK_PERIOD))
    while True:
        end = T0 + k * CLOCK_PERIOD
        if 5 * SECOND <= (end + 3 * SECOND - LATENESS) % WINDOW <= 50 * SECOND:
            return end
        k += 1


def finish(s: Scenario, last_order: int, redeliver: float = 0.02) -> Scenario:
    s.add_clock(T0, clock_end(last_order + fault_horizon(s.rules) + 2 * LATENESS))
    s.redeliver(redeliver)
    return s


def metrics_scenario(orders: int, seed: int, step: int) -> Scenario:
    """`orders` orders `step` ms apart: rule faults, healthy orders, failed payments, four
    currencies; clock orders; a few redeliveries."""
    s = Scenario(rules=METRICS_RULES, seed=seed)
    rng = random.Random(seed)
    kinds = [*FAULTS.items(), *HEALTHY.items(), *EXTRA.items()]
    t = T0 + 1 * SECOND
    for i in range(orders):
        name, template = rng.choice(kinds)
        s.order(name, f"{name}-{i}", t, template)
        t += step
    return finish(s, t)


def storm_scenario(storm: int, singles: int) -> tuple[Scenario, int, int]:
    """`storm` AMOUNT_MISMATCH orders in the window at T0 + 2 min, `singles` in the one at
    T0 + 4 min, healthy orders and clock orders around them. Returns it and both windows."""
    s = Scenario(rules=METRICS_RULES, seed=7)
    storm_window, single_window = T0 + 2 * MINUTE, T0 + 4 * MINUTE
    for i in range(storm):
        s.order("amount", f"storm-{i}", storm_window + 5 * SECOND + i * 1_500, FAULTS["amount"])
    for i in range(singles):
        s.order("amount", f"single-{i}", single_window + 5 * SECOND + i * 5 * SECOND,
                FAULTS["amount"])
    for i in range(30):
        s.order("ok", f"ok-{i}", T0 + i * 10 * SECOND, healthy)
    return finish(s, single_window + WINDOW), storm_window, single_window


# -- the expected figures, computed from the input ------------------------------------------


def start_of(t: int) -> int:
    return t - t % WINDOW


def final_watermarks(s: Scenario) -> dict[int, int]:
    """Every partition's watermark once all its inputs are idle: max event time - lateness."""
    latest: dict[int, int] = {}
    for line in s.lines:
        p = partition_for(line.order_id, s.partitions)
        latest[p] = max(latest.get(p, 0), line.record["event_time"])
    return {p: t - LATENESS for p, t in latest.items()}


def expected_windows(s: Scenario) -> list[dict[str, Any]]:
    """The MetricsWindow records the worker must emit (every window up to the final one)."""
    marks = final_watermarks(s)
    assert len(marks) == PARTITIONS
    assert len({start_of(wm) for wm in marks.values()}) == 1, marks  # see clock_end
    first = start_of(min(line.record["event_time"] for line in s.lines))
    last = start_of(min(marks.values()))  # windows starting before it are final
    windows: dict[int, dict[str, Any]] = {
        w: {"window_start": w, "window_end": w + WINDOW, "orders_placed": 0,
            "payments_succeeded": 0, "payments_failed": 0, "payment_success_rate": None,
            "gmv": {}, "refunds": 0, "shipments_created": 0, "mismatches_opened": {},
            "mismatches_resolved": 0, "commands_issued": {}, "dead_letters": 0,
            "late_events": 0}
        for w in range(first, last, WINDOW)}

    def bump(t: int, name: str, key: str | None = None, by: int = 1) -> None:
        w = windows.get(start_of(t))
        if w is None:
            return  # after the last final window
        if key is None:
            w[name] += by
        else:
            w[name][key] = w[name].get(key, 0) + by

    seen: set[str] = set()
    for line in s.lines:  # redeliveries repeat an event_id: counted once
        r = line.record
        if r["event_id"] in seen:
            continue
        seen.add(r["event_id"])
        t, kind = r["event_time"], r["type"]
        if line.topic is TopicId.ORDERS and kind == "PLACED":
            bump(t, "orders_placed")
        elif line.topic is TopicId.PAYMENTS and kind == "SUCCEEDED":
            bump(t, "payments_succeeded")
            bump(t, "gmv", r["currency"], r["amount"])
        elif line.topic is TopicId.PAYMENTS and kind == "FAILED":
            bump(t, "payments_failed")
        elif line.topic is TopicId.PAYMENTS and kind == "REFUNDED":
            bump(t, "refunds")
        elif line.topic is TopicId.SHIPPING and kind == "CREATED":
            bump(t, "shipments_created")
    reference = s.expected()
    decided = {m["mismatch_id"]: m["decided_at"] for m in reference.mismatches}
    for m in reference.mismatches:
        if m["status"] == "OPEN":
            bump(m["decided_at"], "mismatches_opened", m["type"])
        else:
            bump(m["resolved_at"], "mismatches_resolved")
    for c in reference.commands:
        bump(decided[c["mismatch_id"]], "commands_issued", c["type"])
    for w in windows.values():
        attempts = w["payments_succeeded"] + w["payments_failed"]
        if attempts:
            w["payment_success_rate"] = w["payments_succeeded"] / attempts
        for name in ("gmv", "mismatches_opened", "commands_issued"):
            w[name] = dict(sorted(w[name].items()))
    return [windows[w] for w in sorted(windows)]


def expected_alerts(s: Scenario) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """(kind, mismatch type, window start) -> the alerts expected for it: one per OPEN
    HIGH/CRITICAL mismatch, or a single STORM (checked by count and samples)."""
    last = start_of(min(final_watermarks(s).values()))
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for m in s.expected().mismatches:
        if m["status"] == "OPEN" and m["severity"] in ALERTING and m["decided_at"] < last:
            groups[(m["type"], start_of(m["decided_at"]))].append(m)
    alerts: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for (kind, window), found in groups.items():
        if len(found) > STORM_THRESHOLD:
            alerts[("STORM", kind, window)] = [{
                "alert_id": alert_id("STORM", kind, window), "kind": "STORM",
                "mismatch_type": kind, "count": len(found), "window_start": window,
                "window_end": window + WINDOW, "orders": {m["order_id"] for m in found}}]
        else:
            alerts[("MISMATCH", kind, window)] = [{
                "alert_id": alert_id("MISMATCH", m["mismatch_id"]), "kind": "MISMATCH",
                "mismatch_type": kind, "severity": m["severity"], "count": 1,
                "window_start": window, "window_end": window + WINDOW,
                "sample_order_ids": [m["order_id"]], "source": None} for m in found]
    return alerts


# -- reading and checking the outputs -------------------------------------------------------


def export_metrics(settings: Settings, out: Path) -> list[dict[str, Any]]:
    """`crosscheck export metrics`, times parsed back to epoch ms."""
    done = subprocess.run([CROSSCHECK, "export", "metrics", "--out", str(out),
                           "--idle-timeout", "3"], env=env_of(settings), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    for r in records:
        r["window_start"] = parse_event_time(r["window_start"])
        r["window_end"] = parse_event_time(r["window_end"])
    return records


def assert_windows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Each window exactly once, in order, with exactly the expected figures."""
    starts = [w["window_start"] for w in actual]
    twice = [t for t, n in Counter(starts).items() if n > 1]
    assert not twice, f"windows emitted more than once: {twice}"
    assert starts == sorted(starts), "windows out of order"
    assert starts == [w["window_start"] for w in expected], \
        f"windows {starts} != expected {[w['window_start'] for w in expected]}"
    for got, want in zip(actual, expected, strict=True):
        assert got == want, f"window {got['window_start']}:\n  got  {got}\n  want {want}"


def assert_alerts(actual: list[dict[str, Any]],
                  expected: dict[tuple[str, str, int], list[dict[str, Any]]]) -> None:
    """Each alert exactly once; singles exactly as expected, storms by count and samples."""
    ids = Counter(a["alert_id"] for a in actual)
    assert all(n == 1 for n in ids.values()), f"alerts emitted twice: {ids.most_common(3)}"
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for a in actual:
        groups[(a["kind"], a["mismatch_type"], a["window_start"])].append(a)
    assert sorted(groups) == sorted(expected)
    for key, want in expected.items():
        got = groups[key]
        if key[0] == "MISMATCH":
            order = sorted(want, key=lambda a: a["alert_id"])
            assert sorted(got, key=lambda a: a["alert_id"]) == order, key
            continue
        (storm,), (spec,) = got, want
        assert (storm["alert_id"], storm["count"], storm["window_end"]) == \
            (spec["alert_id"], spec["count"], spec["window_end"])
        assert 1 <= len(storm["sample_order_ids"]) <= 10
        assert set(storm["sample_order_ids"]) <= spec["orders"]


def judged(worker: WorkerProcess, settings: Settings, topology: Topology,
           log_line: str | None = None) -> None:
    """Wait until the worker has judged everything (and, if given, has logged `log_line`:
    the webhook gives an alert up only after its retries, 7.5 s of backoff), then stop it
    cleanly."""
    progress = Progress(settings, topology)
    try:
        wait_until_judged(worker, progress)
    finally:
        progress.close()
    deadline = time.monotonic() + 60
    while log_line is not None and log_line not in worker.log_tail(400):
        assert time.monotonic() < deadline, f"never logged {log_line!r}\n{worker.log_tail()}"
        time.sleep(0.5)
    code = worker.terminate()
    assert code == 0, f"worker exited with {code}\n{worker.log_tail()}"


# -- a webhook receiver -----------------------------------------------------------------------


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 collecting POSTed JSON bodies (stopped on the way out)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def closed_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the tests ------------------------------------------------------------------------------


def test_metrics_windows_equal_figures_computed_from_the_input(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """(a) Window by window: counts, success rate, GMV per currency, mismatch and command
    counts; alerts as expected. The webhook points at a dead endpoint whose URL carries
    secrets: every alert is still in the topic, and no secret reaches the log."""
    scenario = metrics_scenario(400, seed=11, step=900)
    windows, alerts = expected_windows(scenario), expected_alerts(scenario)
    assert len(windows) >= 8
    assert sum(w["payments_failed"] for w in windows) > 0
    assert len({c for w in windows for c in w["gmv"]}) == 4
    assert sum(len(a) for a in alerts.values()) > 0
    produce(settings, scenario.in_time_order())
    dead = (f"http://alice:s3cret-pass@127.0.0.1:{closed_port()}/hook"
            "?token=s3cret-token")
    log = tmp_path / "worker.log"
    with running_worker(settings, log, extra_args=(*WORKER_ARGS, "--alert-webhook", dead),
                        extra_env=ENV) as worker:
        judged(worker, settings, topology, log_line="alert webhook http://127.0.0.1:")
    assert_windows(export_metrics(settings, tmp_path / "metrics.jsonl"), windows)
    assert_alerts(read_records(settings, topology.name(TopicId.ALERTS)), alerts)
    # the worker's own output (not the command lines the test harness writes there)
    text = "\n".join(line for line in log.read_text(errors="replace").splitlines()
                     if not line.startswith("=== "))
    assert "alert webhook http://127.0.0.1:" in text  # failures are logged, redacted
    assert not any(secret in text for secret in SECRETS)
    assert "alice" not in text


def test_each_window_is_emitted_once_across_a_sigkill(settings: Settings, topology: Topology,
                                                      tmp_path: Path) -> None:
    """(b) kill -9 in the middle (transactions open), restart: every window and alert exactly
    once, with the figures of an uninterrupted run."""
    scenario = metrics_scenario(3000, seed=12, step=200)
    windows, alerts = expected_windows(scenario), expected_alerts(scenario)
    produce(settings, scenario.in_time_order())
    log = tmp_path / "worker.log"
    port = free_port()  # the same state directory after the restart
    progress = Progress(settings, topology)
    try:
        total = progress.input_total()
        assert total == len(scenario.lines)
        first = start_worker(settings, log, port=port, extra_args=(*WORKER_ARGS, *MIDWAY_ARGS),
                             extra_env=KILL_ENV)
        try:
            done = kill_midway(first, progress, total)
        finally:
            first.terminate()
        assert 0 < done < total
    finally:
        progress.close()
    emitted_before = len(read_records(settings, topology.name(TopicId.METRICS)))
    with running_worker(settings, log, port=port, extra_args=WORKER_ARGS,
                        extra_env=KILL_ENV) as second:
        judged(second, settings, topology)
    actual = export_metrics(settings, tmp_path / "metrics.jsonl")
    assert_windows(actual, windows)
    assert emitted_before < len(actual), "the first worker should not have finished"
    assert_alerts(read_records(settings, topology.name(TopicId.ALERTS)), alerts)


def kill_midway(worker: WorkerProcess, progress: Progress, total: int,
                timeout: float = 120.0) -> int:
    """SIGKILL once some but not most of the input is committed; the committed count then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise AssertionError(f"worker exited early:\n{worker.log_tail()}")
        try:
            done = progress.committed_inputs()
        except KafkaException:  # e.g. NOT_COORDINATOR while a fresh broker settles
            time.sleep(0.2)
            continue
        if done >= total * 0.6:
            raise AssertionError(f"{done} of {total} records committed before the kill")
        if done >= total * 0.1:
            worker.kill()
            return done
        time.sleep(0.05)
    raise AssertionError(f"nothing committed in {timeout:.0f}s\n{worker.log_tail()}")


def test_a_storm_makes_one_alert_and_five_make_five(settings: Settings, topology: Topology,
                                                   tmp_path: Path) -> None:
    """(c) 25 AMOUNT_MISMATCH (HIGH) in one window with storm_threshold 20: one STORM alert
    (count 25, at most 10 sample orders) and no single ones; 5 in another window: 5 single
    alerts. The webhook receives the same alerts."""
    scenario, storm_window, single_window = storm_scenario(25, 5)
    produce(settings, scenario.in_time_order())
    log = tmp_path / "worker.log"
    with webhook_receiver() as (url, received):
        with running_worker(settings, log, extra_args=(*WORKER_ARGS, "--alert-webhook", url),
                            extra_env=ENV) as worker:
            judged(worker, settings, topology)
        alerts = read_records(settings, topology.name(TopicId.ALERTS))
        storms = [a for a in alerts if a["kind"] == "STORM"]
        assert len(storms) == 1, storms
        storm = storms[0]
        assert (storm["mismatch_type"], storm["severity"], storm["count"],
                storm["window_start"], storm["window_end"]) == \
            ("AMOUNT_MISMATCH", "HIGH", 25, storm_window, storm_window + WINDOW)
        assert 1 <= len(storm["sample_order_ids"]) <= 10
        assert all(o.startswith("storm-") for o in storm["sample_order_ids"])
        singles = [a for a in alerts if a["kind"] == "MISMATCH"]
        assert sorted(o for a in singles for o in a["sample_order_ids"]) == \
            [f"single-{i}" for i in range(5)]
        assert {(a["mismatch_type"], a["window_start"], a["count"]) for a in singles} == \
            {("AMOUNT_MISMATCH", single_window, 1)}
        assert len(alerts) == 6
        assert_alerts(alerts, expected_alerts(scenario))
        windows = export_metrics(settings, tmp_path / "metrics.jsonl")
        assert_windows(windows, expected_windows(scenario))
        by_start = {w["window_start"]: w for w in windows}
        assert by_start[storm_window]["mismatches_opened"] == {"AMOUNT_MISMATCH": 25}
        assert by_start[single_window]["mismatches_opened"] == {"AMOUNT_MISMATCH": 5}
        # the webhook got the same alerts (best-effort, delivered in the background)
        deadline = time.monotonic() + 20
        while len(received) < len(alerts) and time.monotonic() < deadline:
            time.sleep(0.2)
    by_id = {a["alert_id"]: a for a in alerts}
    assert sorted(b["alert_id"] for b in received) == sorted(by_id)
    for body in received:
        a = by_id[body["alert_id"]]
        assert body == {**a, "window_start": iso(a["window_start"]),
                        "window_end": iso(a["window_end"])}


def iso(ms: int) -> str:
    from schemas.validation import format_time
    return format_time(ms)
