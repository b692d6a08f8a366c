"""Real-broker tests: a worker killed (by a fault hook) between producing a transaction and
committing it, again and again, keeps its local state, holds none of the aborted writes, and
ends with exactly the outputs of a clean run; a worker whose state directory is lost restores
it from the changelogs in bulk."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from streams.config import Settings
from streams.worker.faults import KILL_BEFORE_COMMIT
from tests.integration.scenarios import mixed_scenario
from tests.integration.worker_support import (
    FAST_GROUP_ENV,
    Progress,
    assert_no_duplicates,
    assert_same,
    free_port,
    produce,
    read_outputs,
    running_worker,
    start_worker,
    wait_until_judged,
)
from topology.topics import Topology

pytestmark = pytest.mark.integration

#: a static member: each restart gets the partitions back at once (no wait for the killed
#: member's session to expire)
ENV = {**FAST_GROUP_ENV, "CROSSCHECK_GROUP_INSTANCE_ID": "abort-test-worker",
       "CROSSCHECK_COMMIT_INTERVAL": "0.2"}
#: the commit each killed run dies in (the ones before it commit, that one is aborted)
KILLS = (4, 7, 3, 9, 5)


def test_kill_between_produce_and_commit_keeps_only_committed_state(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    scenario = mixed_scenario(1200, seed=31)
    produce(settings, scenario.in_time_order())
    log = tmp_path / "worker.log"
    port = free_port()  # the same state directory every time
    progress = Progress(settings, topology)
    try:
        total = progress.input_total()
        committed = [0]
        for kill_at in KILLS:
            worker = start_worker(settings, log, port=port, extra_args=("--batch-size", "40"),
                                  extra_env={**ENV, KILL_BEFORE_COMMIT: str(kill_at)})
            deadline = time.monotonic() + 120
            while worker.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not worker.alive(), f"the fault hook did not fire\n{worker.log_tail()}"
            assert worker.proc.returncode == -9, worker.log_tail()
            committed.append(progress.committed_inputs())
        assert committed[-1] < total, "the killed runs judged everything: nothing was aborted"
        assert committed[-1] > 0
        with running_worker(settings, log, port=port, extra_env=ENV) as last:
            wait_until_judged(last, progress)
            assert last.terminate() == 0, last.log_tail()
        assert progress.committed_inputs() == total
    finally:
        progress.close()
    text = log.read_text(errors="replace")
    # the aborted batches were in RocksDB, and were undone when it was opened again ...
    assert "whose transactions did not commit" in text, text[-3000:]
    # ... and nothing was wiped
    assert "wiped" not in text, text[-3000:]
    outputs = read_outputs(settings, topology)
    assert_same(outputs.normalized(), scenario.expected(), f"worker log: {log}")
    assert_no_duplicates(outputs)
    assert not outputs.dead_letters


def test_a_lost_state_directory_is_restored_in_bulk(settings: Settings, topology: Topology,
                                                    tmp_path: Path) -> None:
    """The state directory deleted between two runs (a new disk): the restarted worker reads
    the changelogs in bulk, with the due index, and goes on with exactly the clean run's
    outputs."""
    scenario = mixed_scenario(1200, seed=32)
    lines = scenario.in_time_order()
    produce(settings, lines[:800])
    log = tmp_path / "worker.log"
    port = free_port()
    progress = Progress(settings, topology)
    try:
        with running_worker(settings, log, port=port, extra_env=ENV) as first:
            wait_until_judged(first, progress)
            assert first.terminate() == 0, first.log_tail()
        state = settings.home / "worker"
        assert any(state.iterdir())
        shutil.rmtree(state)
        produce(settings, lines[800:])
        with running_worker(settings, log, port=port, extra_env=ENV) as second:
            wait_until_judged(second, progress)
            assert second.terminate() == 0, second.log_tail()
    finally:
        progress.close()
    restored = re.findall(r"bulk restore: ([\d,]+) changelog records", log.read_text())
    orders = len({line.order_id for line in lines[:800]})  # one changelog record each at least
    assert restored and sum(int(n.replace(",", "")) for n in restored) >= orders, restored
    outputs = read_outputs(settings, topology)
    assert_same(outputs.normalized(), scenario.expected(), f"worker log: {log}")
    assert_no_duplicates(outputs)
