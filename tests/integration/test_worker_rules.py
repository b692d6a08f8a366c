"""Real-broker tests of `crosscheck worker`: its mismatches and commands equal batch.evaluate's.

Each test gets its own topics and consumer group (the `settings` / `topology` fixtures), runs
one worker subprocess with the short thresholds of `scenarios.RULES`, waits until it has
committed every input and the idle inputs have let every decision come due, stops it with
SIGTERM and reads its outputs back with read_committed.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.codec import Codec
from streams.clients import confluent_config
from streams.config import Settings
from streams.produce import EventPublisher
from streams.rules.catalog import RULE_OF
from tests.integration.scenarios import (
    SECOND,
    Line,
    Scenario,
    rules_scenario,
)
from tests.integration.worker_support import (
    Progress,
    WorkerOutputs,
    assert_no_duplicates,
    assert_same,
    produce,
    read_outputs,
    running_worker,
    wait_for_members,
    wait_until_judged,
)
from topology.partitioner import partition_for
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration

#: every type the rule table decides (all of them, once each rule is in the table)
JUDGED = {t.value for t in RULE_OF}


def judge(settings: Settings, topology: Topology, log: Path, *,
          before: list[Line] | None = None, live: list[list[Line]] | None = None,
          pause: float = 0.2, extra_args: tuple[str, ...] = ()) -> WorkerOutputs:
    """Produce `before`, start a worker, produce the `live` chunks `pause` s apart while it
    runs, wait until it has judged everything, stop it (SIGTERM) and read its outputs."""
    if before:
        produce(settings, before)
    progress = Progress(settings, topology)
    try:
        with running_worker(settings, log, extra_args=extra_args) as worker:
            if live:
                wait_for_members(settings, worker)
                publisher = EventPublisher(settings)
                for chunk in live[:-1]:
                    produce(settings, chunk, publisher)
                    time.sleep(pause)
                # the worker judged while the input was still being written
                live_committed = progress.committed_inputs()
                assert live_committed > len(before or ()), \
                    f"nothing committed while producing\n{worker.log_tail()}"
                produce(settings, live[-1], publisher)
            wait_until_judged(worker, progress)
            code = worker.terminate()
            assert code == 0, f"worker exited with {code}\n{worker.log_tail()}"
    finally:
        progress.close()
    return read_outputs(settings, topology)


def check_against_batch(scenario: Scenario, outputs: WorkerOutputs, log: Path,
                        exclude: set[int] | None = None) -> None:
    """Outputs == batch.evaluate (statuses, resolutions and all), without duplicates."""
    expected = scenario.expected(exclude)
    assert_same(outputs.normalized(), expected, f"worker log: {log}")
    assert_no_duplicates(outputs, expected)


def test_live_interleaved_stream_equals_batch(settings: Settings, topology: Topology,
                                              tmp_path: Path) -> None:
    """Every rule's faults, produced in event-time order while the worker runs."""
    scenario = rules_scenario(copies=3)
    chunks = list(scenario.chunks(15 * SECOND))
    log = tmp_path / "worker.log"
    # the first window is there before the worker starts, so that no input is idle when the
    # rest arrives (a window is shorter than the allowed lateness, so nothing gets late)
    outputs = judge(settings, topology, log, before=chunks[0], live=chunks[1:])
    check_against_batch(scenario, outputs, log)
    opened = Counter(m["type"] for m in outputs.mismatches if m["status"] == "OPEN")
    assert set(opened) == JUDGED, opened
    resolved = Counter(m["type"] for m in outputs.mismatches if m["status"] == "RESOLVED")
    assert sum(resolved.values()) >= 10, resolved
    assert {c["type"] for c in outputs.commands} == {
        "RELEASE_STOCK", "REFUND_PAYMENT", "HOLD_SHIPMENT", "EXPEDITE_SHIPMENT",
        "MARK_ORDER_PAID"}
    # two mismatches calling for the same action (OVERSHIPMENT + SHIPPED_WITHOUT_PAYMENT of
    # one shipment; TCC_HANGING + RESERVATION_WITHOUT_PAYMENT of one reservation): one command
    by_command = Counter(m["command_id"] for m in outputs.mismatches
                         if m["status"] == "OPEN" and m["command_id"])
    assert any(n > 1 for n in by_command.values())
    assert not outputs.dead_letters


def test_topic_after_topic_before_start_equals_batch(settings: Settings, topology: Topology,
                                                     tmp_path: Path) -> None:
    """All orders events, then all payments, inventory, shipping, before the worker starts."""
    scenario = rules_scenario(copies=3, seed=11)
    log = tmp_path / "worker.log"
    outputs = judge(settings, topology, log, before=scenario.topic_after_topic())
    check_against_batch(scenario, outputs, log)
    assert {m["type"] for m in outputs.mismatches} == JUDGED
    assert not outputs.dead_letters


