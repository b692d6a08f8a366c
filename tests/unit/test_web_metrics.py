"""/metrics exposition, the probe's readiness and lag, and the worker hooks (no Kafka)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client.parser import text_string_to_metric_families

from streams.model import Command, Mismatch, MismatchType, Severity, Status
from streams.web.inputs import InputRow
from streams.web.probe import PartitionLag, Probe, instrument
from streams.web.prometheus import WorkerMetrics
from streams.worker.runtime_types import Counters, Emit, Record
from topology.topics import TopicId, Topology

NOW = 1_795_255_200_000


@dataclass
class FakeSource:
    counters: Counters = field(default_factory=Counters)
    records: int = 0
    batch_count: int = 0
    marks: dict[int, int | None] = field(default_factory=dict)
    lags: list[PartitionLag] = field(default_factory=list)
    is_ready: bool = True
    rows: list[InputRow] = field(default_factory=list)
    held: int = 0

    def watermarks(self) -> dict[int, int | None]:
        return self.marks

    def inputs(self) -> list[InputRow]:
        return self.rows

    def held_count(self) -> int:
        return self.held

    def lag(self) -> list[PartitionLag]:
        return self.lags

    def ready(self) -> tuple[bool, str]:
        return self.is_ready, "ok" if self.is_ready else "rebalancing"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_exposition_has_every_series() -> None:
    source = FakeSource(records=120, batch_count=3, marks={0: NOW - 90_000, 1: None},
                        lags=[PartitionLag("payments", 0, 50, 40),
                              PartitionLag("payments", 1, None, 2)])
    c = source.counters
    c.events.update({"payments": 7, "orders": 3})
    c.mismatches.update({"AMOUNT_MISMATCH": 2})
    c.commands.update({"REFUND_PAYMENT": 1})
    c.shadow_commands.update({"HOLD_SHIPMENT": 3})
    c.resolved, c.dead_letters, c.duplicates_ignored, c.ticks = 1, 4, 5, 6
    metrics = WorkerMetrics(source, lambda: NOW)
    metrics.observe_batch(0.02, 100)
    metrics.observe_batch(0.3, 20)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    s = _samples(body.decode())
    assert s[("crosscheck_events_total", (("topic", "payments"),))] == 7
    assert s[("crosscheck_events_total", (("topic", "shipping"),))] == 0  # every topic listed
    assert s[("crosscheck_mismatches_opened_total", (("type", "AMOUNT_MISMATCH"),))] == 2
    assert s[("crosscheck_mismatches_opened_total", (("type", "TCC_HANGING"),))] == 0
    assert s[("crosscheck_commands_total", (("type", "REFUND_PAYMENT"),))] == 1
    assert s[("crosscheck_commands_total", (("type", "HOLD_SHIPMENT"),))] == 0
    assert s[("crosscheck_commands_shadow_total", (("type", "HOLD_SHIPMENT"),))] == 3
    assert s[("crosscheck_commands_shadow_total", (("type", "REFUND_PAYMENT"),))] == 0
    assert s[("crosscheck_mismatches_resolved_total", ())] == 1
    assert s[("crosscheck_dead_letters_total", ())] == 4
    assert s[("crosscheck_duplicates_ignored_total", ())] == 5
    assert s[("crosscheck_records_total", ())] == 120
    assert s[("crosscheck_watermark_lag_seconds", (("partition", "0"),))] == 90.0
    assert ("crosscheck_watermark_lag_seconds", (("partition", "1"),)) not in s
    assert s[("crosscheck_input_lag_records", (("partition", "0"), ("topic", "payments")))] == 10
    assert ("crosscheck_input_lag_records", (("partition", "1"), ("topic", "payments"))) \
        not in s
    assert s[("crosscheck_ready", ())] == 1
    assert s[("crosscheck_batch_processing_seconds_count", ())] == 2
    assert s[("crosscheck_batch_processing_seconds_bucket", (("le", "0.025"),))] == 1
    assert s[("crosscheck_batch_records_sum", ())] == 120
    source.is_ready = False
    assert _samples(metrics.render()[0].decode())[("crosscheck_ready", ())] == 0


def test_inputs_and_held_commands() -> None:
    source = FakeSource(held=3, rows=[
        InputRow("payments", 0, NOW - 5_000, 0, "stalled", NOW - 60_000),
        InputRow("orders", 0, NOW - 1_000, 2, "active", None),
        InputRow("shipping", 1, None, None, "never seen", None)])
    c = source.counters
    c.held_issued, c.held_dropped, c.reactivated = 5, 2, 1
    c.excused.update({"PAID_NOT_SHIPPED": 4})
    s = _samples(WorkerMetrics(source, lambda: NOW).render()[0].decode())

    def state(topic: str, partition: int, name: str) -> float:
        return s[("crosscheck_input_state",
                  (("partition", str(partition)), ("state", name), ("topic", topic)))]

    # one series per state, 1 for the current one: an alert rule never loses its series
    for name in ("active", "quiet", "stalled", "released", "never_seen"):
        assert state("payments", 0, name) == (1 if name == "stalled" else 0)
        assert state("orders", 0, name) == (1 if name == "active" else 0)
        assert state("shipping", 1, name) == (1 if name == "never_seen" else 0)
    assert s[("crosscheck_input_progress_timestamp_seconds",
              (("partition", "0"), ("topic", "payments")))] == (NOW - 5_000) / 1000
    assert ("crosscheck_input_progress_timestamp_seconds",
            (("partition", "1"), ("topic", "shipping"))) not in s
    assert s[("crosscheck_commands_held", ())] == 3
    assert s[("crosscheck_commands_held_issued_total", ())] == 5
    assert s[("crosscheck_commands_held_dropped_total", ())] == 2
    assert s[("crosscheck_inputs_reactivated_total", ())] == 1
    assert s[("crosscheck_decisions_excused_total", (("type", "PAID_NOT_SHIPPED"),))] == 4
    assert s[("crosscheck_decisions_excused_total", (("type", "TCC_HANGING"),))] == 0
    empty = _samples(WorkerMetrics(FakeSource(), lambda: NOW).render()[0].decode())
    assert empty[("crosscheck_commands_held", ())] == 0
    assert not any(name == "crosscheck_input_state" for name, _labels in empty)


def test_openmetrics_on_request() -> None:
    metrics = WorkerMetrics(FakeSource(), lambda: NOW)
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_registries_are_independent() -> None:
    a = WorkerMetrics(FakeSource(), lambda: NOW)
    b = WorkerMetrics(FakeSource(), lambda: NOW)  # no "duplicated timeseries" error
    a.observe_batch(1.0, 1)
    assert b"crosscheck_batch_processing_seconds_count 0.0" in b.render()[0]


# -- probe ---------------------------------------------------------------------------------


def _fake_worker(**app: Any) -> Any:
    topology = Topology(4)
    tp = TP
    actives = {tp(topic=topology.name(TopicId.PAYMENTS), partition=1),
               tp(topic=topology.name(TopicId.ORDERS), partition=3),
               tp(topic="cc-orders-changelog", partition=0)}
    highwater = {(topology.name(TopicId.PAYMENTS), 1): 12}

    def hw(t: Any) -> int | None:
        return highwater.get((t.topic, t.partition))

    recovery = SimpleNamespace(in_recovery=False, completed=SimpleNamespace(is_set=lambda: True))
    fields = dict(started=True, should_stop=False, rebalancing=False,
                  tables=SimpleNamespace(recovery=recovery),
                  assignor=SimpleNamespace(assigned_actives=lambda: actives),
                  consumer=SimpleNamespace(highwater=hw),
                  conf=SimpleNamespace(canonical_url="http://127.0.0.1:6066", id="cc"))
    fields.update(app)
    states = {1: {"watermark": NOW, "all_quiet": False, "held_commands": 1, "inputs": {
        topology.name(TopicId.PAYMENTS): {"progress": NOW - 1, "state": "quiet", "lag": 0},
        topology.name(TopicId.ORDERS): {"progress": NOW, "state": "active", "lag": 0}}}}
    held = {1: [{"command_id": "c1", "type": "REFUND_PAYMENT", "order_id": "o1",
                 "target_id": "p1", "mismatch_id": "m1", "decided_at": NOW - 10,
                 "waits_for": ["payments"], "held_at": NOW - 5}]}
    runtime = SimpleNamespace(counters=Counters(), worker_id="w1", watermarks=lambda: {1: NOW},
                              input_states=lambda: states, held_commands=lambda: held,
                              held_count=lambda: 1)
    stalls = {(topology.name(TopicId.PAYMENTS), 1): ("stalled", NOW - 7)}
    tracker = SimpleNamespace(next_offset={(topology.name(TopicId.PAYMENTS), 1): 10},
                              stall_states=lambda now: stalls)
    return SimpleNamespace(app=SimpleNamespace(**fields), runtime=runtime, topology=topology,
                           tracker=tracker, records=0, batches=0)


def test_probe_partitions_lag_and_readiness() -> None:
    worker = _fake_worker()
    probe = Probe(worker, clock=lambda: NOW)
    assert probe.partitions() == [1, 3] and probe.owns(3) and not probe.owns(0)
    lags = {(pl.topic, pl.partition): pl.lag for pl in probe.lag()}
    assert lags == {("payments", 1): 2, ("orders", 3): None}
    assert probe.ready() == (True, "ok")
    assert probe.url == "http://127.0.0.1:6066" and probe.worker_id == "w1"
    assert probe.inputs() == [InputRow("orders", 1, NOW, 0, "active", None),
                              InputRow("payments", 1, NOW - 1, 0, "stalled", NOW - 7)]
    assert probe.held_count() == 1 and probe.held_commands()[1][0]["command_id"] == "c1"
    assert Probe(_fake_worker(rebalancing=True)).ready() == (False, "rebalancing")
    assert Probe(_fake_worker(started=False)).ready() == (False, "starting")
    waiting = SimpleNamespace(recovery=SimpleNamespace(
        in_recovery=True, completed=SimpleNamespace(is_set=lambda: False)))
    assert Probe(_fake_worker(tables=waiting)).ready() == (False, "recovering")


def test_instrument_times_batches_and_remembers_mismatches() -> None:
    m = Mismatch("m1", MismatchType.TCC_HANGING, Status.OPEN, "o1", "r1", Severity.MEDIUM,
                 NOW, NOW, ("e1",), None, {})
    outputs: dict[int, list[Mismatch | Command]] = {0: [m], 1: []}

    class Runtime:
        observer: Callable[[list[Mismatch | Command]], None] | None = None

        def handle(self, record: Record) -> list[Emit]:
            found = outputs[record.offset]
            if found and self.observer is not None:  # as Runtime._judged calls it
                self.observer(found)
            return []

    class Worker:
        def __init__(self) -> None:
            self.runtime = Runtime()
            self.seen: list[int] = []

        async def process(self, events: Sequence[Any]) -> None:
            for e in events:
                self.runtime.handle(Record("payments", 0, e, None, None))
            self.seen.append(len(events))

    worker: Any = Worker()
    probe = Probe(worker)
    observed: list[tuple[float, int]] = []
    probe.batches.observers.append(lambda s, n: observed.append((s, n)))
    instrument(worker, probe)
    asyncio.run(worker.process([0, 1]))
    assert worker.seen == [2]
    assert [(n, s >= 0) for s, n in observed] == [(2, True)]
    assert probe.batches.last_records == 2
    got = probe.recent.get("m1")
    assert got is not None and got["type"] == "TCC_HANGING"
