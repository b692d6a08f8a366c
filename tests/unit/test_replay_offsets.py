"""Start offsets: the timestamp guess, checked and corrected by event time."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError, TopicPartition

from streams.replay.offsets import TP, start_offsets


@dataclass
class Rec:
    """One record: Kafka timestamp and the event time in its value (None: undecodable)."""

    timestamp: int
    event_time: int | None


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None,
                 eof: bool = False) -> None:
        self._where = (topic, partition, offset)
        self._value = value
        self._eof = eof

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> KafkaError | None:
        return KafkaError(KafkaError._PARTITION_EOF) if self._eof else None


class FakeConsumer:
    """Topic-partitions as lists of records; one fetch returns a few records of each."""

    def __init__(self, logs: dict[TP, list[Rec]], low: dict[TP, int] | None = None) -> None:
        self.logs = logs
        self.low = low or {}
        self.assigned: dict[TP, int] = {}
        self.rounds = 0

    def offsets_for_times(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        out = []
        for tp in tps:
            log = self.logs[(tp.topic, tp.partition)]
            start = self.low.get((tp.topic, tp.partition), 0)
            found = next((i for i in range(start, len(log)) if log[i].timestamp >= tp.offset), -1)
            out.append(TopicPartition(tp.topic, tp.partition, found))
        return out

    def assign(self, tps: list[TopicPartition]) -> None:
        self.rounds += 1
        self.assigned = {(tp.topic, tp.partition): tp.offset for tp in tps}

    def unassign(self) -> None:
        self.assigned = {}

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out = []
        for (t, p), offset in list(self.assigned.items()):
            log = self.logs[(t, p)]
            for o in range(offset, min(offset + 3, len(log))):
                r = log[o]
                value = None if r.event_time is None else str(r.event_time).encode()
                out.append(FakeMessage(t, p, o, value))
            if offset + 3 >= len(log):
                out.append(FakeMessage(t, p, len(log), None, eof=True))
            self.assigned[(t, p)] = offset + 3
        return out


def event_time(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def run(logs: dict[TP, list[Rec]], target: int, low: dict[TP, int] | None = None
        ) -> tuple[dict[TP, int], int]:
    consumer = FakeConsumer(logs, low)
    bounds = {tp: ((low or {}).get(tp, 0), len(log)) for tp, log in logs.items()}
    return start_offsets(consumer, bounds, target, event_time)  # type: ignore[arg-type]


def _log(times: list[int], stamp: str, rng: random.Random) -> list[Rec]:
    if stamp == "event":  # produced live: timestamp just after the event
        return [Rec(t + rng.randrange(0, 50), t) for t in times]
    if stamp == "later":  # a backlog published long after
        return [Rec(10**9 + i, t) for i, t in enumerate(times)]
    return [Rec(i, t) for i, t in enumerate(times)]  # "earlier": e.g. simulated future traffic


@pytest.mark.parametrize("stamp", ["event", "later", "earlier"])
@pytest.mark.parametrize("disorder", [0, 40])
def test_start_is_where_event_time_reaches_the_target(stamp: str, disorder: int) -> None:
    rng = random.Random(hash((stamp, disorder)) & 0xFFFF)
    logs: dict[TP, list[Rec]] = {}
    for p in range(3):
        times = [10_000 + 10 * i + rng.randrange(0, disorder + 1) for i in range(2_000)]
        logs[("t", p)] = _log(times, stamp, rng)
    logs[("empty", 0)] = []
    target = 20_000
    starts, rounds = run(logs, target)
    assert starts[("empty", 0)] == 0
    for p in range(3):
        log, s = logs[("t", p)], starts[("t", p)]
        assert all(r.event_time is not None and r.event_time < target + disorder
                   for r in log[:s])
        assert all(r.event_time is not None and r.event_time >= target - disorder
                   for r in log[s:])
    assert rounds <= 16


def test_a_good_timestamp_guess_costs_two_probes() -> None:
    logs = {("t", 0): [Rec(t, t) for t in range(0, 100_000, 10)]}
    starts, rounds = run(logs, 50_000)
    assert starts == {("t", 0): 5_000} and rounds == 2


def test_undecodable_records_and_the_ends() -> None:
    recs = [Rec(i, None if i % 5 == 0 else 100 * i) for i in range(500)]
    logs = {("t", 0): recs}
    starts, _ = run(logs, 100 * 250 + 1)
    assert starts[("t", 0)] == 250  # 250 is undecodable; 251 is the first new enough
    assert run(logs, 0)[0] == {("t", 0): 0}  # everything is new enough
    assert run(logs, 10**9)[0] == {("t", 0): 500}  # nothing is: start at the end
    assert run(logs, 0, low={("t", 0): 100})[0] == {("t", 0): 100}  # retention deleted some
