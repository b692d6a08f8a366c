"""Bulk restore of table partitions from their changelogs, before Faust's own recovery reads them.

Faust's recovery hands every changelog record to the table one at a time through an asyncio
queue: about 6,500 records/s here, so a worker whose local state was lost (a new machine, a
deleted disk, a partition it never held) needed minutes per million orders before it
decided anything. When a worker is assigned a table partition, ``catch_up`` first reads the
partition's changelog from the store's applied offset (``local_state.OFFSET_KEY``) to its
last stable offset with a librdkafka consumer (read_committed, large fetches, no group) and
writes it in WriteBatches of ``CHUNK`` records, each with its due index entries and the
offset it reached (``local_state.apply_changelog``). Faust's recovery then starts from that
offset and reads only what was written since, usually nothing.

A partition within ``SMALL_GAP`` records of its changelog's end is left to Faust's recovery
(the usual restart after a clean stop or a crash with the local state kept).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from streams.worker import local_state

log = logging.getLogger("crosscheck.worker")

#: records per WriteBatch
CHUNK = 20_000
#: a gap this small is left to Faust's recovery (0: any gap is read here, which also sets
#: the applied offset past the transaction markers at the end, so that Faust's recovery,
#: which never receives a marker, does not wait for one)
SMALL_GAP = 0
#: seconds without a record before the read gives up on reaching the end (it says so)
IDLE_TIMEOUT = 30.0


@dataclass
class Restored:
    """What one catch-up read and wrote."""

    partitions: int = 0
    records: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Changelog records per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


#: one partition to catch up: (changelog topic, partition, its database, indexed)
Target = tuple[str, int, Any, bool]


def catch_up(config: dict[str, Any], targets: list[Target],
             small_gap: int = SMALL_GAP) -> Restored:
    """Read each target's changelog after its applied offset up to the last stable offset
    and apply it in chunks (see the module docstring)."""
    began = perf_counter()
    done = Restored()
    if not targets:
        return done
    with _lock:
        consumer = _consumer(config)
        try:
            _catch_up(consumer, targets, small_gap, done)
        finally:
            consumer.unassign()
    done.seconds = perf_counter() - began
    return done


#: one librdkafka consumer per process, made at the first catch-up and kept (its start-up,
#: about half a second, would otherwise be paid by each table at each assignment)
_consumers: dict[tuple[tuple[str, str], ...], Any] = {}
_lock = threading.Lock()


def _consumer(config: dict[str, Any]) -> Any:
    key = tuple(sorted((k, str(v)) for k, v in config.items()))
    consumer = _consumers.get(key)
    if consumer is None:
        consumer = _consumers[key] = Consumer({
            **config, "group.id": "crosscheck-restore", "enable.auto.commit": False,
            "isolation.level": "read_committed", "enable.partition.eof": True,
            "fetch.max.bytes": 64 * 2**20, "max.partition.fetch.bytes": 8 * 2**20,
            "queued.max.messages.kbytes": 256 * 1024, "fetch.wait.max.ms": 10})
        atexit.register(consumer.close)
    return consumer


def _catch_up(consumer: Any, targets: list[Target], small_gap: int, done: Restored) -> None:
    """``catch_up`` with the process's consumer."""
    plans: dict[tuple[str, int], tuple[Any, bool, int]] = {}
    assignment: list[TopicPartition] = []
    for topic, partition, db, indexed in targets:
        applied = db.get(local_state.OFFSET_KEY)
        start = int(applied) + 1 if applied is not None else OFFSET_BEGINNING
        low, end = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                  timeout=10.0, cached=False)
        first = low if start == OFFSET_BEGINNING else max(start, low)
        if end - first <= small_gap:
            continue
        plans[(topic, partition)] = (db, indexed, end)
        assignment.append(TopicPartition(topic, partition, first))
    if not assignment:
        return
    consumer.assign(assignment)
    done.partitions = len(assignment)
    done.records = _read(consumer, plans)


def _read(consumer: Any, plans: dict[tuple[str, int], tuple[Any, bool, int]]) -> int:
    """Consume the assigned partitions until each reached its end; records applied."""
    chunks: dict[tuple[str, int], list[local_state.Change]] = {tp: [] for tp in plans}
    last: dict[tuple[str, int], int] = {}
    #: the offset each partition was read up to, exclusive (its end, or where EOF was seen)
    reached: dict[tuple[str, int], int] = {}
    left = {tp for tp, (_db, _ix, end) in plans.items()}
    count = 0
    idle_since = perf_counter()

    def flush(tp: tuple[str, int]) -> None:
        db, indexed, _end = plans[tp]
        if chunks[tp]:
            local_state.apply_changelog(db, chunks[tp], last[tp], indexed)
            chunks[tp] = []

    while left:
        messages = consumer.consume(num_messages=10_000, timeout=0.5)
        if not messages:
            if perf_counter() - idle_since > IDLE_TIMEOUT:
                log.warning("bulk restore: no record for %.0f s before the end of %s; "
                            "Faust's recovery reads the rest", IDLE_TIMEOUT, sorted(left))
                break
            continue
        idle_since = perf_counter()
        for m in messages:
            error = m.error()
            tp = (m.topic(), m.partition())
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if tp in left:
                        reached[tp] = m.offset()
                    left.discard(tp)
                    continue
                raise RuntimeError(f"bulk restore of {tp[0]}[{tp[1]}]: {error}")
            chunk = chunks[tp]
            chunk.append((m.key(), m.value()))
            last[tp] = m.offset()
            count += 1
            if len(chunk) >= CHUNK:
                flush(tp)
            if m.offset() + 1 >= plans[tp][2]:
                reached[tp] = m.offset() + 1
                left.discard(tp)
    for tp in plans:
        flush(tp)
    for tp, end in reached.items():
        # every offset below ``end`` was read: records, aborted records, markers
        if end > 0 and end - 1 > last.get(tp, -1):
            local_state.confirm(plans[tp][0], (), end - 1)
    return count


def describe(restored: Restored, say: Callable[[str], None]) -> None:
    """Report a catch-up that read something."""
    if restored.records:
        say(f"bulk restore: {restored.records:,} changelog records of {restored.partitions} "
            f"partition(s) in {restored.seconds:.1f} s ({restored.rate:,.0f}/s)")
