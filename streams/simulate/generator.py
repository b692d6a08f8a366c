"""Deterministic traffic: arrivals, one flow per order, publish order, and its expected output.

``simulate(config)`` is a pure function of its config (no wall clock, no I/O): the same seed
and options give the same events in the same order, byte for byte once written.

Time model
    Each order arrives at a time in ``[start, start + span)`` (denser in the afternoon, UTC).
    Its flow (``flows.healthy`` or a fault of ``faults.FAULTS``) produces events at true
    times; each service stamps event_time with its own clock, which has a small fixed skew.
    An event is published at its true time plus its topic's lag plus a per-event jitter, so
    topics interleave; one topic's events of one order keep their event-time order, and a
    redelivery (the same event_id again) follows its original within a few seconds. The
    disorder of a topic stays well below allowed_lateness, so no event is late.

When decisions come due
    A worker decides everything whose decision time D is at most the watermark, and once
    its inputs go idle the watermark of a partition is (max event time of that partition
    - allowed_lateness). ``expected_outputs`` uses exactly that (``streams.batch.evaluate``
    with ``until=None`` does it per partition), so it matches a worker run over the same
    events with the same thresholds and partition count. Flows run for days of event time
    after their order arrives (deliveries, returns), and every fault flow continues past its
    own decision time plus allowed_lateness, so every injected fault is decided.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.validation import parse_event_time
from streams.batch import evaluate
from streams.config import RuleConfig
from streams.model import Command, Mismatch
from streams.records import event_from_record, source_of
from streams.simulate.faults import FAULTS, check_rates, pick_fault
from streams.simulate.flows import healthy
from streams.simulate.scenario import DAY, HOUR, OrderBuilder, Pending, Timing, World
from topology.topics import TopicId

DEFAULT_START_TEXT = "2026-11-21T00:00:00.000Z"
DEFAULT_START = parse_event_time(DEFAULT_START_TEXT)

Output = Mismatch | Command
Record = tuple[TopicId, dict[str, Any]]


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Times and durations are epoch milliseconds."""

    orders: int = 1000
    seed: int = 1
    start: int = DEFAULT_START
    #: orders arrive over this much event time; their flows go on for days after
    span: int = 36 * HOUR
    #: fault name -> probability per order (see faults.FAULTS); at most one per order
    faults: Mapping[str, float] = field(default_factory=dict)
    #: share of the events that are delivered twice (same event_id)
    redelivery_rate: float = 0.01
    #: largest clock skew of a service, either sign (smaller with small thresholds)
    max_skew: int = 1_500
    #: the thresholds healthy traffic must stay inside
    rules: RuleConfig = field(default_factory=RuleConfig)


@dataclass(frozen=True)
class Traffic:
    """The generated events in publish order, and what was injected where."""

    config: SimConfig
    events: list[Record]
    #: order_id -> fault name, for the orders that got one
    faults: dict[str, str]
    redeliveries: int

    @property
    def order_ids(self) -> list[str]:
        """Every order_id of the traffic, sorted."""
        return sorted({r["order_id"] for _, r in self.events})


def _arrivals(rng: random.Random, config: SimConfig) -> list[int]:
    """Arrival times of the orders: a daily cycle (peak mid-afternoon UTC), sorted."""
    times: list[int] = []
    while len(times) < config.orders:
        t = config.start + int(rng.random() * config.span)
        hour = (t % DAY) / DAY
        if rng.random() < 0.55 + 0.45 * math.sin(2 * math.pi * (hour - 0.375)):
            times.append(t)
    times.sort()
    return times


def _publish_keys(b: OrderBuilder, config: SimConfig,
                  timing: Timing) -> list[tuple[int, int, int, int, bool, Pending]]:
    """(publish time, event_time, order number, seq, redelivered, event) of one order."""
    world, rng = b.world, b.rng
    keyed: list[tuple[int, int, int, int, bool, Pending]] = []
    by_topic: dict[TopicId, list[Pending]] = {}
    for p in b.events:
        by_topic.setdefault(p.topic, []).append(p)
    seq = 0
    for topic in sorted(by_topic):
        ordered = sorted(by_topic[topic], key=lambda p: p.record["event_time"])
        published = 0
        for p in ordered:
            draw = b.callbacks if p.callback else rng
            at = p.true_time + world.lag[topic] + int(draw.random() * (timing.jitter + 1))
            published = max(published, at)  # one order's events of a topic keep their order
            keyed.append((published, p.record["event_time"], b.number, seq, False, p))
            seq += 1
            if config.redelivery_rate and draw.random() < config.redelivery_rate:
                again = published + 200 + int(draw.random() * max(0, timing.redelivery - 200))
                keyed.append((again, p.record["event_time"], b.number, seq, True, p))
                seq += 1
    return keyed


def simulate(config: SimConfig) -> Traffic:
    """Generate the traffic of ``config`` (deterministic per seed and options)."""
    if config.orders < 0 or config.span < 1:
        raise ValueError("orders must be >= 0 and span >= 1 ms")
    check_rates(config.faults)
    timing = Timing.of(config.rules, config.max_skew)
    world = World.create(config.seed, timing, config.orders)
    arrivals = _arrivals(random.Random(f"crosscheck-simulate-arrivals:{config.seed}"), config)
    keyed: list[tuple[int, int, int, int, bool, Pending]] = []
    faults: dict[str, str] = {}
    for number, t0 in enumerate(arrivals, start=1):
        rng = random.Random(f"crosscheck-simulate-order:{config.seed}:{number}")
        fault = pick_fault(rng.random(), config.faults)
        b = OrderBuilder(world, number, t0, rng)
        if fault is None:
            healthy(b)
        else:
            fault.flow(b)
            faults[b.order_id] = fault.name
        b.finish()
        keyed.extend(_publish_keys(b, config, timing))
    keyed.sort(key=lambda k: k[:4])
    events: list[Record] = [(k[5].topic, dict(k[5].record) if k[4] else k[5].record)
                            for k in keyed]
    return Traffic(config, events, faults, sum(1 for k in keyed if k[4]))


def generate(config: SimConfig) -> list[Record]:
    """The events of ``simulate(config)``: (input topic id, Avro record) in publish order."""
    return simulate(config).events


def expected_outputs(events: Iterable[Record], rules: RuleConfig, partitions: int,
                     clock: Callable[[], int] = lambda: 0) -> list[Output]:
    """What a worker with these thresholds and partitions emits for the events once its
    inputs go idle (``streams.batch.evaluate`` with until=None; wall clock = ``clock``)."""
    evs = [event_from_record(source_of(topic), record) for topic, record in events]
    return evaluate(evs, rules, partitions=partitions, until=None, clock=clock)


def fault_orders(traffic: Traffic) -> dict[str, list[str]]:
    """Fault name -> the order_ids it was injected into (faults in catalog order)."""
    result: dict[str, list[str]] = {name: [] for name in FAULTS}
    for order_id, name in sorted(traffic.faults.items()):
        result[name].append(order_id)
    return {name: ids for name, ids in result.items() if ids}


def topic_counts(events: Sequence[Record]) -> dict[str, int]:
    """Input topic id -> number of events (redeliveries included)."""
    counts: dict[str, int] = {}
    for topic, _ in events:
        counts[topic.value] = counts.get(topic.value, 0) + 1
    return counts
