"""Fetching the broker's jars: processes that ask at once wait for a single Maven run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from streams.broker import LocalBroker


def test_concurrent_callers_fetch_the_jars_once(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fetches: list[float] = []

    def slow_fetch(self: LocalBroker) -> Path:
        fetches.append(time.monotonic())
        time.sleep(0.3)  # long enough for the other caller to be waiting on the lock
        self.jars_dir.mkdir(parents=True)
        (self.jars_dir / "kafka_2.13-test.jar").write_bytes(b"")
        return self.jars_dir

    monkeypatch.setattr(LocalBroker, "_fetch_jars", slow_fetch)
    jars = tmp_path / "home" / "kafka-test" / "lib"
    brokers = [LocalBroker(tmp_path / f"b{i}", jars_dir=jars) for i in range(3)]
    got: list[Path] = []
    threads = [threading.Thread(target=lambda b=b: got.append(b.ensure_jars()))
               for b in brokers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(fetches) == 1
    assert got == [jars, jars, jars]
