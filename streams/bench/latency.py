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
from streams.clients import admin, confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.worker.runtime import wall_ms
from topology.admin import create_topics
from topology.topics import TopicId, Topology


class Tail(threading.Thread):
    """Reads a topic from the start (read_committed); notes receive time - detected_at."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        super().__init__(daemon=True, name="bench-tail")
        self.latencies: list[int] = []
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
    try:
        with Child(["worker", "--web-port", str(free_port())], ls,
                   workdir / "worker-latency.log") as child:
            wait_for_assignment(ls, child)
            began = time.monotonic()
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
    return LatencyFigures(len(values), percentile(values, 0.5), percentile(values, 0.99),
                          float(max(values)) if values else None, len(records),
                          len(records) / max(sent, 1e-3))


def _paced(settings: Settings, records: list[Record], rate: float) -> None:
    """Publish at ``rate`` events per second (in small bursts every 16 records)."""
    if rate <= 0:
        preload(settings, records)
        return
    pacer = Pacer(settings, records, rate)
    pacer.run()
    if pacer.error:
        raise CrosscheckError(pacer.error)