def test_redeliveries_emit_each_mismatch_and_command_once(settings: Settings,
                                                          topology: Topology,
                                                          tmp_path: Path) -> None:
    """Half of the events redelivered (same event_id) up to 3 s later, at-least-once mode:
    each (mismatch_id, status) and each command_id still comes exactly once."""
    scenario = rules_scenario(copies=2, seed=5)
    scenario.redeliver(0.5)
    log = tmp_path / "worker.log"
    outputs = judge(settings, topology, log, before=scenario.in_time_order(),
                    extra_args=("--processing-guarantee", "at_least_once"))
    statuses = Counter((m["mismatch_id"], m["status"]) for m in outputs.mismatches)
    assert statuses and max(statuses.values()) == 1
    commands = Counter(c["command_id"] for c in outputs.commands)
    assert commands and max(commands.values()) == 1
    check_against_batch(scenario, outputs, log)


# -- bad records ----------------------------------------------------------------------------


class RawProducer:
    """A plain producer that reports where each record landed."""

    def __init__(self, settings: Settings) -> None:
        self.producer = Producer(confluent_config(settings, **{"enable.idempotence": True}))
        self.landed: list[tuple[str, int, int]] = []
        self.errors: list[str] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             partition: int | None = None) -> None:
        def done(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.landed.append((msg.topic(), msg.partition(), msg.offset()))

        kwargs: dict[str, Any] = {"on_delivery": done}
        if partition is not None:
            kwargs["partition"] = partition
        else:
            kwargs["partition"] = partition_for(key or b"", 4)
        self.producer.produce(topic, value, key, **kwargs)
        self.producer.flush(30)
        assert not self.errors, self.errors


def test_bad_records_go_to_the_dlq_and_the_rest_is_judged(settings: Settings,
                                                         topology: Topology,
                                                         tmp_path: Path) -> None:
    scenario = rules_scenario(copies=1, seed=3)
    ordered = scenario.in_time_order()
    codec = Codec()
    name = topology.name
    victim = "rwp-open-0"  # RESERVATION_WITHOUT_PAYMENT unless a payment counts
    home = partition_for(victim, 4)
    payment = {"event_id": "bad-pay", "order_id": victim, "type": "SUCCEEDED",
               "event_time": ordered[len(ordered) // 2].record["event_time"],
               "payment_id": "bad-p", "amount": 3000, "currency": "CNY", "channel": ""}
    reservation = {"event_id": "bad-res", "order_id": victim, "type": "RESERVED",
                   "event_time": payment["event_time"], "reservation_id": "bad-r", "sku": "A",
                   "quantity": 0}
    order = {"event_id": "bad-ord", "order_id": victim, "type": "PLACED",
             "event_time": payment["event_time"], "user_id": "u", "total_amount": 1,
             "currency": "CNY", "items": [{"sku": "A", "quantity": 1, "unit_price": 1}]}
    key = victim.encode()
    bad: list[tuple[str, bytes | None, bytes | None, int | None, str]] = [
        # (topic, key, value, partition or None for murmur2, what the reason mentions)
        (name(TopicId.PAYMENTS), key, b"\xde\xad\xbe\xef not avro at all", None, "magic"),
        (name(TopicId.SHIPPING), key, b"\x00\x00", None, "short"),
        (name(TopicId.INVENTORY), key,
         codec.encode("OrderEvent", order, name(TopicId.INVENTORY)), None, "OrderEvent"),
        (name(TopicId.PAYMENTS), key,
         codec.encode("PaymentEvent", {**payment, "amount": -5}, name(TopicId.PAYMENTS)),
         None, "amount"),
        (name(TopicId.INVENTORY), key,
         codec.encode("InventoryEvent", reservation, name(TopicId.INVENTORY)), None,
         "quantity"),
        (name(TopicId.ORDERS), key, None, None, "tombstone"),
        # a good payment that would resolve the victim, on the wrong partition
        (name(TopicId.PAYMENTS), key,
         codec.encode("PaymentEvent", payment, name(TopicId.PAYMENTS)), (home + 1) % 4,
         "misrouted"),
    ]
    half = len(ordered) // 2
    produce(settings, ordered[:half])
    raw = RawProducer(settings)
    for topic, k, value, partition, _ in bad:
        raw.send(topic, k, value, partition)
    produce(settings, ordered[half:])

    log = tmp_path / "worker.log"
    outputs = judge(settings, topology, log)
    check_against_batch(scenario, outputs, log)
    assert any(m["order_id"] == victim and m["type"] == "RESERVATION_WITHOUT_PAYMENT"
               and m["status"] == "OPEN" for m in outputs.mismatches)
    assert not any(m["order_id"] == victim and m["status"] == "RESOLVED"
                   for m in outputs.mismatches)

    letters = sorted(outputs.dead_letters, key=lambda d: (d["source_topic"], d["partition"],
                                                         d["offset"]))
    assert len(letters) == len(bad), letters
    by_place = {(d["source_topic"], d["partition"], d["offset"]): d for d in letters}
    for (_topic, k, value, _partition, mention), place in zip(bad, raw.landed, strict=True):
        letter = by_place.get(place)
        assert letter is not None, f"no dead letter for {place}: {letters}"
        assert letter["key"] == k
        assert letter["value"] == value
        assert mention.lower() in letter["reason"].lower(), (mention, letter["reason"])
        assert letter["failed_at"] > 0
