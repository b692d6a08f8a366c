"""Real-broker tests of `produce` and `export`: round trips, co-partitioning, bad lines, errors."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.codec import Codec
from schemas.validation import TYPES, parse_event_time
from streams.clients import confluent_config
from streams.config import Settings
from streams.export import export_topic
from streams.produce import produce_file
from tests.integration.conftest import env_of
from topology.partitioner import partition_for
from topology.topics import BY_ID, INPUTS, TopicId, Topology

pytestmark = pytest.mark.integration

CROSSCHECK = str(Path(sys.executable).with_name("crosscheck"))
T0 = 1_795_255_200_000

#: what a field left out of an input event becomes (Avro defaults)
DEFAULTS: dict[str, dict[str, Any]] = {
    "orders": {"user_id": "", "items": [], "total_amount": 0, "currency": "", "payment_id": ""},
    "payments": {"channel": ""},
    "inventory": {},
    "shipping": {"items": []},
}


def _time(rng: random.Random, ms: int) -> int | str:
    """The same instant as epoch ms or as ISO-8601 in UTC or another zone."""
    form = rng.randrange(3)
    if form == 0:
        return ms
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    if form == 1:
        return f"{base}.{ms % 1000:03d}Z"
    shifted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000 + 8 * 3600))
    return f"{shifted}.{ms % 1000:03d}+08:00"


def generate(n_orders: int, seed: int = 7, mixed: bool = True) -> list[dict[str, Any]]:
    """Lines {"topic", "event"} of a realistic flow per order, on all four input topics."""
    rng = random.Random(seed)
    lines: list[dict[str, Any]] = []

    def add(topic: str, event: dict[str, Any]) -> None:
        lines.append({"topic": topic, "event": event})

    for i in range(n_orders):
        oid = f"\u8ba2\u5355-{seed}-{i}" if mixed and i % 17 == 0 else f"o-{seed}-{i:06d}"
        t = T0 + i * 1_000
        qty = rng.randint(1, 5)
        price = rng.randint(0, 100_000)
        when = (lambda ms: _time(rng, ms)) if mixed else (lambda ms: ms)
        add("orders", {"event_id": f"{oid}-placed", "order_id": oid, "type": "PLACED",
                       "event_time": when(t), "user_id": f"u{i % 97}",
                       "items": [{"sku": f"sku-{i % 13}", "quantity": qty,
                                  "unit_price": price}],
                       "total_amount": qty * price, "currency": "CNY"})
        add("inventory", {"event_id": f"{oid}-res", "order_id": oid, "type": "RESERVED",
                          "event_time": when(t + 5), "reservation_id": f"r-{oid}",
                          "sku": f"sku-{i % 13}", "quantity": qty})
        pay: dict[str, Any] = {"event_id": f"{oid}-pay", "order_id": oid,
                               "type": rng.choice(["SUCCEEDED", "SUCCEEDED", "FAILED"]),
                               "event_time": when(t + 60), "payment_id": f"p-{oid}",
                               "amount": qty * price, "currency": "CNY"}
        if rng.random() < 0.7:
            pay["channel"] = rng.choice(["alipay", "wechat", "card", ""])
        add("payments", pay)
        if mixed and pay["type"] == "SUCCEEDED":  # the order service applies it: PAID
            paid = {"event_id": f"{oid}-paid", "order_id": oid, "type": "PAID",
                    "event_time": when(t + 61)}
            if i % 3:
                paid["payment_id"] = pay["payment_id"]
            add("orders", paid)
        add("shipping", {"event_id": f"{oid}-ship", "order_id": oid, "type": "CREATED",
                         "event_time": when(t + 90), "shipment_id": f"s-{oid}",
                         "items": [{"sku": f"sku-{i % 13}", "quantity": qty}]})
        if mixed and i % 5 == 0:
            add("orders", {"event_id": f"{oid}-cancel", "order_id": oid, "type": "CANCELLED",
                           "event_time": when(t + 100)})
            add("inventory", {"event_id": f"{oid}-rel", "order_id": oid, "type": "RELEASED",
                              "event_time": when(t + 101), "reservation_id": f"r-{oid}",
                              "sku": f"sku-{i % 13}", "quantity": qty})
            add("payments", {"event_id": f"{oid}-refund", "order_id": oid, "type": "REFUNDED",
                             "event_time": when(t + 102), "payment_id": f"p-{oid}",
                             "amount": qty * price, "currency": "CNY", "channel": "alipay"})
            add("shipping", {"event_id": f"{oid}-shipcancel", "order_id": oid,
                             "type": "CANCELLED", "event_time": when(t + 103),
                             "shipment_id": f"s-{oid}"})
    return lines


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def normalized(topic: str, event: dict[str, Any]) -> dict[str, Any]:
    """An event as the Avro record carries it: defaults filled in, time as epoch ms."""
    return {**DEFAULTS[topic], **event, "event_time": parse_event_time(event["event_time"])}


def by_order(lines: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """topic -> order_id -> normalized events in order."""
    result: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        event = normalized(line["topic"], line["event"])
        result[line["topic"]][event["order_id"]].append(event)
    return {topic: dict(orders) for topic, orders in result.items()}


def export_inputs(settings: Settings, topology: Topology,
                  idle_timeout: float = 3.0) -> list[dict[str, Any]]:
    """Export the four input topics (in parallel) and parse the JSON Lines."""

    def one(topic: TopicId) -> str:
        out = io.StringIO()
        export_topic(settings, topic, topology.name(topic), out, idle_timeout=idle_timeout)
        return out.getvalue()

    with ThreadPoolExecutor(len(INPUTS)) as pool:
        texts = list(pool.map(one, INPUTS))
    return [orjson.loads(line) for text in texts for line in text.splitlines()]


def read_all(settings: Settings, name: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """(partition, key, value) of every record of a topic, read up to the high watermarks."""
    consumer = Consumer(confluent_config(settings, **{
        "group.id": f"test-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "auto.offset.reset": "earliest",
    }))
    try:
        meta = consumer.list_topics(name, timeout=15).topics[name]
        highs = {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=15)[1]
                 for p in meta.partitions}
        pending = {p for p, high in highs.items() if high > 0}
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in sorted(pending)])
        records: list[tuple[int, bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=0.1):
                assert msg.error() is None, msg.error()
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None
                records.append((partition, msg.key(), msg.value()))
                if offset + 1 >= highs[partition]:
                    pending.discard(partition)
        assert not pending, f"{name}: partitions {pending} not read to the end"
        return records
    finally:
        consumer.close()


def high_watermarks(settings: Settings, topology: Topology) -> dict[str, int]:
    """Total records per input topic."""
    return {topic.value: len(read_all(settings, name)) for topic, name in topology.inputs()}


def run(args: list[str], env: dict[str, str], timeout: float = 180,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CROSSCHECK, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, check=False)


# --- produce -> export ------------------------------------------------------------------------


def test_produce_then_export_gives_the_same_events(settings: Settings, topology: Topology,
                                                   tmp_path: Path) -> None:
    lines = generate(300)
    path = write_lines(tmp_path / "events.jsonl", lines)
    report = produce_file(str(path), settings)
    assert not report.bad and not report.delivery_errors
    assert report.produced == len(lines)
    assert dict(report.by_topic) == {t: sum(1 for x in lines if x["topic"] == t)
                                     for t in DEFAULTS}
    exported = export_inputs(settings, topology)
    assert len(exported) == len(lines)
    for line in exported:
        assert set(line) == {"topic", "event"}
        assert line["event"]["event_time"].endswith("Z")
    # per order, each topic's events come back unchanged and in order
    assert by_order(exported) == by_order(lines)
    paid = [x["event"] for x in exported if x["event"]["type"] == "PAID"]
    assert paid and {bool(e["payment_id"]) for e in paid} == {True, False}


def test_each_order_lands_on_the_same_partition_in_every_input_topic(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    lines = generate(400, seed=11)
    report = produce_file(str(write_lines(tmp_path / "e.jsonl", lines)), settings)
    assert report.produced == len(lines)
    codec = Codec()
    placement: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for topic, name in topology.inputs():
        records = read_all(settings, name)
        assert len(records) == sum(1 for x in lines if x["topic"] == topic.value)
        for partition, key, value in records:
            assert key is not None
            order_id = key.decode("utf-8")
            assert partition == partition_for(order_id, 4), (topic, order_id)
            assert codec.decode_as(BY_ID[topic].value_schema, value)["order_id"] == order_id
            placement[order_id].add((topic.value, partition))
    assert len(placement) == 400
    for order_id, seen in placement.items():
        assert {t for t, _ in seen} == set(DEFAULTS), order_id
        assert len({p for _, p in seen}) == 1, (order_id, seen)
    assert len({p for seen in placement.values() for _, p in seen}) == 4


def test_a_100k_event_file_round_trips_unchanged(settings: Settings, topology: Topology,
                                                 tmp_path: Path) -> None:
    lines = generate(25_000, seed=3, mixed=False)
    assert len(lines) == 100_000
    path = write_lines(tmp_path / "ev100k.jsonl", lines)
    started = time.monotonic()
    report = produce_file(str(path), settings)
    produce_seconds = time.monotonic() - started
    assert report.produced == 100_000 and not report.bad and not report.delivery_errors
    exported = export_inputs(settings, topology, idle_timeout=2.0)
    assert len(exported) == 100_000
    # every event back unchanged (times aside), each order's events per topic in order
    assert by_order(exported) == by_order(lines)
    print(f"produced 100k events in {produce_seconds:.2f}s")


# --- the command line -------------------------------------------------------------------------


def _bad_file(path: Path) -> tuple[Path, list[str], int]:
    """A file with good and bad lines; returns (path, expected error lines, good count)."""
    good = generate(3, seed=5, mixed=False)
    bad_amount = {"topic": "payments", "event": {**good[2]["event"], "amount": -1}}
    no_payment_id = {"topic": "payments",
                     "event": {k: v for k, v in good[2]["event"].items() if k != "payment_id"}}
    rows = [
        orjson.dumps(good[0]).decode(),              # 1
        "",                                          # 2 (blank: skipped, still counted)
        orjson.dumps(bad_amount).decode(),           # 3
        orjson.dumps(good[1]).decode(),              # 4
        '{"topic": "payments", "event": {',          # 5
        orjson.dumps({"topic": "refunds", "event": good[2]["event"]}).decode(),  # 6
        orjson.dumps(good[2]).decode(),              # 7
        orjson.dumps(no_payment_id).decode(),        # 8
        orjson.dumps(good[3]).decode(),              # 9
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    expected = [
        f"{path}:3: event.amount: must not be negative: -1",
        f"{path}:5: not valid JSON",
        f"{path}:6: topic: 'refunds' is not an input topic",
        f"{path}:8: event.payment_id: is missing",
    ]
    return path, expected, 4


def test_bad_lines_are_reported_with_their_line_numbers(settings: Settings, topology: Topology,
                                                        tmp_path: Path) -> None:
    path, expected, good = _bad_file(tmp_path / "mixed.jsonl")
    result = run(["produce", str(path)], env_of(settings))
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{path}:")]
    assert len(errors) == len(expected), result.stderr
    for line, prefix in zip(errors, expected, strict=True):
        assert line.startswith(prefix), (line, prefix)
    assert "4 bad lines" in result.stderr
    assert "Traceback" not in result.stderr
    assert f"produced {good} events" in result.stdout
    assert high_watermarks(settings, topology) == {
        "orders": 1, "inventory": 1, "payments": 1, "shipping": 1}


def test_strict_produces_nothing(settings: Settings, topology: Topology,
                                 tmp_path: Path) -> None:
    path, expected, _ = _bad_file(tmp_path / "mixed.jsonl")
    result = run(["produce", "--strict", str(path)], env_of(settings))
    assert result.returncode == 1, result.stderr
    for prefix in expected:
        assert prefix in result.stderr
    assert "nothing produced (--strict)" in result.stderr
    assert high_watermarks(settings, topology) == {t.value: 0 for t in TYPES}


def test_strict_with_only_good_lines_produces_all(settings: Settings, topology: Topology,
                                                  tmp_path: Path) -> None:
    lines = generate(10, seed=9)
    result = run(["produce", "--strict", str(write_lines(tmp_path / "ok.jsonl", lines))],
                 env_of(settings))
    assert result.returncode == 0, result.stderr
    assert f"produced {len(lines)} events" in result.stdout
    assert sum(high_watermarks(settings, topology).values()) == len(lines)


def test_cli_export_writes_the_produce_form(settings: Settings, topology: Topology,
                                            tmp_path: Path) -> None:
    lines = generate(20, seed=4)
    env = env_of(settings)
    produced = run(["produce", str(write_lines(tmp_path / "in.jsonl", lines))], env)
    assert produced.returncode == 0, produced.stderr
    out = tmp_path / "payments.jsonl"
    result = run(["export", "payments", "--out", str(out), "--idle-timeout", "3"], env)
    assert result.returncode == 0, result.stderr
    exported = [orjson.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    payments = [x for x in lines if x["topic"] == "payments"]
    assert f"exported {len(payments)} records" in result.stderr
    assert by_order(exported) == by_order(payments)


def test_export_of_an_empty_topic_stops_after_the_idle_timeout(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    out = tmp_path / "empty.jsonl"
    started = time.monotonic()
    result = run(["export", "payments", "--out", str(out), "--idle-timeout", "2"],
                 env_of(settings), timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == ""
    assert "exported 0 records" in result.stderr
    assert 2.0 <= elapsed < 30, elapsed


def test_export_in_process_of_an_empty_topic(settings: Settings, topology: Topology) -> None:
    out = io.StringIO()
    started = time.monotonic()
    count = export_topic(settings, TopicId.SHIPPING, topology.name(TopicId.SHIPPING), out,
                         idle_timeout=1.5)
    assert count == 0 and out.getvalue() == ""
    assert 1.5 <= time.monotonic() - started < 20


def test_produce_against_a_dead_address_is_one_clear_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "e.jsonl", generate(2, seed=1))
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
               CROSSCHECK_HOME=str(tmp_path / "home"))
    result = run(["produce", str(path)], env, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1" in lines[0]
    assert result.stdout.strip() == ""
