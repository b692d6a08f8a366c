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
from streams.web.probe import PartitionLag, Probe, instrument
from streams.web.prometheus import WorkerMetrics
from streams.worker.runtime import Counters, Emit, Record
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

    def watermarks(self) -> dict[int, int | None]:
        return self.marks

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
    runtime = SimpleNamespace(counters=Counters(), worker_id="w1", watermarks=lambda: {1: NOW})
    tracker = SimpleNamespace(next_offset={(topology.name(TopicId.PAYMENTS), 1): 10})
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
