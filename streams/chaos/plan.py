"""What `crosscheck chaos` is asked to do, and its fault schedule drawn from the seed.

Faults are placed on the publishing progress, not on the wall clock: fault i fires once
``at`` (a fraction) of the input has been handed to the producer, so the same seed hits the
same place in the stream however fast the machine is. The span between 4 % and 94 % of the
input is cut into one slot per fault; the kinds are shuffled over the slots and each fault
lands at a random point of its slot. Rebalances come in pairs: the second worker joins at
one slot and leaves at a later one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

KILL, JOIN, LEAVE, BROKER, BAD = "kill", "join", "leave", "broker_restart", "bad_burst"
#: the table's row names of the fault kinds
FAULT_NAMES = {KILL: "SIGKILL of a worker", JOIN: "second worker joins (rebalance)",
               LEAVE: "second worker leaves (rebalance)", BROKER: "broker stop + restart",
               BAD: "bad-record burst"}


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
    drawn from the seed (which worker a SIGKILL hits, when two run)."""

    at: float
    kind: str
    pick: float


def schedule(config: ChaosConfig, broker_faults: bool = True) -> list[Fault]:
    """The faults of the run in firing order (broker restarts left out unless allowed)."""
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
    low, high = 0.04, 0.94
    width = (high - low) / max(len(kinds), 1)
    return [Fault(round(low + (i + 0.15 + 0.7 * rng.random()) * width, 4), kind, rng.random())
            for i, kind in enumerate(kinds)]
