"""`crosscheck chaos`: the time to ready after each SIGKILL, its median and max."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from streams.chaos import monitor as monitor_module
from streams.chaos.monitor import Monitor
from streams.chaos.recovery import ReadyTimes, ready_line


def test_a_kill_ends_at_the_first_ready_of_a_later_start_of_its_slot() -> None:
    ready = ReadyTimes()
    ready.killed("w1", 100.0, starts=1)
    ready.seen("w1", 100.5, starts=1)  # the killed start itself: not a recovery
    ready.seen("w2", 104.0, starts=2)  # another slot
    assert ready.doc()["seconds"] == [] and ready.doc()["not_ready"] == 1
    ready.seen("w1", 110.04, starts=2)
    ready.seen("w1", 111.0, starts=2)  # still ready: counted once
    ready.killed("w2", 120.0, starts=1)
    ready.seen("w2", 139.0, starts=2)
    ready.killed("w1", 150.0, starts=2)
    ready.seen("w1", 177.0, starts=3)
    ready.killed("w1", 200.0, starts=3)  # never back
    assert ready.doc() == {"kills": 4, "seconds": [10.0, 19.0, 27.0], "median_s": 19.0,
                           "max_s": 27.0, "not_ready": 1}


def test_the_median_of_an_even_count_and_no_kills() -> None:
    ready = ReadyTimes()
    for n, s in enumerate((10.0, 19.0, 27.0, 31.0)):
        ready.killed("w1", 0.0, starts=n)
        ready.seen("w1", s, starts=n + 1)
    assert ready.doc()["median_s"] == 23.0 and ready.doc()["max_s"] == 31.0
    assert ReadyTimes().doc() == {"kills": 0, "seconds": [], "median_s": None, "max_s": None,
                                  "not_ready": 0}


def test_the_report_line_gives_median_max_and_each_kill() -> None:
    assert ready_line({"kills": 4, "seconds": [10.0, 19.0, 27.0, 31.0], "median_s": 23.0,
                       "max_s": 31.0, "not_ready": 0}) == \
        "time to ready after a SIGKILL: median 23 s, max 31 s (4 kills: 10, 19, 27, 31 s)"
    assert ready_line({"kills": 2, "seconds": [12.0], "median_s": 12.0, "max_s": 12.0,
                       "not_ready": 1}).endswith("(2 kills: 12 s; 1 never ready again)")
    assert ready_line({"kills": 1, "seconds": [], "median_s": None, "max_s": None,
                       "not_ready": 1}) == \
        "time to ready after a SIGKILL: never ready (1 kills; 1 never ready again)"
    assert ready_line(ReadyTimes().doc()) == "time to ready after a SIGKILL: no kills"


def test_the_monitor_tells_of_every_ready_worker_with_its_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slots = [SimpleNamespace(name="w1", port=1, starts=2),
             SimpleNamespace(name="w2", port=2, starts=1)]
    supervisor = SimpleNamespace(alive=lambda: slots, elapsed=lambda: 1.0)
    offsets = SimpleNamespace(inputs=[], committed=lambda tps: {}, ends=lambda tps: {})
    monkeypatch.setattr(monitor_module, "health",
                        lambda port: "ready" if port == 1 else "recovering")
    ready = ReadyTimes()
    ready.killed("w1", 0.0, starts=1)
    ready.killed("w2", 0.0, starts=0)
    Monitor(cast(Any, offsets), cast(Any, supervisor), 30.0, ready=ready).sample()
    doc = ready.doc()
    assert len(doc["seconds"]) == 1 and doc["not_ready"] == 1  # w1 back, w2 recovering
