"""Decision latency: from the watermark passing D to the mismatch being readable.

A worker (exactly-once) runs on topics of its own while simulated events are published at a
steady rate. The engine stamps each mismatch's ``detected_at`` with the wall clock at the
moment it decides it, which is when its watermark passes D; a read_committed consumer
tailing the mismatches topic notes when each one becomes readable (its transaction
committed and fetched). Latency = receive time - detected_at, on the same host clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.codec import Codec
from schemas.errors import DecodeError
from streams.bench.data import Pacer, Record, preload
from streams.bench.procs import Child
from streams.bench.worker import GroupOffsets, free_port
from streams.chaos.monitor import health
from streams.clients import admin, confluent_config
from streams.clock import wall_ms
from streams.config import Settings
from streams.errors import CrosscheckError
from topology.admin import create_topics
from topology.topics import TopicId, Topology


class Tail(threading.Thread):
    """Reads a topic from the start (read_committed); notes receive time - detected_at."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        super().__init__(daemon=True, name="bench-tail")
        self.latencies: list[int] = []
        #: detected_at of each measured mismatch, in the order of ``latencies``
        self.detected: list[int] = []
        self._stop_event = threading.Event()
        self._consumer = Consumer(confluent_config(settings, **{
            "group.id": f"{settings.app_id}-tail", "enable.auto.commit": False,
            "isolation.level": "read_committed", "fetch.wait.max.ms": 10,
        }))
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for p in range(partitions)])
        self._codec = Codec()

    def run(self) -> None:
        """Read until stopped."""
        try:
            while not self._stop_event.is_set():
                for msg in self._consumer.consume(num_messages=1000, timeout=0.05):
                    if msg.error() is not None:
                        continue
                    now = wall_ms()
                    try:
                        record = self._codec.decode(msg.value())[1]
                    except DecodeError:
                        continue
                    if isinstance(record.get("detected_at"), int):
                        self.latencies.append(now - record["detected_at"])
                        self.detected.append(record["detected_at"])
        finally:
            self._consumer.close()

    def stop(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop_event.set()
        self.join(30)


@dataclass
class LatencyFigures:
    """Decision latency over the mismatches of the paced run (ms)."""

    mismatches: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    events: int
    rate: float
    #: p50/p99 of the mismatches decided from WARMUP_MS after the paced run began (the
    #: first second or so after a worker starts is slower: see the README's benchmark)
    steady_p50_ms: float | None = None
    steady_p99_ms: float | None = None
    steady_mismatches: int = 0


#: the start of a paced run left out of the steady-state percentiles
WARMUP_MS = 2_000


def percentile(values: list[int], q: float) -> float | None:
    """The q-quantile (nearest rank) of the values, or None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def wait_for_assignment(settings: Settings, child: Child, timeout: float = 120.0) -> None:
    """Wait until the worker's consumer group is stable with partitions assigned."""
    client = AdminClient(confluent_config(settings))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise CrosscheckError(f"the worker exited:\n{child.log_tail()}")
        try:
            desc = client.describe_consumer_groups([settings.app_id])[settings.app_id]
            group = desc.result(timeout=10)
            if str(group.state).endswith("STABLE") and any(
                    m.assignment and m.assignment.topic_partitions for m in group.members):
                return
        except Exception:  # the group does not exist yet
            pass
        time.sleep(0.3)
    raise CrosscheckError(f"the worker never got its partitions:\n{child.log_tail()}")


def wait_until_ready(port: int, child: Child, timeout: float = 120.0) -> None:
    """Wait until the worker's /health says it is ready: its table recovery is done and it
    consumes. (A group is stable a second or so before that: events paced from then on
    piled up and were judged in catch-up batches, which put start-up into the p99.)"""
    deadline = time.monotonic() + timeout
    while health(port) != "ready":
        if not child.alive() or time.monotonic() > deadline:
            raise CrosscheckError(f"the worker never became ready:\n{child.log_tail()}")
        time.sleep(0.1)


def measure_latency(settings: Settings, records: list[Record], rate: float, workdir: Path,
                    timeout: float = 600.0) -> LatencyFigures:
    """The decision latency of a worker on fresh topics fed ``records`` at ``rate``/s.

    Every mismatch it writes is measured.
    """
    ls = replace(settings, topic_prefix=f"{settings.topic_prefix}lat.",
                 app_id=f"{settings.app_id}-lat", processing_guarantee="exactly_once")
    topology = Topology(ls.partitions, ls.topic_prefix, ls.topic_overrides)
    create_topics(admin(ls), topology)
    tail = Tail(ls, topology.name(TopicId.MISMATCHES), ls.partitions)
    tail.start()
    offsets = GroupOffsets(ls, topology, ls.app_id)
    began = time.monotonic()
    paced_from = wall_ms()
    try:
        port = free_port()
        with Child(["worker", "--web-port", str(port)], ls,
                   workdir / "worker-latency.log") as child:
            wait_for_assignment(ls, child)
            wait_until_ready(port, child)
            began = time.monotonic()
            paced_from = wall_ms()
            _paced(ls, records, rate)
            sent = time.monotonic() - began
            total = offsets.ends()
            while offsets.committed() < total:
                if not child.alive() or time.monotonic() - began > timeout:
                    raise CrosscheckError(f"the latency worker did not catch up:\n"
                                          f"{child.log_tail()}")
                time.sleep(0.2)
            # the last decisions come when the idle inputs let the watermark move
            time.sleep(ls.rules.idle_timeout / 1000 + 4)
    finally:
        offsets.close()
        tail.stop()
    values = tail.latencies
    steady = steady_latencies(tail.detected, values, paced_from + WARMUP_MS)
    return LatencyFigures(len(values), percentile(values, 0.5), percentile(values, 0.99),
                          float(max(values)) if values else None, len(records),
                          len(records) / max(sent, 1e-3), percentile(steady, 0.5),
                          percentile(steady, 0.99), len(steady))


def steady_latencies(detected: list[int], latencies: list[int], since: int) -> list[int]:
    """The latencies of the mismatches detected at or after ``since`` (wall ms)."""
    return [lat for at, lat in zip(detected, latencies, strict=True) if at >= since]


def _paced(settings: Settings, records: list[Record], rate: float) -> None:
    """Publish at ``rate`` events per second (in small bursts every 16 records)."""
    if rate <= 0:
        preload(settings, records)
        return
    pacer = Pacer(settings, records, rate)
    pacer.run()
    if pacer.error:
        raise CrosscheckError(pacer.error)
