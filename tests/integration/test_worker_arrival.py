"""Real-broker tests of uneven arrival: a quiet worker then a backlog, and a silent input.

The worker decides only on input that has arrived: a backlog published after every input
was quiet, or an input that is silent while the others flow, must not make it decide ahead
of records that are on the broker or merely late. Outputs are compared with the batch
evaluator over the complete data.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.config import Settings
from streams.produce import EventPublisher
from tests.integration.scenarios import Line, Scenario, rules_scenario
from tests.integration.worker_support import (
    Progress,
    WorkerOutputs,
    assert_no_duplicates,
    assert_same,
    produce,
    read_outputs,
    read_records,
    running_worker,
    wait_for_members,
    wait_until_judged,
)
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration

#: longer than the scenario's idle timeout (2 s): every input is quiet by then
QUIET = 4.0


def run(settings: Settings, topology: Topology, log: Path, batches: list[list[Line]],
        pause: float, extra_args: tuple[str, ...] = ()) -> WorkerOutputs:
    """Start a worker on empty topics, let it be quiet past the idle timeout, publish the
    batches ``pause`` s apart, wait until it has judged everything, stop it, read back."""
    progress = Progress(settings, topology)
    try:
        with running_worker(settings, log, extra_args=extra_args) as worker:
            wait_for_members(settings, worker)
            time.sleep(QUIET)
            publisher = EventPublisher(settings)
            for n, batch in enumerate(batches):
                if n:
                    time.sleep(pause)
                produce(settings, batch, publisher)
            wait_until_judged(worker, progress, timeout=240.0)
            code = worker.terminate()
            assert code == 0, f"worker exited with {code}\n{worker.log_tail()}"
    finally:
        progress.close()
    return read_outputs(settings, topology)


def check_exact(scenario: Scenario, outputs: WorkerOutputs, log: Path) -> None:
    expected = scenario.expected()
    assert_same(outputs.normalized(), expected, f"worker log: {log}")
    assert_no_duplicates(outputs, expected)


def test_a_backlog_after_quiet_inputs_in_time_order(settings: Settings, topology: Topology,
                                                    tmp_path: Path) -> None:
    scenario = rules_scenario(copies=2, seed=21)
    log = tmp_path / "worker.log"
    outputs = run(settings, topology, log, [scenario.in_time_order()], 0.0)
    check_exact(scenario, outputs, log)
    assert outputs.commands


def test_a_backlog_after_quiet_inputs_one_topic_after_another(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """Orders, then payments, inventory, shipping, each whole, a second apart: nothing is
    decided on one topic's records while the next one's are still to come."""
    scenario = rules_scenario(copies=2, seed=22)
    ordered = scenario.topic_after_topic()
    batches = [[line for line in ordered if line.topic is topic]
               for topic in (TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY,
                             TopicId.SHIPPING)]
    log = tmp_path / "worker.log"
    outputs = run(settings, topology, log, batches, 1.0)
    check_exact(scenario, outputs, log)


def _silent(scenario: Scenario, topic: TopicId, chunks: int
            ) -> tuple[list[list[Line]], list[Line]]:
    """The scenario in time order with ``topic``'s records of its middle held back: the
    others published in ``chunks`` pieces, then the held-back backlog, then the rest."""
    ordered = scenario.in_time_order()
    third = len(ordered) // 3
    head, middle, tail = ordered[:third], ordered[third:2 * third], ordered[2 * third:]
    held = [line for line in middle if line.topic is topic]
    flowing = [line for line in middle if line.topic is not topic]
    size = max(1, len(flowing) // chunks)
    pieces = [flowing[i:i + size] for i in range(0, len(flowing), size)]
    return [head, *pieces, held, tail], held


def test_an_input_silent_shorter_than_source_hold_is_waited_for(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """Inventory says nothing for about 8 s (past the 2 s idle timeout, within the default
    10 min source_hold) while the others flow; then its backlog: outputs exact."""
    scenario = rules_scenario(copies=2, seed=23)
    batches, held = _silent(scenario, TopicId.INVENTORY, 8)
    assert len(held) > 20
    log = tmp_path / "worker.log"
    outputs = run(settings, topology, log, batches, 1.0)
    check_exact(scenario, outputs, log)
    alerts = read_records(settings, topology.name(TopicId.ALERTS))
    assert not [a for a in alerts if a["kind"].startswith("SOURCE_")]


def test_an_input_silent_past_source_hold_is_said_once_and_moves_no_money(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """Inventory silent for about 12 s with a 3 s source_hold: the decisions go on without
    it (marked decided_without), one SOURCE_STALLED and one SOURCE_RECOVERED alert, and no
    command the complete data does not call for; after the backlog, exactly its commands."""
    scenario = rules_scenario(copies=2, seed=24)
    batches, held = _silent(scenario, TopicId.INVENTORY, 12)
    assert len(held) > 20
    log = tmp_path / "worker.log"
    outputs = run(settings, topology, log, batches, 1.0,
                  extra_args=("--source-hold", "3s"))
    expected = scenario.expected()
    got = outputs.normalized()
    # the same actions, each once (a command two mismatches call for names the one whose
    # decision was confirmed first: during the stall that may be the other one)
    assert sorted(c["command_id"] for c in got.commands) == \
        sorted(c["command_id"] for c in expected.commands), f"worker log: {log}"
    assert {c["command_id"]: (c["type"], c["target_id"]) for c in got.commands} == \
        {c["command_id"]: (c["type"], c["target_id"]) for c in expected.commands}
    opened = {m["mismatch_id"] for m in got.mismatches if m["status"] == "OPEN"}
    assert {m["mismatch_id"] for m in expected.mismatches if m["status"] == "OPEN"} <= opened
    without = [m for m in outputs.mismatches if "decided_without" in (m["details"] or {})]
    assert without, "no decision was made without the stalled input"
    assert {m["details"]["decided_without"] for m in without} == {
        topology.name(TopicId.INVENTORY)}
    alerts = read_records(settings, topology.name(TopicId.ALERTS))
    source = [a for a in alerts if a["kind"].startswith("SOURCE_")]
    assert [a["kind"] for a in source] == ["SOURCE_STALLED", "SOURCE_RECOVERED"], source
    assert source[0]["source"]["topic"] == topology.name(TopicId.INVENTORY)
    assert not [a for a in alerts if a["kind"] == "STORM"], "a stall is one alert, not a storm"
