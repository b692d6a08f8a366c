"""The chaos run's publisher: the paced input, with one input held back in each source outage."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streams.bench.data import Pacer, Record
from streams.config import Settings
from streams.produce import EventPublisher, ParsedLine
from topology.topics import TopicId


class Producer(Protocol):
    """What the publisher needs of `streams.produce.EventPublisher`."""

    errors: list[str]

    def publish(self, line: ParsedLine) -> None:
        """Send one record (asynchronously)."""
        ...

    def flush(self, timeout: float) -> Any:
        """Wait until everything sent is acknowledged."""
        ...


@dataclass
class Outage:
    """One source outage: from record ``start`` on, ``topic``'s records are held back for
    ``length`` seconds of publishing (time parked for a broker restart does not count) while
    the other inputs go on at the paced rate; then the backlog is sent at once, in order."""

    topic: TopicId
    start: int
    length: float
    #: clock when the hold began and when the backlog was sent and acknowledged
    began: float | None = None
    released: float | None = None
    #: seconds parked within it, seconds of publishing it lasted, records held back
    parked_s: float = 0.0
    held_s: float = 0.0
    held: int = 0
    #: the other inputs ran out before it ended (the plan places outages so they do not)
    ran_out: bool = False

    @property
    def done(self) -> bool:
        """It happened: held for at least ``length`` and the backlog sent."""
        return self.released is not None and self.held_s >= self.length

    def lasted(self, now: float) -> float:
        """Seconds of publishing it has lasted at ``now``."""
        return 0.0 if self.began is None else now - self.began - self.parked_s

    def describe(self) -> str:
        """What happened, for the timeline."""
        if self.began is None:
            return f"{self.topic} not held back: the input ended before record {self.start:,}"
        if self.released is None:
            return f"{self.topic} held back, but its backlog of {self.held:,} records not sent"
        return (f"{self.topic} held back {self.held_s:.1f}s from record {self.start:,}; "
                f"its backlog of {self.held:,} records sent at once"
                + ("; the other inputs ended first" if self.ran_out else ""))


class Holdback:
    """Which records wait: during an outage, its topic's records go to the backlog.

    Outages run one at a time in the order of their ``start``; one whose start comes while
    another holds begins when that one ends. ``clock`` is the publisher's.
    """

    def __init__(self, outages: list[Outage], clock: Callable[[], float]) -> None:
        self.pending = sorted(outages, key=lambda o: o.start)
        self.clock = clock
        self.active: Outage | None = None
        self.backlog: list[Record] = []

    def take(self, index: int, record: Record) -> bool:
        """Whether record ``index`` is held back (it joins the backlog); the next outage
        begins at its ``start`` record."""
        if self.active is None and self.pending and index >= self.pending[0].start:
            self.active = self.pending.pop(0)
            self.active.began = self.clock()
        if self.active is None or record[0] != self.active.topic:
            return False
        self.backlog.append(record)
        self.active.held += 1
        return True

    def parked(self, seconds: float) -> None:
        """The publisher was parked this long: the outage lasts that much longer."""
        if self.active is not None:
            self.active.parked_s += seconds

    def remaining(self) -> float:
        """Seconds of publishing left of the active outage (0 when none holds)."""
        if self.active is None:
            return 0.0
        return max(self.active.length - self.active.lasted(self.clock()), 0.0)

    def due(self) -> tuple[Outage, list[Record]] | None:
        """The active outage and its backlog once it has lasted its length (it ends)."""
        outage = self.active
        if outage is None:
            return None
        lasted = outage.lasted(self.clock())
        if lasted < outage.length:
            return None
        outage.held_s = round(lasted, 3)
        backlog, self.backlog, self.active = self.backlog, [], None
        return outage, backlog


class ChaosPacer(Pacer):
    """`streams.bench.data.Pacer` with source outages: ``sent`` counts held records as
    published (the faults are placed on it); ``note`` is told when an outage begins and ends.
    ``producer``, ``clock`` and ``sleep`` are for the tests."""

    def __init__(self, settings: Settings, records: list[Record], rate: float,
                 outages: list[Outage], note: Callable[[str], None] = lambda _: None,
                 producer: Callable[[Settings], Producer] = EventPublisher,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings, records, rate)
        self.outages = outages
        self.note, self.producer, self.clock, self.sleep = note, producer, clock, sleep

    def run(self) -> None:
        """Publish every record, sleeping to keep the rate, holding back outages' inputs."""
        publisher = self.producer(self.settings)
        hold = Holdback(self.outages, self.clock)
        began = self.clock()
        for i, record in enumerate(self.records):
            if i % 16 == 0:
                parked = self._park_if_asked(publisher)
                began += parked
                hold.parked(parked)
                delay = began + i / self.rate - self.clock()
                if delay > 0.01:
                    self.sleep(delay)
                self._release(publisher, hold)
                self.sent = i
            was = hold.active
            held = hold.take(i, record)
            if hold.active is not was and hold.active is not None:
                self.note(f"{hold.active.topic} held back from record {i:,} for "
                          f"{hold.active.length:g}s of publishing")
            if held:
                continue
            topic, value = record
            publisher.publish(ParsedLine(topic, value["order_id"], value))
        while hold.active is not None:  # the input ended during an outage
            hold.active.ran_out = True
            hold.parked(self._park_if_asked(publisher))
            self.sleep(min(hold.remaining(), 0.5))
            self._release(publisher, hold)
        publisher.flush(120)
        self.sent = len(self.records)
        if publisher.errors:
            self.error = f"publishing failed: {publisher.errors[:3]}"

    def _park_if_asked(self, publisher: Producer) -> float:
        """Park while paused (everything sent acknowledged); the seconds parked."""
        if self._go.is_set():
            return 0.0
        parked = self.clock()
        publisher.flush(120)
        self._parked.set()
        self._go.wait()
        self._parked.clear()
        return self.clock() - parked

    def _release(self, publisher: Producer, hold: Holdback) -> None:
        """Send an ended outage's backlog at once, in order, and wait for the acks."""
        ended = hold.due()
        if ended is None:
            return
        outage, backlog = ended
        for topic, value in backlog:
            publisher.publish(ParsedLine(topic, value["order_id"], value))
        publisher.flush(120)
        outage.released = self.clock()
        self.note(outage.describe())
