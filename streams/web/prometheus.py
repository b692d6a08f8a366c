"""`/metrics`: the worker's counters in the Prometheus text format (own CollectorRegistry).

Counters are read from the Runtime at scrape time (a custom collector, so the hot path does
no extra bookkeeping); the batch processing time is a real Histogram fed by ``instrument``.
All series are per worker process: sum them over the group in PromQL. They start from 0
when a worker starts (Prometheus counters handle resets).

Input states are one gauge per state, ``crosscheck_input_state{topic,partition,state}``:
1 for the topic-partition's current state and 0 for every other (state is ``active``,
``quiet``, ``stalled``, ``released`` or ``never_seen``), so each series always exists and a
rule alerts on its value, e.g. ``crosscheck_input_state{state=~"stalled|released"} == 1``
``for: 5m``; a change of state is a change of value, never a vanished series. Held commands
are a gauge (``crosscheck_commands_held``: alert on ``> 0 for: 30m``); each one ends issued
or dropped (the two ``_held_..._total`` counters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from streams.model import CommandType, MismatchType
from streams.web.inputs import STATES, InputRow
from streams.web.probe import PartitionLag
from streams.worker.runtime_types import Counters
from topology.topics import INPUTS

__all__ = ["WorkerMetrics"]

#: batch processing time buckets (seconds): a batch is up to --batch-size records
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


class MetricsSource(Protocol):
    """What the collector reads (Probe implements it)."""

    @property
    def counters(self) -> Counters: ...

    @property
    def records(self) -> int: ...

    @property
    def batch_count(self) -> int: ...

    def watermarks(self) -> dict[int, int | None]: ...

    def lag(self) -> list[PartitionLag]: ...

    def ready(self) -> tuple[bool, str]: ...

    def inputs(self) -> list[InputRow]: ...

    def held_count(self) -> int: ...


class _WorkerCollector(Collector):
    def __init__(self, source: MetricsSource, clock: Callable[[], int]) -> None:
        self.source = source
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        s = self.source
        c = s.counters
        events = CounterMetricFamily(
            "crosscheck_events", "Valid input events judged, by input topic", labels=["topic"])
        for t in INPUTS:
            events.add_metric([t.value], c.events.get(t.value, 0))
        yield events
        yield CounterMetricFamily("crosscheck_records",
                                  "Records consumed (inputs and ticks, valid or not)",
                                  value=s.records)
        yield CounterMetricFamily("crosscheck_batches", "Batches processed", value=s.batch_count)
        yield CounterMetricFamily("crosscheck_dead_letters",
                                  "Input records sent to the dead-letter topic",
                                  value=c.dead_letters)
        yield CounterMetricFamily("crosscheck_duplicates_ignored",
                                  "Redelivered events (known event_id) not counted again",
                                  value=c.duplicates_ignored)
        opened = CounterMetricFamily(
            "crosscheck_mismatches_opened", "Mismatches decided and emitted OPEN, by type",
            labels=["type"])
        for mt in MismatchType:
            opened.add_metric([mt.value], c.mismatches.get(mt.value, 0))
        yield opened
        yield CounterMetricFamily("crosscheck_mismatches_resolved",
                                  "Mismatches re-emitted RESOLVED", value=c.resolved)
        commands = CounterMetricFamily(
            "crosscheck_commands", "Compensating commands issued, by type", labels=["type"])
        for ct in CommandType:
            commands.add_metric([ct.value], c.commands.get(ct.value, 0))
        yield commands
        shadow = CounterMetricFamily(
            "crosscheck_commands_shadow", "Commands decided in shadow mode (sent to the "
            "shadow topic, never executed), by type", labels=["type"])
        for ct in CommandType:
            shadow.add_metric([ct.value], c.shadow_commands.get(ct.value, 0))
        yield shadow
        yield CounterMetricFamily("crosscheck_ticks", "Idle notices of this worker applied",
                                  value=c.ticks)
        stage = CounterMetricFamily(
            "crosscheck_stage_seconds", "Wall time spent per stage of batch processing "
            "(decode, engine, state_write, produce; batch: all of it)", labels=["stage"])
        for name, seconds in c.stage_seconds.items():
            stage.add_metric([name], seconds)
        yield stage
        now = self.clock()
        lag_s = GaugeMetricFamily(
            "crosscheck_watermark_lag_seconds",
            "Wall clock minus the partition's event-time watermark", labels=["partition"])
        wm_s = GaugeMetricFamily(
            "crosscheck_watermark_timestamp_seconds",
            "The partition's event-time watermark (epoch seconds)", labels=["partition"])
        for p, wm in s.watermarks().items():
            if wm is not None:
                lag_s.add_metric([str(p)], (now - wm) / 1000)
                wm_s.add_metric([str(p)], wm / 1000)
        yield lag_s
        yield wm_s
        input_lag = GaugeMetricFamily(
            "crosscheck_input_lag_records",
            "Records of an assigned input topic-partition not processed yet (cached high "
            "water minus position)", labels=["topic", "partition"])
        for pl in s.lag():
            if pl.lag is not None:
                input_lag.add_metric([pl.topic, str(pl.partition)], pl.lag)
        yield input_lag
        yield from self._inputs(s)
        ready, _why = s.ready()
        yield GaugeMetricFamily("crosscheck_ready",
                                "1 when the worker serves its partitions (not starting, "
                                "rebalancing or recovering)", value=1 if ready else 0)

    @staticmethod
    def _inputs(s: MetricsSource) -> Iterator[Metric]:
        """Input states, progress, held commands and the decisions made without an input."""
        c = s.counters
        rows = s.inputs()
        state = GaugeMetricFamily(
            "crosscheck_input_state", "1 for the input topic-partition's current state "
            "(active, quiet, stalled, released, never_seen), 0 for the others",
            labels=["topic", "partition", "state"])
        progress = GaugeMetricFamily(
            "crosscheck_input_progress_timestamp_seconds",
            "Largest event time read on the input topic-partition (epoch seconds)",
            labels=["topic", "partition"])
        for row in rows:
            for name in STATES:
                state.add_metric([row.topic, str(row.partition), name.replace(" ", "_")],
                                 1 if name == row.state else 0)
            if row.progress is not None:
                progress.add_metric([row.topic, str(row.partition)], row.progress / 1000)
        yield state
        yield progress
        yield GaugeMetricFamily("crosscheck_commands_held",
                                "Compensating commands decided but not confirmed by every "
                                "input their rule reads (not sent)", value=s.held_count())
        yield CounterMetricFamily("crosscheck_commands_held_issued",
                                  "Held commands issued once their inputs confirmed them",
                                  value=c.held_issued)
        yield CounterMetricFamily("crosscheck_commands_held_dropped",
                                  "Held commands dropped: once confirmed, the decision no "
                                  "longer fired", value=c.held_dropped)
        excused = CounterMetricFamily(
            "crosscheck_decisions_excused", "Mismatches opened while an input their rule "
            "reads was excused (quiet at the end of the traffic, or released), by type",
            labels=["type"])
        for mt in MismatchType:
            excused.add_metric([mt.value], c.excused.get(mt.value, 0))
        yield excused
        yield CounterMetricFamily("crosscheck_inputs_reactivated",
                                  "Quiet or released inputs made active again because "
                                  "records were waiting on the broker", value=c.reactivated)


class WorkerMetrics:
    """A dedicated registry: the worker's collector and the batch histograms."""

    def __init__(self, source: MetricsSource, clock: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_WorkerCollector(source, clock))
        self.batch_seconds = Histogram(
            "crosscheck_batch_processing_seconds",
            "Time to judge one batch, flush its state and produce its outputs",
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_records = Histogram(
            "crosscheck_batch_records", "Records per processed batch",
            buckets=BATCH_SIZE_BUCKETS, registry=self.registry)

    def observe_batch(self, seconds: float, records: int) -> None:
        """Called after each batch (see probe.instrument)."""
        self.batch_seconds.observe(seconds)
        self.batch_records.observe(records)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition of every metric and its content type, in the format the Accept
        header asks for (Prometheus text 0.0.4 by default, OpenMetrics when asked)."""
        encoder, content_type = choose_encoder(accept or "")
        return bytes(encoder(self.registry)), str(content_type)
