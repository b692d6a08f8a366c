"""Benchmark input: simulated traffic on topics of its own, and the raw-consumer ceiling."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.codec import Codec
from streams.clients import admin, confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.produce import EventPublisher, ParsedLine
from streams.simulate import FAULTS, SimConfig, simulate
from topology.topics import INPUTS, TopicId, Topology

Record = tuple[TopicId, dict[str, Any]]
#: events per simulated order, on average (a little over 9): for sizing the simulation
EVENTS_PER_ORDER = 9
#: the fault mix of the benchmark traffic: every fault, 0.5 % of the orders each
FAULT_RATE = 0.005
#: the latency phase's traffic: every fault at 3 %, for enough mismatches to measure
LATENCY_FAULT_RATE = 0.03


def generate(events: int, seed: int, settings: Settings, fault_rate: float = FAULT_RATE,
             span: int | None = None) -> list[Record]:
    """``events`` simulated input events (publish order), every fault at ``fault_rate``;
    orders arrive over ``span`` of event time (default: the simulator's)."""
    orders = max(1, events // EVENTS_PER_ORDER + 1)
    spanned = {} if span is None else {"span": span}
    while True:
        traffic = simulate(SimConfig(orders=orders, seed=seed, rules=settings.rules,
                                     faults=dict.fromkeys(FAULTS, fault_rate), **spanned))
        if len(traffic.events) >= events:
            return traffic.events[:events]
        orders = orders * events // max(len(traffic.events), 1) + 10


@dataclass
class Loaded:
    """What was published."""

    events: int
    seconds: float
    first_time: int
    last_time: int

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / max(self.seconds, 1e-3)


def preload(settings: Settings, records: Iterable[Record], flush_timeout: float = 300.0
            ) -> Loaded:
    """Publish the records (a list, or a generator: they are read once) to the input topics
    and wait until all are acknowledged."""
    began = time.monotonic()
    publisher = EventPublisher(settings)
    count, first, last = 0, None, None
    for topic, record in records:
        publisher.publish(ParsedLine(topic, record["order_id"], record))
        t = record["event_time"]
        first = t if first is None else min(first, t)
        last = t if last is None else max(last, t)
        count += 1
    publisher.flush(flush_timeout)
    if publisher.errors:
        raise CrosscheckError(f"publishing failed: {publisher.errors[:3]}")
    if first is None or last is None:
        raise CrosscheckError("nothing to publish")
    return Loaded(count, time.monotonic() - began, first, last)


class Pacer(threading.Thread):
    """Publishes the records at a steady rate (in bursts of 16), counting what it has sent;
    ``start()`` it as a thread, or ``run()`` it in the caller's. ``pause()`` parks it with
    everything sent acknowledged; ``resume()`` goes on where it stopped, at the same rate."""

    def __init__(self, settings: Settings, records: list[Record], rate: float) -> None:
        super().__init__(daemon=True, name="bench-publisher")
        self.settings, self.records, self.rate = settings, records, rate
        self.sent = 0
        self.error: str | None = None
        self._go = threading.Event()
        self._go.set()
        self._parked = threading.Event()

    def pause(self, timeout: float = 120.0) -> bool:
        """Stop publishing and wait until what was sent is acknowledged (or the thread has
        ended). False if that took longer than ``timeout``."""
        self._go.clear()
        deadline = time.monotonic() + timeout
        while self.is_alive() and not self._parked.is_set():
            if time.monotonic() > deadline:
                return False
            self._parked.wait(0.1)
        return True

    def resume(self) -> None:
        """Go on publishing after a pause."""
        self._go.set()

    def run(self) -> None:
        """Publish every record, sleeping to keep the rate."""
        publisher = EventPublisher(self.settings)
        began = time.monotonic()
        for i, (topic, record) in enumerate(self.records):
            if i % 16 == 0:
                if not self._go.is_set():
                    parked = time.monotonic()
                    publisher.flush(120)
                    self._parked.set()
                    self._go.wait()
                    self._parked.clear()
                    began += time.monotonic() - parked
                delay = began + i / self.rate - time.monotonic()
                if delay > 0.01:
                    time.sleep(delay)
                self.sent = i
            publisher.publish(ParsedLine(topic, record["order_id"], record))
        publisher.flush(120)
        self.sent = len(self.records)
        if publisher.errors:
            self.error = f"publishing failed: {publisher.errors[:3]}"


def input_tps(topology: Topology) -> list[TopicPartition]:
    """Every input topic-partition."""
    return [TopicPartition(topology.name(t), p)
            for t in INPUTS for p in range(topology.partitions)]


def ceiling(settings: Settings, topology: Topology, expected: int,
            timeout: float = 600.0) -> tuple[int, float, float]:
    """Read and Avro-decode every input record with a bare confluent-kafka consumer.

    Read committed, from the start: the most any consumer here can do. Returns (records,
    seconds from the first record to the last, seconds with the consumer's start-up).
    """
    codec = Codec()
    consumer = Consumer(confluent_config(settings, **{
        "group.id": f"{settings.app_id}-ceiling-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }))
    tps = input_tps(topology)
    for tp in tps:
        tp.offset = OFFSET_BEGINNING
    consumer.assign(tps)
    count = 0
    began = time.monotonic()
    first: float | None = None
    try:
        while count < expected:
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                first = first or time.monotonic()
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise CrosscheckError(f"ceiling consumer: {error}")
                    continue
                codec.decode(msg.value())
                count += 1
            if time.monotonic() - began > timeout:
                raise CrosscheckError(f"ceiling consumer read {count}/{expected} records")
        now = time.monotonic()
        return count, now - (first or began), now - began
    finally:
        consumer.close()


def drop_topics(settings: Settings, prefixes: list[str]) -> list[str]:
    """Delete every topic whose name starts with one of the prefixes; returns their names."""
    client = admin(settings)
    names = [n for n in client.list_topics(timeout=15).topics
             if any(n.startswith(p) for p in prefixes)]
    if names:
        for future in client.delete_topics(names, operation_timeout=60).values():
            future.result()
    return sorted(names)
