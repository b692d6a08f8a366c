"""Real-broker tests: a worker stopped in the middle of the input (SIGKILL or SIGTERM) and
restarted with the same app id and CROSSCHECK_HOME ends with exactly the outputs of a clean
run (batch.evaluate's), read with read_committed, and nothing emitted twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from schemas.codec import Codec
from streams.clients import confluent_config
from streams.config import Settings
from tests.integration.scenarios import Line, Outputs, Scenario, mixed_scenario
from tests.integration.worker_support import (
    FAST_GROUP_ENV,
    Progress,
    WorkerOutputs,
    WorkerProcess,
    assert_no_duplicates,
    assert_same,
    free_port,
    produce,
    read_outputs,
    running_worker,
    start_worker,
    wait_until_judged,
    wait_until_up,
)
from topology.topics import BY_ID, INPUTS, Topology

pytestmark = pytest.mark.integration

#: Commit (end the transaction) every 0.25 s, with the worker's own option, so that a stop
#: finds part of the input committed and part in flight (one commit a second covered most
#: of the input once the worker judged over 10k records/s); leave a killed member's session
#: after 10 s.
ENV = {**FAST_GROUP_ENV, "CROSSCHECK_COMMIT_INTERVAL": "0.25"}
#: The worker stopped midway judges in batches of 50 records: with the default 2,000 it
#: judged the whole input (18k records) within its first commit now and then, leaving
#: nothing to stop in the middle of.
MIDWAY_ARGS = ("--batch-size", "50")


def stop_midway(worker: WorkerProcess, progress: Progress, total: int, how: str,
                timeout: float = 120.0) -> int:
    """Once the group has committed some but not most of the input, stop the worker
    (`how`: "kill" = SIGKILL, "term" = SIGTERM). Returns the committed input count then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise AssertionError(f"worker exited early:\n{worker.log_tail()}")
        done = progress.committed_inputs()
        if done >= total * 0.85:
            raise AssertionError(f"the worker committed {done} of {total} input records "
                                 "before it could be stopped midway")
        if done >= total * 0.1:
            if how == "kill":
                worker.kill()
            else:
                code = worker.terminate()
                assert code == 0, f"SIGTERM: exit code {code}\n{worker.log_tail()}"
            return done
        time.sleep(0.05)
    raise AssertionError(f"the worker committed nothing in {timeout:.0f}s\n{worker.log_tail()}")


def run_interrupted(settings: Settings, topology: Topology, tmp_path: Path, scenario: Scenario,
                    how: str) -> None:
    produce(settings, scenario.in_time_order())
    expected = scenario.expected()
    log = tmp_path / "worker.log"
    port = free_port()  # the same port, hence the same state directory, after the restart
    progress = Progress(settings, topology)
    try:
        total = progress.input_total()
        assert total == len(scenario.lines)
        first = start_worker(settings, log, port=port, extra_args=MIDWAY_ARGS, extra_env=ENV)
        try:
            committed = stop_midway(first, progress, total, how)
        finally:
            first.terminate()
        assert 0 < committed < total
        with running_worker(settings, log, port=port, extra_env=ENV) as second:
            wait_until_judged(second, progress)
            code = second.terminate()
            assert code == 0, f"worker exited with {code}\n{second.log_tail()}"
        assert progress.committed_inputs() == total
    finally:
        progress.close()
    outputs = read_outputs(settings, topology)
    assert_same(outputs.normalized(), expected, f"worker log: {log}")
    assert_no_duplicates(outputs)
    assert not outputs.dead_letters
    # no start-up spinner (it kept the root logger at DEBUG): no terminal escapes in the log
    assert "\x1b[?25" not in log.read_text(errors="replace")


def test_sigkill_midway_and_restart_equals_clean_run(settings: Settings, topology: Topology,
                                                     tmp_path: Path) -> None:
    """kill -9 with a transaction open: its outputs are aborted, the local state is rebuilt
    from the changelog, and the restarted worker emits each decision exactly once."""
    run_interrupted(settings, topology, tmp_path, mixed_scenario(3000, seed=21), "kill")


