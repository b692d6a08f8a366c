"""`crosscheck ingest` on the real broker: a shop's own JSON events, mapped by the example
sources file, judged by the worker exactly as the batch evaluator judges the simulator's
events; Debezium change events delivered twice are one event; a restarted ingest writes
nothing twice; bad records are dead-lettered while the stream goes on."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from schemas.validation import format_time
from streams.batch import evaluate
from streams.clients import admin, confluent_config
from streams.config import Settings
from streams.model import Event
from streams.records import event_from_record, source_of
from streams.simulate import FAULTS, SimConfig, expected_outputs, generate
from streams.sources import SourcesFile, parse_sources
from streams.sources.ingest import Ingest
from streams.verify import expected_records
from tests.integration.conftest import env_of
from tests.integration.scenarios import PARTITIONS, RULES, Outputs
from tests.integration.worker_support import (
    CROSSCHECK,
    WorkerOutputs,
    WorkerProcess,
    assert_no_duplicates,
    assert_same,
    read_outputs,
    read_records,
    running_worker,
)
from tests.unit.shop_json import SOURCES_JSON, TOPIC, shop_value
from topology.admin import create_new
from topology.partitioner import partition_for
from topology.topics import INPUTS, TopicId, Topology

pytestmark = pytest.mark.integration

Record = tuple[TopicId, dict[str, Any]]


def shop_topics(settings: Settings, names: list[str], partitions: int = PARTITIONS) -> None:
    """Create the shop's own topics (the broker does not create topics by itself)."""
    create_new(admin(settings), [NewTopic(n, num_partitions=partitions, replication_factor=1)
                                 for n in names])


class ShopProducer:
    """Publishes records keyed by order id on the partition murmur2 gives it (as a Java
    producer, or Debezium with message.key.columns and a string key, does)."""

    def __init__(self, settings: Settings) -> None:
        self.producer = Producer(confluent_config(settings, **{"enable.idempotence": True,
                                                               "linger.ms": 5}))
        self.errors: list[str] = []

    def send(self, topic: str, order_id: str, value: bytes | None) -> None:
        def done(err: Any, _msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))

        self.producer.produce(topic, value, order_id.encode(), on_delivery=done,
                              partition=partition_for(order_id, PARTITIONS))
        self.producer.poll(0)

    def flush(self) -> None:
        self.producer.flush(60)
        assert not self.errors, self.errors[:3]


def contract_records(settings: Settings, topology: Topology) -> list[Record]:
    """Every record of the contract's input topics (read_committed)."""
    return [(topic, record) for topic in INPUTS
            for record in read_records(settings, topology.name(topic))]


