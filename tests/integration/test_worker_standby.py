"""Real-broker test: with two workers each keeps a warm standby of the other's table
partitions (listed by /health with the changelog offset applied); one is SIGKILLed, the
survivor takes its partitions over from the standby copy and ends with exactly the outputs
of a clean run."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from tests.integration.scenarios import mixed_scenario
from tests.integration.worker_support import (
    FAST_GROUP_ENV,
    Progress,
    WorkerProcess,
    assert_no_duplicates,
    assert_same,
    produce,
    read_outputs,
    running_worker,
    wait_until_judged,
)
from topology.topics import Topology

pytestmark = pytest.mark.integration

ENV = FAST_GROUP_ENV


def health(worker: WorkerProcess) -> dict[str, Any]:
    """The worker's /health document (whatever its status; {} while it cannot answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/health", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())  # type: ignore[no-any-return]
    except OSError:  # not listening yet
        return {}


def orders_standbys(doc: dict[str, Any]) -> set[int]:
    return {s["partition"] for s in doc.get("standbys", [])
            if s["table"] == "orders" and s["applied_offset"] is not None}


def wait_for_standbys(a: WorkerProcess, b: WorkerProcess, partitions: int,
                      timeout: float = 90.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Until both are ready, own every partition between them, and each keeps a standby of
    each partition the other owns."""
    deadline = time.monotonic() + timeout
    while True:
        assert a.alive() and b.alive(), f"{a.log_tail()}\n{b.log_tail()}"
        docs = health(a), health(b)
        owned = [set(d.get("partitions", [])) for d in docs]
        if (all(d.get("ready") for d in docs) and owned[0] | owned[1] == set(range(partitions))
                and owned[0] and owned[1] and orders_standbys(docs[0]) >= owned[1]
                and orders_standbys(docs[1]) >= owned[0]):
            return docs
        assert time.monotonic() < deadline, f"no standbys: {docs}"
        time.sleep(0.5)


def test_a_survivor_takes_over_from_its_warm_standby(settings: Settings, topology: Topology,
                                                     tmp_path: Path) -> None:
    scenario = mixed_scenario(1500, seed=41)
    lines = scenario.in_time_order()
    half = len(lines) // 2
    produce(settings, lines[:half])
    progress = Progress(settings, topology)
    try:
        with running_worker(settings, tmp_path / "a.log", extra_env=ENV) as a, \
                running_worker(settings, tmp_path / "b.log", extra_env=ENV) as b:
            wait_until_judged(a, progress)
            doc_a, _doc_b = wait_for_standbys(a, b, settings.partitions)
            taken = set(doc_a["partitions"])
            a.kill()
            produce(settings, lines[half:])  # the killed worker's partitions get new input
            wait_until_judged(b, progress)
            assert set(health(b)["partitions"]) == set(range(settings.partitions))
            assert taken and b.terminate() == 0, b.log_tail()
        assert progress.committed_inputs() == progress.input_total()
    finally:
        progress.close()
    outputs = read_outputs(settings, topology)
    assert_same(outputs.normalized(), scenario.expected(), f"logs: {tmp_path}")
    assert_no_duplicates(outputs)
