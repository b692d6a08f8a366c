"""How the worker consumes and commits: --consume, --commit-interval and their defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_security_rules import _worker_options

from streams.config import Settings
from streams.worker import tap
from streams.worker.app import create_worker
from streams.worker.faust_app import WorkerOptions, commit_interval_for
from topology.topics import TopicId


def test_the_command_line_and_environment_choose_consume_and_commit_interval(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = {"CROSSCHECK_HOME": str(tmp_path)}
    options, _ = _worker_options(monkeypatch, env=home)
    assert (options.consume, options.commit_interval) == ("batch", None)
    options, _ = _worker_options(monkeypatch, "--consume", "stream", "--commit-interval", "0.5",
                                 env=home)
    assert (options.consume, options.commit_interval) == ("stream", 0.5)
    options, _ = _worker_options(monkeypatch, env={**home, "CROSSCHECK_WORKER_CONSUME": "stream",
                                                   "CROSSCHECK_COMMIT_INTERVAL": "1.5"})
    assert (options.consume, options.commit_interval) == ("stream", 1.5)
    options, output = _worker_options(monkeypatch, "--consume", "fast", env=home)
    assert options is None and "--consume" in output


def test_commits_every_100_ms_under_exactly_once_and_faust_s_2_8_s_otherwise(
        tmp_path: Path) -> None:
    outputs = dict.fromkeys(TopicId, 1)
    eos = create_worker(Settings(), WorkerOptions(tmp_path / "a", 16080, 1, outputs))
    assert eos.app.conf.broker_commit_interval == 0.1 == commit_interval_for("exactly_once")
    alo = create_worker(dataclasses.replace(Settings(), processing_guarantee="at_least_once"),
                        WorkerOptions(tmp_path / "b", 16081, 1, outputs))
    assert alo.app.conf.broker_commit_interval == 2.8
    chosen = create_worker(Settings(), WorkerOptions(tmp_path / "c", 16082, 1, outputs,
                                                     commit_interval=0.5))
    assert chosen.app.conf.broker_commit_interval == 0.5


def test_batch_consume_installs_the_tap_over_the_judged_topics_and_stream_does_not(
        tmp_path: Path) -> None:
    outputs = dict.fromkeys(TopicId, 1)
    batch = create_worker(Settings(), WorkerOptions(tmp_path / "a", 16083, 1, outputs))
    installed = getattr(batch.app, tap.TAP_ATTRIBUTE)
    assert isinstance(installed, tap.BatchTap)
    assert installed.topics == frozenset(batch.topology.name(t) for t in (
        TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY, TopicId.SHIPPING, TopicId.TICKS))
    stream = create_worker(Settings(), WorkerOptions(tmp_path / "b", 16084, 1, outputs,
                                                     consume="stream"))
    assert getattr(stream.app, tap.TAP_ATTRIBUTE, None) is None
