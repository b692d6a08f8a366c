"""Commands decided in shadow mode: where each sink sends them (the shadow topic or file, never
the command topic), how they are counted, and what the record keeps of the mark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from builders import BlobStore
from click.testing import CliRunner

from schemas.codec import Codec
from streams.audit import shadow_path, split_shadow, summary
from streams.cli import sim_cmd
from streams.cli.main import cli
from streams.config import RULE_ENV, RuleConfig
from streams.metrics.tracker import WindowTracker
from streams.metrics.windows import PartitionWindows
from streams.model import Command, CommandType, Mismatch, MismatchType, Severity, Status
from streams.records import command_record
from streams.replay.sinks import (
    COMMANDS_FILE,
    COMMANDS_SHADOW_FILE,
    MISMATCHES_FILE,
    FileSink,
    KafkaSink,
)
from streams.worker.echo import describe
from streams.worker.runtime import Runtime
from topology.topics import TopicId, Topology

sim_cmd.register(cli)

MISMATCH = Mismatch("m1", MismatchType.DUPLICATE_PAYMENT, Status.OPEN, "o1", "p2",
                    Severity.CRITICAL, 1000, 0, ("e1",), "c1", {})
LIVE = Command("c1", CommandType.REFUND_PAYMENT, "o1", "p2", "m1", 5, amount=300,
               currency="CNY")
SHADOW = msgspec.structs.replace(LIVE, command_id="c2", target_id="p3", shadow=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*RULE_ENV.values(), "CROSSCHECK_PARTITIONS", "CROSSCHECK_RULES_FILE",
                 "CROSSCHECK_COMMANDS"]:
        monkeypatch.delenv(name, raising=False)


def test_the_mark_is_not_part_of_the_record_and_old_commands_read_as_live() -> None:
    assert command_record(SHADOW) == command_record(
        msgspec.structs.replace(SHADOW, shadow=False))
    assert "shadow" not in command_record(SHADOW)
    old = msgspec.msgpack.encode({k: v for k, v in msgspec.structs.asdict(LIVE).items()
                                  if k != "shadow"})
    assert msgspec.msgpack.decode(old, type=Command) == LIVE
    kept = msgspec.msgpack.decode(msgspec.msgpack.encode(SHADOW), type=Command)
    assert kept.shadow and kept == SHADOW


def test_the_worker_sends_a_shadow_command_to_the_shadow_topic() -> None:
    store = BlobStore()
    topology = Topology(1, "x.", {"commands.shadow": "shadow.v1"})
    rt = Runtime(RuleConfig(), topology, Codec(), lambda p: store, dict.fromkeys(TopicId, 3),
                 1, "w1", clock=lambda: 1000)
    live, shadow = rt._emit(LIVE), rt._emit(SHADOW)
    assert (live.topic, live.name) == (TopicId.COMMANDS, "x.crosscheck.commands")
    assert (shadow.topic, shadow.name) == (TopicId.COMMANDS_SHADOW, "shadow.v1")
    assert shadow.partition == live.partition and shadow.key == live.key == b"o1"
    _, record = rt.codec.decode(shadow.value)
    assert record["command_id"] == "c2" and record["target_id"] == "p3"
    assert dict(rt.counters.commands) == {"REFUND_PAYMENT": 1}
    assert dict(rt.counters.shadow_commands) == {"REFUND_PAYMENT": 1}


def test_a_shadow_command_is_not_counted_as_issued_in_the_metrics() -> None:
    tracker, state = WindowTracker(60_000, 10), PartitionWindows()
    tracker.on_outputs(state, [MISMATCH, LIVE, SHADOW])
    (window,) = state.open.values()
    assert window.commands_issued == {"REFUND_PAYMENT": 1}
    assert window.mismatches_opened == {"DUPLICATE_PAYMENT": 1}


def test_echo_says_shadow() -> None:
    assert describe(LIVE).startswith("COMMAND  REFUND_PAYMENT")
    assert describe(SHADOW).startswith("SHADOW   REFUND_PAYMENT")


def test_replay_files_keep_shadow_commands_apart(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    sink.write([MISMATCH, LIVE, SHADOW])
    lines = {name: (tmp_path / name).read_text().splitlines()
             for name in (MISMATCHES_FILE, COMMANDS_FILE, COMMANDS_SHADOW_FILE)}
    assert [json.loads(x)["command_id"] for x in lines[COMMANDS_FILE]] == ["c1"]
    assert [json.loads(x)["command_id"] for x in lines[COMMANDS_SHADOW_FILE]] == ["c2"]
    assert len(lines[MISMATCHES_FILE]) == 1
    sizes = sink.sizes()
    sink.write([SHADOW])
    sink.cut_back(sizes)
    assert sink.sizes() == sizes
    sink.cut_back({})  # a checkpoint written before the shadow file existed
    assert sink.sizes()[COMMANDS_SHADOW_FILE] == 0


def test_replay_topics_keep_shadow_commands_apart() -> None:
    sink: Any = KafkaSink.__new__(KafkaSink)  # (only the routing: no producer)
    sink._mismatches = ("bf.m", 4)
    sink._commands = [("bf.c", 4), ("live.c", 4)]
    sink._shadow = [("bf.c.shadow", 4), ("live.c.shadow", 4)]
    assert sink._targets(MISMATCH) == [("bf.m", 4)]
    assert sink._targets(LIVE) == [("bf.c", 4), ("live.c", 4)]
    assert sink._targets(SHADOW) == [("bf.c.shadow", 4), ("live.c.shadow", 4)]


def test_split_and_summary() -> None:
    kept, shadow = split_shadow([MISMATCH, SHADOW, LIVE])
    assert kept == [MISMATCH, LIVE] and shadow == [SHADOW]
    assert summary([MISMATCH, LIVE]).endswith("1 commands (REFUND_PAYMENT=1)")
    assert summary([MISMATCH, LIVE, SHADOW]).endswith(
        "1 commands (REFUND_PAYMENT=1), 1 shadow commands (REFUND_PAYMENT=1)")
    assert shadow_path("out/audit.jsonl", "d") == "out/audit.shadow.jsonl"
    assert shadow_path("x.json", "d") == "x.shadow.jsonl"
    assert shadow_path("x", "d") == "x.shadow.jsonl"
    assert shadow_path("-", "d") == "d"


def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[Any],
           *args: str) -> Any:
    import streams.batch

    monkeypatch.setattr(streams.batch, "evaluate", lambda *a, **k: outputs)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.jsonl").write_text("", encoding="utf-8")
    return CliRunner().invoke(cli, ["audit", "events.jsonl", "--no-wall-clock", *args],
                              catch_exceptions=False)


def test_audit_writes_shadow_commands_to_their_own_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    result = _audit(tmp_path, monkeypatch, [MISMATCH, LIVE, SHADOW], "--out", "a.jsonl")
    assert result.exit_code == 0, result.output
    main = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    shadow = [json.loads(x) for x in (tmp_path / "a.shadow.jsonl").read_text().splitlines()]
    assert [r.get("command_id") for r in main] == ["c1", "c1"]  # the mismatch, its command
    assert [r["command_id"] for r in shadow] == ["c2"] and "shadow" not in shadow[0]
    assert "shadow commands -> a.shadow.jsonl" in result.stderr

    result = _audit(tmp_path, monkeypatch, [SHADOW], "--shadow-out", "s.jsonl")
    assert result.exit_code == 0 and result.stdout == ""  # (stdout: no shadow command)
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 1


def test_audit_writes_an_empty_shadow_file_only_when_a_rule_is_in_shadow_mode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _audit(tmp_path, monkeypatch, [MISMATCH, LIVE])
    assert result.exit_code == 0 and not (tmp_path / "audit.shadow.jsonl").exists()
    monkeypatch.setenv("CROSSCHECK_COMMANDS", "shadow")
    result = _audit(tmp_path, monkeypatch, [MISMATCH])
    assert result.exit_code == 0
    assert (tmp_path / "audit.shadow.jsonl").read_text() == ""


def test_simulate_writes_expected_shadow_commands_next_to_the_expected_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.simulate

    monkeypatch.setattr(streams.simulate, "expected_outputs",
                        lambda *a, **k: [MISMATCH, LIVE, SHADOW])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["simulate", "--orders", "2", "--out", "t.jsonl"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = (tmp_path / "t.expected.jsonl").read_text().splitlines()
    shadow = (tmp_path / "t.expected.shadow.jsonl").read_text().splitlines()
    assert [json.loads(x)["mismatch_id"] for x in expected] == ["m1", "m1"]
    assert [json.loads(x)["command_id"] for x in shadow] == ["c2"]
    assert "-> t.expected.jsonl and t.expected.shadow.jsonl" in result.stderr


def test_the_reference_and_the_chaos_verdict_judge_shadow_commands_on_their_topic() -> None:
    from streams.chaos.report import judge_outputs, verdict
    from streams.verify import expected_records

    expected = expected_records([MISMATCH, LIVE, SHADOW])
    assert [c["command_id"] for c in expected.commands] == ["c1"]
    assert [c["command_id"] for c in expected.shadow_commands] == ["c2"]
    live = command_record(LIVE)
    shadow = command_record(SHADOW)
    mismatch = expected.mismatches[0] | {"detected_at": 9}
    right = {TopicId.MISMATCHES: [mismatch], TopicId.COMMANDS: [live],
             TopicId.COMMANDS_SHADOW: [shadow], TopicId.DLQ: []}
    assert verdict(judge_outputs(right, expected, {})) == (True, [])
    wrong = right | {TopicId.COMMANDS: [live, shadow], TopicId.COMMANDS_SHADOW: []}
    ok, why = verdict(judge_outputs(wrong, expected, {}))
    assert not ok and why == ["commands: 1 extra", "shadow commands: 1 lost"]
