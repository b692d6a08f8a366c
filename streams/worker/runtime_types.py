"""The types of the worker's runtime: consumed record, Emit, partition context, counters.

Shared by ``streams.worker.runtime`` and ``streams.worker.arrival``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from streams.engine.confirming import Confirming
from streams.engine.core import RecordEngine
from streams.engine.partition import Engine
from streams.metrics.windows import Partial, PartitionWindows
from streams.model import Command, DeadLetter, Mismatch
from streams.worker.windows_store import PartitionStore
from topology.topics import TopicId


@dataclass
class PartitionCtx:
    """What the runtime holds for one partition number."""

    engine: Engine
    store: PartitionStore
    windows: PartitionWindows
    #: the engine's one-call path (the native engine), else None
    fast: RecordEngine | None
    #: the windows' closed_until as stored (what persist compares with)
    stored_closed_until: int | None = None
    #: the store still holds state format 1 (one value of every window): replace it
    upgrade: bool = False
    all_idle: bool = False
    #: the engine and its held commands
    confirm: Confirming | None = None
    #: the sources released (stalled past source_hold) as last reported in a Partial
    released: tuple[str, ...] = ()
    #: source -> wall clock when it became stalled (for the alerts)
    stalled_since: dict[str, int] = field(default_factory=dict)

    def holds(self) -> bool:
        """Whether some command of the partition is held."""
        return self.confirm is not None and bool(self.confirm.held.held)


class RecordLike(Protocol):
    """What the runtime reads of a consumed record: a ``Record``, or a Faust message as it
    is (the worker hands its batch's messages over without a copy)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Record:
    """A consumed Kafka record, as the runtime sees it (tests, tools)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Emit:
    """An encoded output record and where it goes."""

    topic: TopicId
    name: str
    partition: int
    key: bytes | None
    value: bytes
    output: Mismatch | Command | DeadLetter | Partial


#: The stages a batch's time is counted in: decoding and validating input records; the
#: engine (state read included); writing the touched state to RocksDB (one WriteBatch per
#: store); producing outputs and changelog records; and the whole of ``Worker.process``
#: (the four, plus glue). ``commit``, outside ``batch``: Faust's offset commits (under
#: exactly-once its transaction commits, timed in ``faust_patch``). The rest of the time
#: outside ``batch`` is Faust's consume path and waiting for input.
STAGES = ("decode", "engine", "state_write", "produce", "batch", "commit")


@dataclass
class Counters:
    """Running totals for status, logs and /metrics."""

    events: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    duplicates_ignored: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    #: commands decided in shadow mode (to the shadow topic), by type
    shadow_commands: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    #: mismatches opened while an input their rule reads was excused (quiet at the end of
    #: the traffic, or released): Kafka Streams' enforced-processing, per rule type
    excused: Counter[str] = field(default_factory=Counter)
    #: held commands issued once confirmed, and dropped (the decision no longer fired)
    held_issued: int = 0
    held_dropped: int = 0
    #: inputs made active again because records were waiting on the broker
    reactivated: int = 0
    #: wall seconds spent per stage of the worker (see STAGES): the bench's breakdown
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
