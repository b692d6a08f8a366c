"""The worker's fallback input path (``--consume stream``: Faust's per-record stream and
``take_events``, no batch tap) against the real broker: the same outputs as the main path.

The same small scenario (every rule's fault, with redeliveries) is judged twice, at the same
time, each in a world of its own (topics, consumer group, state): by a worker on the batch
tap, the main path, and by one on Faust's stream. Both must equal the batch evaluator's
reference, and so each other; the worker logs say which path ran.
"""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from streams.clients import admin
from streams.config import Settings
from tests.integration.scenarios import Scenario, rules_scenario
from tests.integration.worker_support import (
    Progress,
    WorkerOutputs,
    assert_no_duplicates,
    assert_same,
    produce,
    read_outputs,
    running_worker,
    wait_until_judged,
)
from topology.admin import create_topics
from topology.topics import Topology

pytestmark = pytest.mark.integration

#: what the batch tap logs when its loop starts (streams/worker/tap.py ``run``)
TAP_RUNS = "reach the worker in batches below Faust's stream"


def another_world(settings: Settings, tmp_path: Path) -> tuple[Settings, Topology]:
    """Settings of a second fresh world on the same broker, with its topics created."""
    tag = uuid.uuid4().hex[:10]
    other = dataclasses.replace(settings, topic_prefix=f"t{tag}.", app_id=f"cc-{tag}",
                                home=tmp_path / "home-batch")
    topology = Topology(other.partitions, other.topic_prefix, other.topic_overrides)
    create_topics(admin(other), topology)
    return other, topology


def judge(settings: Settings, topology: Topology, scenario: Scenario, log: Path,
          consume: str) -> WorkerOutputs:
    """Produce the scenario, run one worker on the given input path until it has judged
    everything, stop it (SIGTERM, exit 0) and read its outputs."""
    produce(settings, scenario.topic_after_topic())
    progress = Progress(settings, topology)
    try:
        with running_worker(settings, log, extra_args=("--consume", consume,
                                                       "--loglevel", "info")) as worker:
            wait_until_judged(worker, progress)
            code = worker.terminate()
            assert code == 0, f"worker exited with {code}\n{worker.log_tail()}"
    finally:
        progress.close()
    return read_outputs(settings, topology)


def test_the_stream_path_emits_what_the_batch_tap_emits(settings: Settings, topology: Topology,
                                                        tmp_path: Path) -> None:
    scenario = rules_scenario(copies=1, seed=5)
    expected = scenario.expected()
    assert expected.mismatches and expected.commands  # not an empty comparison

    stream_log = tmp_path / "stream.log"
    batch_settings, batch_topology = another_world(settings, tmp_path)
    batch_log = tmp_path / "batch.log"
    with ThreadPoolExecutor(2) as pool:  # two worlds of their own: judged side by side
        stream_run = pool.submit(judge, settings, topology, scenario, stream_log, "stream")
        batch_run = pool.submit(judge, batch_settings, batch_topology, scenario, batch_log,
                                "batch")
        streamed, batched = stream_run.result(), batch_run.result()

    assert TAP_RUNS not in stream_log.read_text(errors="replace"), "the tap ran, not the stream"
    assert TAP_RUNS in batch_log.read_text(errors="replace"), "the tap never ran"
    assert_same(streamed.normalized(), expected, f"stream worker log: {stream_log}")
    assert_no_duplicates(streamed, expected)
    assert_same(batched.normalized(), expected, f"batch worker log: {batch_log}")
    assert streamed.normalized() == batched.normalized()
    assert not streamed.dead_letters and not batched.dead_letters
