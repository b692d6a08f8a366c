"""What `crosscheck chaos` is asked to do, and its fault schedule drawn from the seed.

Faults are placed on the publishing progress, not on the wall clock: fault i fires once
``at`` (a fraction) of the input has been handed to the producer, so the same seed hits the
same place in the stream however fast the machine is. The span between 4 % and 94 % of the
input is cut into one slot per fault; the kinds are shuffled over the slots and each fault
lands at a random point of its slot. Rebalances come in pairs: the second worker joins at
one slot and leaves at a later one. Source outages are placed apart from the slots (and
drawn after them, so they leave the other faults where they were): each spans the share of
the input published during ``outage_length``, they do not overlap, and the last ends by 94 %,
so the other inputs still flow when a backlog arrives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from streams.config import RuleConfig
from streams.errors import ConfigError
from topology.topics import TopicId

KILL, JOIN, LEAVE, BROKER, BAD = "kill", "join", "leave", "broker_restart", "bad_burst"
OUTAGE = "source_outage"
#: the fault kinds in the order of the table
KINDS = (KILL, JOIN, LEAVE, BROKER, BAD, OUTAGE)
#: the table's row names of the fault kinds
FAULT_NAMES = {KILL: "SIGKILL of a worker", JOIN: "second worker joins (rebalance)",
               LEAVE: "second worker leaves (rebalance)", BROKER: "broker stop + restart",
               BAD: "bad-record burst", OUTAGE: "source outage"}
#: how often each input is the one an outage holds back: the inputs whose lateness would
#: cause false compensating commands (release, refund, hold) three times as often as orders
OUTAGE_WEIGHTS = {TopicId.INVENTORY: 3, TopicId.PAYMENTS: 3, TopicId.SHIPPING: 3,
                  TopicId.ORDERS: 1}
#: the share of the input over which faults are placed
LOW, HIGH = 0.04, 0.94
#: events per order, about, when the schedule is not told the input's size
EVENTS_PER_ORDER = 10


@dataclass(frozen=True)
class ChaosConfig:
    """A chaos run: the scenario, the faults, and how stuck and done are told."""

    orders: int = 20_000
    seed: int = 1
    #: events published per second (the input is paced over the run)
    rate: float = 500.0
    #: simulator faults per order, each (see streams.simulate.faults)
    fault_rate: float = 0.005
    kills: int = 10
    #: rebalances: a join and a leave count one each (rounded up to pairs)
    rebalances: int = 4
    broker_restarts: int = 2
    bad_bursts: int = 4
    burst_size: int = 40
    #: seconds the broker stays down in a restart
    broker_down: float = 3.0
    #: source outages: one input held back while the others flow, then its backlog at once
    source_outages: int = 1
    #: seconds of publishing an outage lasts (longer than the worker's idle timeout)
    outage_length: float = 20.0
    #: no committed progress for this long while input waits and every worker says it is
    #: ready (not starting, rebalancing or recovering): stuck
    stuck_after: float = 30.0
    #: the worker's --batch-size
    batch_size: int = 2000
    #: give up waiting for the workers to finish after this long past the last publish
    finish_timeout: float = 1800.0
    keep: bool = False
    workdir: Path | None = None


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: its kind, when (fraction of the input published), and a choice
    drawn from the seed (which worker a SIGKILL hits, when two run; which input an outage
    holds back, see ``outage_topic``)."""

    at: float
    kind: str
    pick: float


def outage_topic(pick: float) -> TopicId:
    """The input a source outage holds back, for its ``pick`` (by ``OUTAGE_WEIGHTS``)."""
    point = pick * sum(OUTAGE_WEIGHTS.values())
    for topic, weight in OUTAGE_WEIGHTS.items():
        if point < weight:
            return topic
        point -= weight
    return TopicId.ORDERS


def check_outages(config: ChaosConfig, rules: RuleConfig) -> None:
    """ConfigError unless an outage outlasts the worker's idle timeout (a shorter one never
    leaves the input quiet) and, where the worker has one, stays within its source hold."""
    if not config.source_outages:
        return
    length_ms = config.outage_length * 1000
    if length_ms <= rules.idle_timeout:
        raise ConfigError(f"--outage-length {config.outage_length:g}s must exceed the "
                          f"workers' idle timeout ({rules.idle_timeout / 1000:g}s)")
    hold = getattr(rules, "source_hold", None)
    if isinstance(hold, int) and length_ms >= hold:
        raise ConfigError(f"--outage-length {config.outage_length:g}s must be shorter than "
                          f"the workers' source hold ({hold / 1000:g}s)")


def schedule(config: ChaosConfig, broker_faults: bool = True,
             events: int | None = None) -> list[Fault]:
    """The faults of the run in firing order (broker restarts left out unless allowed);
    ``events``, the input's size, places the outages (default: estimated from the orders)."""
    rng = random.Random(f"crosscheck-chaos:{config.seed}")
    pairs = (config.rebalances + 1) // 2
    kinds = ([KILL] * config.kills + [JOIN] * pairs + [LEAVE] * pairs
             + [BROKER] * (config.broker_restarts if broker_faults else 0)
             + [BAD] * config.bad_bursts)
    rng.shuffle(kinds)
    # joins and leaves alternate in slot order: relabel the rebalance slots
    rebalance = [i for i, k in enumerate(kinds) if k in (JOIN, LEAVE)]
    for n, i in enumerate(rebalance):
        kinds[i] = JOIN if n % 2 == 0 else LEAVE
    width = (HIGH - LOW) / max(len(kinds), 1)
    faults = [Fault(round(LOW + (i + 0.15 + 0.7 * rng.random()) * width, 4), kind, rng.random())
              for i, kind in enumerate(kinds)]
    outages = _outages(config, rng, events or config.orders * EVENTS_PER_ORDER)
    return sorted(faults + outages, key=lambda f: f.at)


def _outages(config: ChaosConfig, rng: random.Random, events: int) -> list[Fault]:
    """The source outages: non-overlapping spans at random places, all within the input."""
    n = config.source_outages
    if not n:
        return []
    span = config.outage_length * config.rate / events
    free = HIGH - LOW - n * span
    if free < 0:
        raise ConfigError(
            f"{n} source outage(s) of {config.outage_length:g}s do not fit in the input: its "
            f"{events:,} events take {events / config.rate:.0f}s at {config.rate:g}/s, and "
            f"the outages must end by {HIGH:.0%} of it (more --orders, or a shorter "
            "--outage-length)")
    starts = sorted(rng.random() * free for _ in range(n))
    return [Fault(round(LOW + start + j * span, 4), OUTAGE, rng.random())
            for j, start in enumerate(starts)]
