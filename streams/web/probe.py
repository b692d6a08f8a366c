"""What the web endpoints read from a running worker, in one place, cheaply and without I/O.

``Probe`` wraps the Worker (Faust app, Runtime, IdleTracker); everything it returns is
computed from in-memory state: counters, watermarks, the consumer's cached high-water marks
and the positions the worker has processed. ``instrument`` hooks the worker's batch
processing (timing) and the runtime's outputs (recent mismatches) without changing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust

from streams.clock import wall_ms
from streams.model import Command, Mismatch
from streams.web.inputs import InputRow, input_rows
from streams.web.recent import RecentMismatches
from streams.worker.runtime_types import Counters
from topology.topics import INPUTS

if TYPE_CHECKING:
    from streams.worker.app import Worker


@dataclass(frozen=True)
class PartitionLag:
    """Input lag of one assigned input topic-partition (None where not known yet)."""

    topic: str
    partition: int
    end: int | None
    position: int | None

    @property
    def lag(self) -> int | None:
        """Records after the last one processed (None until both ends are known)."""
        if self.end is None or self.position is None:
            return None
        return max(0, self.end - self.position)


@dataclass
class BatchStats:
    """Batch timings seen by ``instrument`` (the histogram itself lives in the registry)."""

    observers: list[Callable[[float, int], None]] = field(default_factory=list)
    last_seconds: float | None = None
    last_records: int = 0

    def observe(self, seconds: float, records: int) -> None:
        self.last_seconds, self.last_records = seconds, records
        for observer in self.observers:
            observer(seconds, records)


class Probe:
    """Read-only view of one worker for /health, /metrics and the dashboard."""

    def __init__(self, worker: Worker, recent: RecentMismatches | None = None,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.worker = worker
        self.recent = recent if recent is not None else RecentMismatches()
        self.batches = BatchStats()
        self.clock = clock
        self.started_at = clock()

    # -- identity ------------------------------------------------------------------------

    @property
    def worker_id(self) -> str:
        return self.worker.runtime.worker_id

    @property
    def url(self) -> str:
        return str(self.worker.app.conf.canonical_url)

    @property
    def app_id(self) -> str:
        return str(self.worker.app.conf.id)

    # -- counters ------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        return self.worker.runtime.counters

    @property
    def records(self) -> int:
        return self.worker.records

    @property
    def batch_count(self) -> int:
        return self.worker.batches

    def watermarks(self) -> dict[int, int | None]:
        """Watermark (event-time ms) of each partition this worker has an engine for."""
        return self.worker.runtime.watermarks()

    def inputs(self) -> list[InputRow]:
        """Each input topic-partition of this worker's partitions: progress, lag, state."""
        return input_rows(self.worker.runtime.input_states(),
                          self.worker.tracker.stall_states(self.clock()))

    def rule_watermarks(self) -> dict[int, list[dict[str, Any]]]:
        """Each partition's rule groups and their own watermarks (event-time ms)."""
        return self.worker.runtime.rule_watermarks()

    def held_commands(self) -> dict[int, list[dict[str, Any]]]:
        """The commands held on this worker's partitions, per partition."""
        return self.worker.runtime.held_commands()

    def held_count(self) -> int:
        """How many commands are held on this worker's partitions."""
        return self.worker.runtime.held_count()

    # -- Faust state ---------------------------------------------------------------------

    def assigned_inputs(self) -> list[tuple[str, int]]:
        """Input topic-partitions actively assigned to this worker."""
        topology = self.worker.topology
        inputs = {topology.name(t) for t in INPUTS}
        try:
            actives = self.worker.app.assignor.assigned_actives()
        except Exception:  # not started yet
            return []
        return sorted((tp.topic, tp.partition) for tp in actives if tp.topic in inputs)

    def standbys(self) -> list[dict[str, Any]]:
        """The table partitions this worker keeps as warm standbys, each with the changelog
        offset its local copy has applied."""
        app: Any = self.worker.app
        try:
            assigned = app.assignor.assigned_standbys()
            tables = {t.changelog_topic.get_topic_name(): t for t in app.tables.values()}
        except Exception:  # not started yet
            return []
        rows = []
        for tp in sorted(assigned):
            table = tables.get(tp.topic)
            if table is None:
                continue
            try:
                applied = table.data.persisted_offset(tp)
            except Exception:  # not opened yet
                applied = None
            rows.append({"table": table.name, "partition": tp.partition,
                         "applied_offset": applied})
        return rows

    def partitions(self) -> list[int]:
        """Partition numbers this worker owns (of the input topics)."""
        return sorted({p for _t, p in self.assigned_inputs()})

    def owns(self, partition: int) -> bool:
        return partition in self.partitions()

    def lag(self) -> list[PartitionLag]:
        """Input lag per assigned topic-partition: cached high water minus processed position."""
        consumer: Any = self.worker.app.consumer
        result: list[PartitionLag] = []
        for topic, partition in self.assigned_inputs():
            try:
                end = consumer.highwater(faust.types.TP(topic, partition))
            except Exception:  # not fetched yet
                end = None
            position = self.worker.tracker.next_offset.get((topic, partition))
            result.append(PartitionLag(topic, partition, end, position))
        return result

    def ready(self) -> tuple[bool, str]:
        """Whether the worker serves its partitions now, and a word on why not."""
        app: Any = self.worker.app
        try:
            if not app.started or app.should_stop:
                return False, "starting" if not app.started else "stopping"
            if app.rebalancing:
                return False, "rebalancing"
            recovery = app.tables.recovery
            if recovery.in_recovery or not recovery.completed.is_set():
                return False, "recovering"
        except Exception:  # not fully built yet
            return False, "starting"
        return True, "ok"


def instrument(worker: Worker, probe: Probe) -> None:
    """Time every batch and feed the recent-mismatch map from the runtime's outputs.

    The runtime calls its observer with the outputs of each record that has some; the batch
    timer is an instance attribute over the worker's method (the agent looks it up at call
    time). Worker and Runtime stay unaware of the web layer.
    """
    recent = probe.recent

    def remember(outputs: list[Mismatch | Command]) -> None:
        for output in outputs:
            if isinstance(output, Mismatch):
                recent.add(output)

    worker.runtime.observer = remember

    process = worker.process

    async def timed_process(messages: Sequence[Any]) -> None:
        began = time.perf_counter()
        await process(messages)
        probe.batches.observe(time.perf_counter() - began, len(messages))

    worker.process = timed_process  # type: ignore[method-assign]
