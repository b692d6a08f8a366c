"""The stream worker at scale: a 20k-order simulated scenario (about 200k events, every fault)
judged by `crosscheck worker` equals the batch evaluator, produced in publish order and
produced one topic after another. CROSSCHECK_SCALE_ORDERS changes the size."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.simulate import FAULTS, SimConfig, expected_outputs, generate
from streams.verify import expected_records
from tests.integration.scenarios import PARTITIONS, RULES, Line, Outputs
from tests.integration.worker_support import (
    Progress,
    assert_no_duplicates,
    assert_same,
    produce,
    read_outputs,
    running_worker,
    wait_until_judged,
)
from topology.topics import INPUTS, Topology

pytestmark = pytest.mark.integration

ORDERS = int(os.environ.get("CROSSCHECK_SCALE_ORDERS", "20000"))


@pytest.fixture(scope="module")
def traffic() -> tuple[list[Line], Outputs]:
    config = SimConfig(orders=ORDERS, seed=11, rules=RULES,
                       faults={name: 0.004 for name in FAULTS})
    events = generate(config)
    lines = [Line(topic, record, i, i) for i, (topic, record) in enumerate(events)]
    ref = expected_records(expected_outputs(events, RULES, PARTITIONS))
    return lines, Outputs(ref.mismatches, ref.commands)


def _judge(settings: Settings, topology: Topology, log: Path, lines: list[Line]) -> Any:
    produce(settings, lines)
    progress = Progress(settings, topology)
    try:
        with running_worker(settings, log) as worker:
            wait_until_judged(worker, progress, timeout=900)
    finally:
        progress.close()
    return read_outputs(settings, topology)


@pytest.mark.parametrize("order", ["publish", "topic_after_topic"])
def test_simulated_scale_run_equals_batch(settings: Settings, topology: Topology,
                                          tmp_path: Path, order: str,
                                          traffic: tuple[list[Line], Outputs]) -> None:
    lines, expected = traffic
    if order == "topic_after_topic":
        lines = sorted(lines, key=lambda line: (INPUTS.index(line.topic), line.seq))
    outputs = _judge(settings, topology, tmp_path / "worker.log", lines)
    assert len(expected.mismatches) > ORDERS // 100  # the faults were injected
    assert_no_duplicates(outputs)
    assert not outputs.dead_letters
    assert_same(outputs.normalized(), expected, f"{ORDERS} simulated orders, {order}")
