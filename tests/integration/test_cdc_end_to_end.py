"""The shop's database through Debezium, the ingest and the worker: judged as in batch."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from streams.cdc.stack import CdcStack
from streams.clients import confluent_config
from streams.config import Settings
from streams.simulate import FAULTS, SimConfig, expected_outputs, simulate
from streams.simulate.shopdb import db_order, write_events
from streams.sources import parse_sources
from streams.sources.ingest import Ingest
from streams.verify import expected_records
from tests.integration.cdc_support import read_changes
from tests.integration.scenarios import PARTITIONS, RULES, Outputs
from tests.integration.worker_support import (
    Progress,
    assert_no_duplicates,
    assert_same,
    read_outputs,
    read_records,
    running_worker,
    wait_until_judged,
)
from topology.topics import INPUTS, Topology

pytestmark = pytest.mark.integration

SHOP_SOURCES = Path(__file__).resolve().parents[2] / "examples" / "sources-shop.toml"


class IngestedProgress(Progress):
    """The worker's progress over inputs written in transactions (by the ingest): a
    partition's end, for the worker, is after its last record; the commit marker that follows
    it is never covered by the offset the worker commits."""

    def __init__(self, settings: Settings, topology: Topology) -> None:
        super().__init__(settings, topology)
        self.last = record_ends(settings, self.inputs)

    def ends(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: self.last.get(tp, end) for tp, end in super().ends(tps).items()}


def record_ends(settings: Settings, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The offset after the last record of each topic-partition (read_committed)."""
    consumer = Consumer(confluent_config(settings, **{
        "group.id": f"ends-{uuid.uuid4().hex}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True}))
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
    ends = dict.fromkeys(tps, 0)
    pending = set(tps)
    deadline = time.monotonic() + 60
    try:
        while pending:
            assert time.monotonic() < deadline, f"not read to the end: {sorted(pending)}"
            for msg in consumer.consume(1000, timeout=0.5):
                tp = (msg.topic(), msg.partition())
                if msg.error() is None:
                    ends[tp] = msg.offset() + 1
                elif msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(tp)
    finally:
        consumer.close()
    return ends


def _decisions(mismatches: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What was decided, without the evidence (event_ids differ between the two forms)."""
    return sorted((m["type"], m["status"], m["order_id"], m["subject_id"], m["decided_at"])
                  for m in mismatches)


def test_database_flows_through_cdc_are_judged_as_the_batch_evaluator_judges(
        cdc_stack: CdcStack, settings: Settings, topology: Topology, tmp_path: Path) -> None:
    traffic = simulate(SimConfig(orders=150, seed=41, rules=RULES,
                                 faults=dict.fromkeys(FAULTS, 0.04)))
    events = traffic.events
    rows = db_order(events)
    # a connector of this test's own, writing under its topic prefix
    plan = replace(cdc_stack.plan, name=f"e2e-{settings.app_id}",
                   topic_prefix=f"{settings.topic_prefix}shop")
    stack = cdc_stack.with_plan(plan)
    half = len(rows) // 2
    try:
        stack.start()
        write_events(stack.database, rows[:half])
        read_changes(stack, lambda got: len(got) >= half)
        assert stack.connect.stop(kill=True)  # Connect crashes mid-run, and on its restart
        stack.start()  # delivers again what it had read since it last committed its offsets
        write_events(stack.database, rows[half:])
        changes = read_changes(stack, lambda got: len({c.ident for c in got}) >= len(rows))
    finally:
        cdc_stack.start()  # the session's own connector again
    assert len(changes) > len(rows)  # some changes came twice
    # a lost payment callback: its payment row is paid, its order row is never updated
    lost = {o for o, fault in traffic.faults.items() if fault == "lost_callback"}
    assert lost
    statuses = {(c.value["source"]["table"], c.key, c.row["status"]) for c in changes}
    for order_id in lost:
        assert ("payments", order_id, "paid") in statuses
        assert ("orders", order_id, "placed") in statuses
        assert ("orders", order_id, "paid") not in statuses

    text = SHOP_SOURCES.read_text(encoding="utf-8")
    mapped = parse_sources(text.replace('topic = "shop.', f'topic = "{plan.topic_prefix}.'))
    ingest = Ingest(settings, mapped, batch_size=200)
    ingest.start()
    try:
        ingest.run(threading.Event(), until_idle=3.0)
    finally:
        ingest.close()
    ingested = [(topic, record) for topic in INPUTS
                for record in read_records(settings, topology.name(topic))]
    # each statement is one event; a change delivered again is the same event again
    assert len({record["event_id"] for _, record in ingested}) == len(rows)

    log = tmp_path / "worker.log"
    progress = IngestedProgress(settings, topology)
    try:
        with running_worker(settings, log) as worker:
            wait_until_judged(worker, progress)
    finally:
        progress.close()
    outputs = read_outputs(settings, topology)
    ref = expected_records(expected_outputs(ingested, RULES, PARTITIONS))
    expected = Outputs(ref.mismatches, ref.commands)
    assert len(expected.mismatches) > 20  # the faults were injected
    assert_same(outputs.normalized(), expected, f"worker log: {log}")
    assert_no_duplicates(outputs, expected)
    assert not outputs.dead_letters
    # the database tells the simulator's story: the decisions on its own events
    simulated = expected_records(expected_outputs(events, RULES, PARTITIONS))
    assert _decisions(expected.mismatches) == _decisions(simulated.mismatches)