def test_sigterm_midway_and_restart_equals_clean_run(settings: Settings, topology: Topology,
                                                     tmp_path: Path) -> None:
    """A clean stop in the middle keeps the local state; the restart continues from it."""
    run_interrupted(settings, topology, tmp_path, mixed_scenario(3000, seed=22), "term")



def produce_in_transactions(settings: Settings, lines: list[Line], per_transaction: int = 160,
                            abort_every: int = 4) -> int:
    """Publish like a service with a transactional producer: the lines in transactions of
    `per_transaction`, and before every `abort_every`-th one an aborted transaction of
    undecodable records (read_committed readers never see them; a worker that did would
    dead-letter them). Every partition then ends with a commit marker. Returns how many
    aborted records were written."""
    codec = Codec()
    topo = Topology(settings.partitions, settings.topic_prefix, settings.topic_overrides)
    names = {t: topo.name(t) for t in INPUTS}
    encoders = {t: codec.encoder(BY_ID[t].value_schema, names[t]) for t in INPUTS}
    producer = Producer(confluent_config(settings, **{
        "partitioner": "murmur2_random", "transactional.id": f"{settings.app_id}-service"}))
    producer.init_transactions(60)
    aborted = 0
    for n, i in enumerate(range(0, len(lines), per_transaction)):
        chunk = lines[i:i + per_transaction]
        if n % abort_every == abort_every - 1:
            producer.begin_transaction()
            for line in chunk:
                producer.produce(names[line.topic], b"aborted, never to be read",
                                 line.order_id.encode())
            # written first (abort alone may purge them unsent): aborted records in the log
            assert producer.flush(60) == 0
            producer.abort_transaction(60)
            aborted += len(chunk)
        producer.begin_transaction()
        for line in chunk:
            producer.produce(names[line.topic], encoders[line.topic](line.record),
                             line.order_id.encode())
        producer.commit_transaction(60)
    return aborted


def wait_for_outputs(worker: WorkerProcess, settings: Settings, topology: Topology,
                     expected: Outputs, timeout: float = 240.0) -> WorkerOutputs:
    """Read the outputs until they equal `expected` (committed offsets cannot show the end
    here: a partition's last offset is a commit marker no consumer receives)."""
    deadline = time.monotonic() + timeout
    while True:
        assert worker.alive(), f"worker exited:\n{worker.log_tail()}"
        outputs = read_outputs(settings, topology)
        if outputs.normalized() == expected or time.monotonic() > deadline:
            return outputs
        time.sleep(2)


def test_inputs_written_in_transactions_sigkill_and_restart(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """Input services that write in transactions leave commit and abort markers and aborted
    records in the input topics. The worker never reads an aborted record, and an input
    whose only unread offsets are markers counts as caught up (idle), so the final
    decisions come; also after a SIGKILL and a restart."""
    scenario = mixed_scenario(1500, seed=23)
    aborted = produce_in_transactions(settings, scenario.in_time_order())
    expected = scenario.expected()
    log = tmp_path / "worker.log"
    port = free_port()
    progress = Progress(settings, topology)
    try:
        total = progress.input_total()  # records, aborted records and transaction markers
        assert aborted > 0 and total > len(scenario.lines) + aborted
        first = start_worker(settings, log, port=port, extra_args=MIDWAY_ARGS, extra_env=ENV)
        try:
            stop_midway(first, progress, total, "kill")
        finally:
            first.terminate()
        with running_worker(settings, log, port=port, extra_env=ENV) as second:
            wait_until_up(second)  # a SIGTERM while it starts would not be a clean stop
            outputs = wait_for_outputs(second, settings, topology, expected)
            assert "stalled" not in log.read_text(), second.log_tail()
            assert second.terminate() == 0
    finally:
        progress.close()
    assert_same(outputs.normalized(), expected, f"worker log: {log}")
    assert_no_duplicates(outputs)
    assert not outputs.dead_letters
