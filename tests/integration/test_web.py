"""Real-broker tests of the worker's web endpoints and of `crosscheck watch`.

* One worker (all four partitions) judges `rules_scenario` plus one undecodable record; its
  /health, /metrics, /mismatches, /orders/{id} and /api/windows are compared with the
  batch reference (`Scenario.expected`).
* Two workers in one group (distinct --web-port): /orders/{id} answers the same document on
  both, served by the owner of the order's partition (Faust table routing forwards it).
* `crosscheck watch` runs into a pipe: from the beginning it shows the reference's figures;
  from the end it shows only what came after it started. Ctrl-C (SIGINT) ends it with 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from schemas.validation import format_time
from streams.clients import admin, confluent_config
from streams.config import Settings, load_settings
from streams.model import CommandType, MismatchType
from tests.integration.conftest import env_of
from tests.integration.scenarios import (
    FAULTS,
    MINUTE,
    PARTITIONS,
    SECOND,
    T0,
    Outputs,
    Scenario,
    healthy,
    rules_scenario,
)
from tests.integration.worker_support import (
    CROSSCHECK,
    FAST_GROUP_ENV,
    Progress,
    WorkerProcess,
    produce,
    read_records,
    running_worker,
    wait_for_members,
    wait_until_judged,
)
from topology.admin import create_topics
from topology.partitioner import partition_for
from topology.topics import INPUTS, TopicId, Topology

pytestmark = pytest.mark.integration

JUNK_KEY = "junk-order"


# -- helpers --------------------------------------------------------------------------------


def http_get(url: str, timeout: float = 15.0) -> tuple[int, str, str]:
    """(status, content type, body) of a GET; error statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return (response.status, response.headers.get("Content-Type", ""),
                    response.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def get_json(url: str, expect: int = 200) -> Any:
    status, ctype, body = http_get(url)
    assert status == expect, f"GET {url}: {status} {body[:500]}"
    assert ctype.startswith("application/json"), ctype
    return json.loads(body)


def fresh_settings(kafka_bootstrap: str, tmp: Path) -> tuple[Settings, Topology]:
    tag = uuid.uuid4().hex[:10]
    settings = replace(load_settings({}), bootstrap_servers=kafka_bootstrap, home=tmp / "home",
                       topic_prefix=f"t{tag}.", app_id=f"cc-{tag}", partitions=PARTITIONS)
    topology = Topology(settings.partitions, settings.topic_prefix, settings.topic_overrides)
    create_topics(admin(settings), topology)
    return settings, topology


def final_statuses(expected: Outputs) -> dict[str, dict[str, Any]]:
    """mismatch_id -> its last record in the reference (RESOLVED wins over OPEN)."""
    result: dict[str, dict[str, Any]] = {}
    for m in expected.mismatches:
        if m["status"] == "RESOLVED" or m["mismatch_id"] not in result:
            result[m["mismatch_id"]] = m
    return result


def send_junk(settings: Settings, topology: Topology) -> None:
    """One undecodable payments record (a dead letter)."""
    producer = Producer(confluent_config(settings))
    errors: list[str] = []
    producer.produce(topology.name(TopicId.PAYMENTS), b"\xde\xad not avro", JUNK_KEY.encode(),
                     partition=partition_for(JUNK_KEY, PARTITIONS),
                     on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
    producer.flush(30)
    assert not errors, errors


@dataclass
class World:
    settings: Settings
    topology: Topology
    scenario: Scenario
    expected: Outputs
    worker: WorkerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker.port}"


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One worker that has judged rules_scenario and one junk record."""
    tmp = tmp_path_factory.mktemp("web")
    settings, topology = fresh_settings(kafka_bootstrap, tmp)
    scenario = rules_scenario(copies=1, seed=5)
    # everything is there before the worker starts: no input can go idle half-way (which
    # would let the watermark run ahead of the unread rest), so its outputs are the batch's
    send_junk(settings, topology)
    produce(settings, scenario.in_time_order())
    with running_worker(settings, tmp / "worker.log") as worker:
        progress = Progress(settings, topology)
        try:
            wait_until_judged(worker, progress)
        finally:
            progress.close()
        yield World(settings, topology, scenario, scenario.expected(), worker)


# -- one worker -----------------------------------------------------------------------------


def test_health(world: World) -> None:
    doc = get_json(world.url + "/health")
    assert doc["ready"] is True and doc["status"] == "ok"
    assert doc["url"] == world.url
    assert doc["partitions"] == list(range(PARTITIONS))
    assert doc["records_processed"] >= len(world.scenario.lines) + 1
    assert doc["batches"] >= 1 and doc["last_batch_seconds"] > 0
    lag = doc["input_lag"]
    assert lag["records"] == 0
    assert {(r["topic"], r["partition"]) for r in lag["partitions"]} == \
        {(world.topology.name(t), p) for t in INPUTS for p in range(PARTITIONS)}
    marks = {w["partition"]: w for w in doc["watermarks"]}
    assert sorted(marks) == list(range(PARTITIONS))
    now = time.time()
    for w in marks.values():
        assert w["watermark"] == format_time(w["watermark_ms"])
        # age = wall clock - watermark (the scenario's event times are fixed, far from now)
        assert abs(w["age_seconds"] - (now - w["watermark_ms"] / 1000)) < 60


def test_metrics(world: World) -> None:
    status, ctype, body = http_get(world.url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    lines = world.scenario.lines
    per_topic = Counter(line.topic.value for line in lines)
    for t in INPUTS:
        assert value("crosscheck_events_total", topic=t.value) == per_topic[t.value]
    exp = world.expected
    opened = Counter(m["type"] for m in exp.mismatches if m["status"] == "OPEN")
    for mt in MismatchType:
        assert value("crosscheck_mismatches_opened_total", type=mt.value) == opened[mt.value]
    assert value("crosscheck_mismatches_resolved_total") == \
        sum(1 for m in exp.mismatches if m["status"] == "RESOLVED")
    commands = Counter(c["type"] for c in exp.commands)
    for ct in CommandType:
        assert value("crosscheck_commands_total", type=ct.value) == commands[ct.value]
    assert value("crosscheck_dead_letters_total") == 1
    assert value("crosscheck_ready") == 1
    for p in range(PARTITIONS):
        assert value("crosscheck_watermark_lag_seconds", partition=str(p)) > 0
        assert value("crosscheck_input_lag_records", topic=world.topology.name(TopicId.PAYMENTS),
                     partition=str(p)) == 0
    batches = value("crosscheck_batch_processing_seconds_count")
    assert batches >= 1
    assert value("crosscheck_batch_records_sum") >= len(lines) + 1
    assert value("crosscheck_batch_processing_seconds_bucket", le="+Inf") == batches
    # OpenMetrics when asked for
    request = urllib.request.Request(world.url + "/metrics",
                                     headers={"Accept": "application/openmetrics-text"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.read().decode().rstrip().endswith("# EOF")


def test_mismatches(world: World) -> None:
    final = final_statuses(world.expected)
    doc = get_json(world.url + f"/mismatches?limit={len(final) + 10}")
    assert doc["scope"] == "worker" and doc["url"] == world.url
    assert doc["count"] == len(final)
    got = {m["mismatch_id"]: m for m in doc["mismatches"]}
    assert {k: v["status"] for k, v in got.items()} == {k: v["status"] for k, v in final.items()}
    for mid, m in got.items():
        ref = final[mid]
        assert m["decided_at"] == format_time(ref["decided_at"])
        assert (m["type"], m["order_id"], m["subject_id"], m["severity"], m["command_id"]) == \
            (ref["type"], ref["order_id"], ref["subject_id"], ref["severity"], ref["command_id"])
        assert m["detected_at"].endswith("Z")

    open_ = get_json(world.url + "/mismatches?status=OPEN&limit=5000")
    assert {m["mismatch_id"] for m in open_["mismatches"]} == \
        {k for k, v in final.items() if v["status"] == "OPEN"}
    dup = get_json(world.url + "/mismatches?type=DUPLICATE_PAYMENT")
    assert dup["count"] == sum(1 for v in final.values() if v["type"] == "DUPLICATE_PAYMENT") > 0
    assert all(m["type"] == "DUPLICATE_PAYMENT" for m in dup["mismatches"])
    assert get_json(world.url + "/mismatches?limit=2")["count"] == 2
    one = next(iter(final.values()))
    by_order = get_json(world.url + f"/mismatches?order_id={one['order_id']}")
    assert {m["order_id"] for m in by_order["mismatches"]} == {one["order_id"]}
    for bad in ("status=CLOSED", "type=NOPE", "limit=0", "limit=x"):
        assert "error" in get_json(world.url + f"/mismatches?{bad}", expect=400)


def test_orders(world: World) -> None:
    final = final_statuses(world.expected)
    by_order: dict[str, dict[str, str]] = {}
    for mid, m in final.items():
        by_order.setdefault(m["order_id"], {})[mid] = m["status"]
    for order_id, statuses in by_order.items():
        doc = get_json(world.url + "/orders/" + urllib.parse.quote(order_id, safe=""))
        assert doc["order_id"] == order_id
        assert doc["partition"] == partition_for(order_id, PARTITIONS)
        assert doc["served_by"]["url"] == world.url
        assert {m["mismatch_id"]: m["status"] for m in doc["mismatches"]} == statuses
        assert doc["open_mismatches"] == sum(1 for s in statuses.values() if s == "OPEN")
    # a recent order still has its history: events in event-time order, pending decisions
    last = world.scenario.in_time_order()[-1].order_id
    doc = get_json(world.url + f"/orders/{last}")
    events = [line for line in world.scenario.lines if line.order_id == last]
    assert {e["event_id"] for e in doc["events"]} == {line.record["event_id"] for line in events}
    times = [e["event_time"] for e in doc["events"]]
    assert times == sorted(times)
    assert all({"due", "kind"} <= set(p) for p in doc["pending"])
    missing = get_json(world.url + "/orders/no-such-order", expect=404)
    assert missing["partition"] == partition_for("no-such-order", PARTITIONS)


def test_windows_and_static_files(world: World) -> None:
    doc = get_json(world.url + "/api/windows?limit=5&alerts=3")
    assert doc["served_by"]["url"] == world.url
    assert 0 < len(doc["windows"]) <= 5 and len(doc["alerts"]) <= 3
    starts = [w["window_start"] for w in doc["windows"]]
    assert starts == sorted(starts)
    status, ctype, body = http_get(world.url + "/")
    assert status == 200 and ctype.startswith("text/html") and "crosscheck" in body
    status, ctype, body = http_get(world.url + "/static/chart.umd.min.js")
    assert status == 200 and "javascript" in ctype and "Chart.js v4" in body[:200]
    summary = get_json(world.url + "/api/summary")
    assert summary["dead_letters"] == 1


# -- crosscheck watch -----------------------------------------------------------------------


class Watch:
    """`crosscheck watch` into a pipe, its output collected by a thread."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.proc = subprocess.Popen([CROSSCHECK, "watch", "--interval", "0.5", *args],
                                     env=env_of(settings), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)

    def frames(self) -> list[str]:
        """Complete frames printed so far."""
        return [f for f in "".join(self.out).split("-" * 80 + "\n")[:-1] if f.strip()]

    def wait_for(self, ok: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames = self.frames()
            if frames and ok(frames[-1]):
                return frames[-1]
            assert self.proc.poll() is None, "watch exited:\n" + "".join(self.out)[-3000:]
            time.sleep(0.2)
        raise AssertionError("watch never showed it; last output:\n" + "".join(self.out)[-4000:])

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(30)
        finally:
            self.stop()
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._reader.join(10)


def mismatch_row(mtype: str, opened: int, resolved: int, still_open: int) -> str:
    return f"{mtype:30} {opened:>8} {resolved:>9} {still_open:>7}"


def test_watch_from_beginning(world: World) -> None:
    exp = world.expected
    final = final_statuses(exp)
    opened = Counter(m["type"] for m in exp.mismatches if m["status"] == "OPEN")
    resolved = Counter(m["type"] for m in exp.mismatches if m["status"] == "RESOLVED")
    still = Counter(m["type"] for m in final.values() if m["status"] == "OPEN")
    rows = [mismatch_row(t.value, opened[t.value], resolved[t.value], still[t.value])
            for t in MismatchType]
    total = mismatch_row("total", sum(opened.values()), sum(resolved.values()),
                         sum(still.values()))
    commands = Counter(c["type"] for c in exp.commands)
    watch = Watch(world.settings, "--from-beginning")
    try:
        frame = watch.wait_for(lambda f: total in f.splitlines())
        lines = frame.splitlines()
        for row in rows:
            assert row in lines, (row, frame)
        assert "dead letters  1" in lines
        assert "commands  " + "  ".join(f"{t.value} {commands[t.value]}" for t in CommandType) \
            + f"  total {len(exp.commands)}" in lines
        assert f"mismatches {len(exp.mismatches)}" in frame
        assert f"commands {len(exp.commands)}" in frame
        assert "\x1b[" not in "".join(watch.out)  # no ANSI into a pipe
        assert watch.interrupt() == 0
    finally:
        watch.stop()


def test_watch_from_the_end_shows_only_new_records(world: World) -> None:
    """Runs last in this module: it adds an order to the world."""
    watch = Watch(world.settings)
    try:
        watch.wait_for(lambda f: "records read  mismatches 0  commands 0" in f)
        # a few frames more: the consumer has looked up the end offsets by then
        frames = len(watch.frames())
        watch.wait_for(lambda f: len(watch.frames()) >= frames + 3)
        latest = max(line.record["event_time"] for line in world.scenario.lines)
        extra = Scenario(seed=9)
        order = "watch-dup"
        extra.order("dup-open", order, latest + 2 * MINUTE, FAULTS["dup-open"])
        # a later order on the same partition moves its watermark past the decision
        n = 0
        while partition_for(f"watch-close-{n}", PARTITIONS) != partition_for(order, PARTITIONS):
            n += 1
        # (30 s later: enough for the duplicate's decision, too early for any other
        # decision of the order to come due while one of its inputs is still unread)
        extra.order("ok", f"watch-close-{n}", latest + 2 * MINUTE + 30 * SECOND, healthy)
        produce(world.settings, extra.in_time_order())
        frame = watch.wait_for(
            lambda f: mismatch_row("DUPLICATE_PAYMENT", 1, 0, 1) in f.splitlines())
        assert mismatch_row("total", 1, 0, 1) in frame.splitlines()
        assert "REFUND_PAYMENT 1" in frame
        assert watch.interrupt() == 0
    finally:
        watch.stop()


# -- two workers ----------------------------------------------------------------------------


def _wait_for_split(workers: list[WorkerProcess], timeout: float = 150.0) -> dict[str, set[int]]:
    """Wait until every worker is ready and the partitions are split among all of them."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for w in workers:
            assert w.alive(), f"worker exited with {w.proc.returncode}:\n{w.log_tail()}"
        try:
            docs = {f"http://127.0.0.1:{w.port}": json.loads(http_get(
                f"http://127.0.0.1:{w.port}/health", timeout=5)[2]) for w in workers}
        except (OSError, ValueError):
            time.sleep(0.5)
            continue
        last = docs
        owned = {url: set(d["partitions"]) for url, d in docs.items()}
        if all(d["ready"] for d in docs.values()) and all(owned.values()) and \
                sum(len(p) for p in owned.values()) == PARTITIONS and \
                set().union(*owned.values()) == set(range(PARTITIONS)):
            return owned
        time.sleep(0.5)
    raise AssertionError(f"the partitions were never split: {last}\n" +
                         "\n".join(w.log_tail() for w in workers))


def test_orders_are_answered_by_the_owner_on_any_worker(kafka_bootstrap: str,
                                                        tmp_path: Path) -> None:
    settings, topology = fresh_settings(kafka_bootstrap, tmp_path)
    scenario = rules_scenario(copies=1, seed=6)
    # order ids that need URL encoding, forwarded as they are
    for n, odd in enumerate(("web é +%", "web ☃ ?&#")):
        scenario.order("empty-rollback", odd, T0 + (10 + n) * SECOND, FAULTS["empty-rollback"])
    with running_worker(settings, tmp_path / "a.log", extra_env=FAST_GROUP_ENV) as a:
        wait_for_members(settings, a)
        with running_worker(settings, tmp_path / "b.log", extra_env=FAST_GROUP_ENV) as b:
            owned = _wait_for_split([a, b])
            produce(settings, scenario.in_time_order())
            progress = Progress(settings, topology)
            try:
                wait_until_judged(a, progress)
            finally:
                progress.close()
            assert b.alive(), b.log_tail()
            assert _wait_for_split([a, b], timeout=10) == owned  # no rebalance meanwhile
            owner_of = {p: url for url, parts in owned.items() for p in parts}
            urls = sorted(owned)

            # what the workers emitted (the reference for "the order's mismatches" here:
            # whether it equals batch.evaluate is test_worker_rules' business)
            emitted = read_records(settings, topology.name(TopicId.MISMATCHES))
            final = final_statuses(Outputs(emitted, []))
            orders = sorted({m["order_id"] for m in final.values()})
            assert {"web é +%", "web ☃ ?&#"} <= set(orders)
            assert {partition_for(o, PARTITIONS) for o in orders} == set(range(PARTITIONS))
            forwarded = Counter[str]()
            for order_id in orders:
                owner = owner_of[partition_for(order_id, PARTITIONS)]
                path = "/orders/" + urllib.parse.quote(order_id, safe="")
                docs = [get_json(url + path) for url in urls]
                assert docs[0] == docs[1], order_id  # the same answer, wherever asked
                assert docs[0]["served_by"]["url"] == owner
                assert {m["mismatch_id"]: m["status"] for m in docs[0]["mismatches"]} == \
                    {k: v["status"] for k, v in final.items() if v["order_id"] == order_id}
                forwarded.update(url for url in urls if url != owner)
            assert all(forwarded[url] > 0 for url in urls), forwarded
            for url in urls:  # unknown orders: 404 from the owner, wherever asked
                missing = get_json(f"{url}/orders/nobody-ordered-this", expect=404)
                assert missing["served_by"]["url"] == \
                    owner_of[partition_for("nobody-ordered-this", PARTITIONS)]

            # /mismatches is per worker: each lists the mismatches of its own partitions
            seen: dict[str, str] = {}
            for url in urls:
                doc = get_json(f"{url}/mismatches?limit=5000")
                for m in doc["mismatches"]:
                    assert partition_for(m["order_id"], PARTITIONS) in owned[url], (url, m)
                    seen[m["mismatch_id"]] = m["status"]
            assert seen == {k: v["status"] for k, v in final.items()}

            # the metrics windows come from the one worker that runs the aggregator
            servers = {get_json(f"{url}/api/windows")["served_by"]["url"] for url in urls}
            assert len(servers) == 1 and servers <= set(urls)