def key(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def wait_for_outputs(worker: WorkerProcess, settings: Settings, topology: Topology,
                     expected: Outputs, timeout: float = 300.0) -> WorkerOutputs:
    """The worker's outputs once they equal ``expected``, or at the timeout. (The ingest
    writes in transactions, so each input partition ends with a commit marker that no
    consumer receives: committed offsets stay one below the end and cannot show the end.)"""
    deadline = time.monotonic() + timeout
    while True:
        assert worker.alive(), f"worker exited:\n{worker.log_tail()}"
        outputs = read_outputs(settings, topology)
        if outputs.normalized() == expected or time.monotonic() > deadline:
            return outputs
        time.sleep(2)


# -- JSON events through the CLI, judged by the worker --------------------------------------


def test_json_sources_are_judged_as_the_batch_evaluator_judges_the_events(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    events = generate(SimConfig(orders=400, seed=9, rules=RULES,
                                faults=dict.fromkeys(FAULTS, 0.03)))
    prefix = settings.topic_prefix
    shop_topics(settings, [prefix + name for name in TOPIC.values()])
    sources = tmp_path / "sources.toml"
    sources.write_text(SOURCES_JSON.read_text().replace('topic = "shop.',
                                                        f'topic = "{prefix}shop.'))
    # what the shop also writes: records that are no event, and records that do not map
    order = events[len(events) // 3][1]["order_id"]
    pending = {"id": "pend-1", "orderNo": order, "state": "PENDING", "ts": 1_795_255_200_000,
               "payment": {"no": "PAY-X", "amount": 1, "currency": "CNY", "channel": ""}}
    skips = [(TopicId.PAYMENTS, json.dumps(pending).encode()), (TopicId.PAYMENTS, None)]
    bad = [(TopicId.PAYMENTS, json.dumps({**pending, "state": "CHARGEBACK"}).encode(),
            "type = \"state\": 'CHARGEBACK' is not in [inputs.payments.types]"),
           (TopicId.INVENTORY, b"{\"messageId\": ",
            "format = \"json\": not JSON: Input data was truncated"),
           (TopicId.PAYMENTS, json.dumps({**pending, "state": "SUCCESS", "payment": {
               "no": "PAY-X", "currency": "CNY"}}).encode(),
            "amount = \"payment.amount\": not in the record (no payment.amount)")]
    shop = ShopProducer(settings)
    for n, (topic, record) in enumerate(events):
        if n in (len(events) // 3, len(events) // 2):
            for extra_topic, value in skips:
                shop.send(prefix + TOPIC[extra_topic], order, value)
            for extra_topic, value, _reason in bad:
                shop.send(prefix + TOPIC[extra_topic], order, value)
        shop.send(prefix + TOPIC[topic], record["order_id"], shop_value(topic, record))
    shop.flush()

    done = subprocess.run([CROSSCHECK, "ingest", "--sources", str(sources), "--until-idle",
                           "3", "--report-every", "0"], env=env_of(settings),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (f"read {len(events) + 2 * (len(skips) + len(bad))}, mapped {len(events)}, "
            f"skipped 4 (status PENDING is skipped 2, tombstone 2), dead-lettered 6") \
        in done.stdout, done.stdout + done.stderr

    # the contract's topics hold exactly the events, each once, on its order's partition
    ingested = contract_records(settings, topology)
    assert Counter(key(r) for _, r in ingested) == Counter(key(r) for _, r in events)
    letters = read_records(settings, topology.name(TopicId.DLQ))
    assert Counter(letter["reason"] for letter in letters) == Counter(
        f"{t.value} (json {prefix}{TOPIC[t]}): {reason}" for t, _v, reason in bad for _ in "ab")
    assert all(letter["key"] == order.encode() for letter in letters)

    ref = expected_records(expected_outputs(events, RULES, PARTITIONS))
    expected = Outputs(ref.mismatches, ref.commands)
    assert len(expected.mismatches) > 20  # the faults were injected
    log = tmp_path / "worker.log"
    with running_worker(settings, log) as worker:
        outputs = wait_for_outputs(worker, settings, topology, expected)
        assert worker.terminate() == 0, worker.log_tail()
    assert_same(outputs.normalized(), expected, f"worker log: {log}")
    assert_no_duplicates(outputs, expected)
    assert outputs.dead_letters == letters  # the ingest's only: what it wrote is valid


# -- Debezium change events: redelivery and a restarted ingest ------------------------------

DEBEZIUM_PAYMENTS = """\
[inputs.payments]
topic = "{topic}"
format = "debezium"
order_id = "order_id"
payment_id = "id"
amount = "amount_cents"
currency = "currency"
channel = "channel"
event_time = "updated_at"
type = "status"
[inputs.payments.types]
pending = "skip"
paid = "SUCCEEDED"
failed = "FAILED"
refunded = "REFUNDED"
"""
STATUS = {"SUCCEEDED": "paid", "FAILED": "failed", "REFUNDED": "refunded"}


class PaymentsTable:
    """The change stream of a payments table (REPLICA IDENTITY FULL) that goes through the
    simulator's payment events: a row is inserted as pending, then updated to each status;
    some updates touch another column only; a redelivered event is the same change again
    (same LSN), as Connect sends it after a restart."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.lsn = 24_000_000
        self.changes: list[tuple[str, bytes]] = []  # (order_id, change event)
        self.sent: dict[str, bytes] = {}  # event_id -> its change
        #: the contract events the changes stand for, renamed table:key:lsn
        self.events: list[dict[str, Any]] = []
        self.pending = self.touches = 0

    def _change(self, op: str, before: dict[str, Any] | None, after: dict[str, Any]) -> bytes:
        self.lsn += 8
        ts = 1_795_255_200_000 + self.lsn
        return json.dumps({
            "before": before, "after": after, "op": op, "ts_ms": ts, "transaction": None,
            "source": {"version": "3.6.1.Final", "connector": "postgresql", "name": "shop",
                       "ts_ms": ts, "snapshot": "false", "db": "shop", "schema": "public",
                       "table": "payments", "txId": self.lsn // 8, "lsn": self.lsn,
                       "xmin": None}}).encode()

    def apply(self, record: dict[str, Any], touch: bool) -> None:
        order_id, event_id = record["order_id"], record["event_id"]
        if event_id in self.sent:  # redelivered
            self.changes.append((order_id, self.sent[event_id]))
            return
        pid = record["payment_id"]
        row = {"id": pid, "order_id": order_id, "status": STATUS[record["type"]],
               "amount_cents": record["amount"], "currency": record["currency"],
               "channel": record["channel"], "note": "",
               "updated_at": format_time(record["event_time"]).replace("Z", "000Z")}
        before = self.rows.get(pid)
        if before is None:
            before = {**row, "status": "pending"}
            self.changes.append((order_id, self._change("c", None, before)))
            self.pending += 1
        change = self._change("u", before, row)
        self.changes.append((order_id, change))
        self.sent[event_id] = change
        self.events.append({**record, "event_id": f"public.payments:{pid}:{self.lsn}"})
        self.rows[pid] = row
        if touch:
            touched = {**row, "note": "checked"}
            self.changes.append((order_id, self._change("u", row, touched)))
            self.rows[pid] = touched
            self.touches += 1


def run_ingest(settings: Settings, sources: SourcesFile) -> dict[str, Any]:
    runner = Ingest(settings, sources, batch_size=50)
    runner.start()
    try:
        stats = runner.run(threading.Event(), until_idle=2.0)
    finally:
        runner.close()
    return {"mapped": sum(stats.mapped.values()), "skipped": dict(stats.skipped),
            "transactions": stats.transactions}


def test_a_redelivered_change_is_one_event_and_a_restarted_ingest_writes_nothing_twice(
        settings: Settings, topology: Topology) -> None:
    events = generate(SimConfig(orders=80, seed=5, rules=RULES,
                                faults=dict.fromkeys(FAULTS, 0.05), redelivery_rate=0.05))
    table = PaymentsTable()
    for n, (topic, record) in enumerate(events):
        if topic is TopicId.PAYMENTS:
            table.apply(record, touch=n % 7 == 0)
    redelivered = sum(1 for t, r in events if t is TopicId.PAYMENTS) - len(table.events)
    assert redelivered > 0 and table.touches > 0
    source = f"{settings.topic_prefix}shop.public.payments"
    shop_topics(settings, [source])
    sources = parse_sources(DEBEZIUM_PAYMENTS.format(topic=source))
    shop = ShopProducer(settings)
    half = len(table.changes) // 2
    for order_id, change in table.changes[:half]:
        shop.send(source, order_id, change)
    shop.flush()
    first = run_ingest(settings, sources)
    # Connect restarts: the last changes it sent come again, then the rest
    again = table.changes[half - 10:half]
    for order_id, change in again + table.changes[half:]:
        shop.send(source, order_id, change)
    shop.flush()
    second = run_ingest(settings, sources)

    mapped = first["mapped"] + second["mapped"]
    skipped = Counter(first["skipped"]) + Counter(second["skipped"])
    assert skipped == {("payments", "status pending is skipped"): table.pending
                       + sum(1 for _o, c in again if b'"op": "c"' in c),
                       ("payments", "status unchanged"): table.touches
                       + sum(1 for _o, c in again if b'"note": "checked"}' in c)}
    ingested = [r for _t, r in contract_records(settings, topology)]
    assert len(ingested) == mapped  # each source record once, across the restart
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in ingested:
        by_id.setdefault(record["event_id"], []).append(record)
    # a change delivered twice is the same event (same event_id, same record)
    assert len(by_id) == len(table.events) < len(ingested)
    assert all(all(r == copies[0] for r in copies) for copies in by_id.values())
    assert sorted(key(r) for r in table.events) == sorted(key(c[0]) for c in by_id.values())
    # and the rules see it once
    judged = [event_from_record(source_of(TopicId.PAYMENTS), r) for r in ingested]
    once: list[Event] = [event_from_record(source_of(TopicId.PAYMENTS), r)
                         for r in table.events]
    decided = evaluate(once, RULES, partitions=PARTITIONS, clock=lambda: 0)
    assert decided and evaluate(judged, RULES, partitions=PARTITIONS, clock=lambda: 0) == decided


# -- start-up checks and stopping -----------------------------------------------------------


def test_start_up_refuses_what_it_cannot_ingest_in_order_and_sigterm_stops_cleanly(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    prefix = settings.topic_prefix
    topic = f"{prefix}shop.public.payments"
    sources = tmp_path / "sources.toml"
    sources.write_text(DEBEZIUM_PAYMENTS.format(topic=topic))

    def ingest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CROSSCHECK, "ingest", "--sources", str(sources), *args],
                              env=env_of(settings), capture_output=True, text=True,
                              timeout=120, check=False)

    missing = ingest("--check")
    assert missing.returncode == 2
    assert f"payments: source topic '{topic}' does not exist" in missing.stderr
    shop_topics(settings, [topic], partitions=1)
    one = ingest("--check")
    assert one.returncode == 2
    assert (f"payments: source topic '{topic}' has 1 partition(s), the inputs have 4"
            in one.stderr)
    assert "topic.creation.default.partitions=4" in one.stderr
    assert "message.key.columns=public.payments:order_id" in one.stderr
    assert ingest("--check", "--repartition").returncode == 0

    sources.write_text(DEBEZIUM_PAYMENTS.format(topic=topic).replace('"SUCCEEDED"', '"PAID"'))
    refused = ingest("--check")
    assert refused.returncode == 2
    assert f"{sources}:13: [inputs.payments] types.paid: 'PAID' is not a payments event type" \
        in refused.stderr

    sources.write_text(DEBEZIUM_PAYMENTS.format(topic=topic))
    proc = subprocess.Popen([CROSSCHECK, "ingest", "--sources", str(sources), "--repartition"],
                            env=env_of(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not committed_group(settings, topic):
            assert time.monotonic() < deadline, "the ingest never got the source partition"
            time.sleep(0.5)
        # a check beside the running ingest does not fence it: it goes on mapping
        assert ingest("--check", "--repartition").returncode == 0
        table = PaymentsTable()
        table.apply({"event_id": "e1", "order_id": "ORD-1", "type": "SUCCEEDED",
                     "event_time": 1_795_255_200_000, "payment_id": "PAY-1", "amount": 100,
                     "currency": "CNY", "channel": ""}, touch=False)
        shop = ShopProducer(settings)
        for order_id, change in table.changes:
            shop.producer.produce(topic, change, order_id.encode())
        shop.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not read_records(
                settings, topology.name(TopicId.PAYMENTS)):
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert ("ingest: read 2, mapped 1, skipped 1 (status pending is skipped 1), "
            "dead-lettered 0") in out, out + err


def committed_group(settings: Settings, topic: str) -> bool:
    """True once the ingest's group has the topic's partitions assigned."""
    group = f"{settings.app_id}-ingest"
    client = admin(settings)  # kept: a client dropped before its future resolves never answers
    try:
        found = client.describe_consumer_groups([group])[group].result(timeout=10)
    except Exception:
        return False
    return any(tp.topic == topic for m in found.members if m.assignment
               for tp in m.assignment.topic_partitions)
