"""Where a replay starts reading each input topic-partition: by timestamp, checked by event time.

The start offset of a topic-partition is the first offset b such that every record before
it is older (in event time) than ``target``. Kafka's timestamp index (``offsets_for_times``)
gives a first guess, but a record's timestamp is when it was produced, not its event time:
right for a live system (services publish after the event happens), wrong for a backlog
published later or for simulated traffic. So the guess is checked by reading the records at
and just before it, and if it is wrong the start is found by bisection on event time. Both
rely on what the engine relies on: within a topic-partition, event times are out of order
by less than the allowed lateness (``target`` includes that margin).

Probes run for all topic-partitions at once: one assignment and one fetch per round, about
log2(records) rounds at worst.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.errors import CrosscheckError

TP = tuple[str, int]
#: (offset of the first decodable record at or after the probe, its event time), or None at
#: the end of the topic-partition
Probe = tuple[int, int] | None


@dataclass
class _Search:
    """Bisection state of one topic-partition: the start offset lies in [lo, hi]."""

    lo: int
    hi: int
    hints: list[int] = field(default_factory=list)
    probes: int = 0

    def next_probe(self) -> int | None:
        """The offset to probe next (hints first), or None when the start is found."""
        if self.lo >= self.hi:
            return None
        while self.hints:
            hint = self.hints.pop(0)
            if self.lo <= hint < self.hi:
                return hint
        return (self.lo + self.hi) // 2

    def update(self, probe: int, found: Probe, target: int) -> None:
        """Narrow [lo, hi] by what the probe at ``probe`` found."""
        self.probes += 1
        if found is None or found[1] >= target:
            self.hi = probe
        else:
            self.lo = found[0] + 1


_COORDINATOR_NOT_READY = frozenset({
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT,
})


def committed_partitions(consumer: Consumer, tps: list[TopicPartition],
                         attempts: int = 20) -> list[TopicPartition]:
    """A group's committed offsets (with metadata), retrying while its coordinator is not ready.

    A broker that has just started answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS
    for a while.
    """
    for attempt in range(attempts):
        try:
            return list(consumer.committed(tps, timeout=15))
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            transient = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _COORDINATOR_NOT_READY)
            if attempt == attempts - 1 or not transient:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def committed_offsets(consumer: Consumer, tps: list[TopicPartition]) -> list[int]:
    """A group's committed offsets (negative where none), as committed_partitions."""
    return [tp.offset for tp in committed_partitions(consumer, tps)]


def where(msg: Message) -> tuple[TP, int]:
    """((topic, partition), offset) of a consumed message or event."""
    return (msg.topic() or "", msg.partition() or 0), msg.offset() or 0


def start_offsets(consumer: Consumer, bounds: dict[TP, tuple[int, int]], target: int,
                  event_time: Callable[[bytes | None], int | None],
                  timeout: float = 30.0) -> tuple[dict[TP, int], int]:
    """The start offset of every topic-partition, and the number of probe rounds it took.

    ``bounds``: (low, high) offsets; ``event_time`` reads a record value's event time (None
    if it cannot).
    """
    tps = sorted(bounds)
    stamped = consumer.offsets_for_times(
        [TopicPartition(t, p, max(target, 0)) for t, p in tps], timeout=timeout)
    searches: dict[TP, _Search] = {}
    for stamp in stamped:
        key = (stamp.topic, stamp.partition)
        low, high = bounds[key]
        guess = stamp.offset if stamp.offset >= 0 else high
        searches[key] = _Search(low, high, [guess, guess - 1])
    rounds = 0
    while True:
        wanted = {tp: o for tp, s in searches.items() if (o := s.next_probe()) is not None}
        if not wanted:
            break
        rounds += 1
        found = _probe(consumer, wanted, bounds, event_time, timeout)
        for tp, offset in wanted.items():
            searches[tp].update(offset, found[tp], target)
    return {tp: s.lo for tp, s in searches.items()}, rounds


def _probe(consumer: Consumer, wanted: dict[TP, int], bounds: dict[TP, tuple[int, int]],
           event_time: Callable[[bytes | None], int | None], timeout: float) -> dict[TP, Probe]:
    """The first decodable record at or after each wanted offset."""
    result: dict[TP, Probe] = {}
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in wanted.items()])
    deadline = time.monotonic() + timeout
    try:
        while len(result) < len(wanted):
            if time.monotonic() > deadline:
                missing = ", ".join(f"{t}[{p}]" for t, p in sorted(set(wanted) - set(result)))
                raise CrosscheckError(f"no answer within {timeout:.0f}s while looking for "
                                      f"start offsets of {missing}")
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                key, offset = where(msg)
                if key not in wanted or key in result or offset < wanted[key]:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        result[key] = None
                    continue
                t = event_time(msg.value())
                if t is not None:
                    result[key] = (offset, t)
                elif offset + 1 >= bounds[key][1]:
                    result[key] = None
    finally:
        consumer.unassign()
    return result
