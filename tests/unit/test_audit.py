"""`crosscheck audit FILE` and streams.audit: batch rules over a file of events."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from schemas.catalog import schema
from streams.audit import output_line, output_record, read_event_file, summary
from streams.batch import evaluate
from streams.cli import sim_cmd
from streams.cli.main import cli
from streams.config import RULE_ENV, RuleConfig
from streams.export import json_line
from streams.model import Command, Mismatch
from streams.records import event_from_record, source_of
from streams.simulate import FAULTS, SimConfig, generate
from topology.topics import BY_ID, Topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

sim_cmd.register(cli)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*RULE_ENV.values(), "CROSSCHECK_PARTITIONS"]:
        monkeypatch.delenv(name, raising=False)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _write_traffic(path: Path, seed: int = 2, orders: int = 150) -> list[str]:
    events = generate(SimConfig(orders=orders, seed=seed, faults=dict.fromkeys(FAULTS, 0.04)))
    lines = [json_line(t, schema(BY_ID[t].value_schema), r) for t, r in events]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return lines


def _batch(path: Path, partitions: int = 4, until: int | None = None,
           rules: RuleConfig | None = None) -> list[Mismatch | Command]:
    read = read_event_file(str(path), Topology())
    return evaluate(read.events, rules or RuleConfig(), partitions=partitions, until=until,
                    clock=lambda: 0)


def test_audit_equals_batch_evaluate(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_traffic(path)
    result = _invoke("audit", str(path), "--no-wall-clock")
    assert result.exit_code == 0, result.output
    want = [output_line(o, wall_clock=False) for o in _batch(path)]
    assert want and result.stdout.splitlines() == want
    assert result.stderr.startswith("audit: ")
    assert summary(_batch(path)) in result.stderr


def test_audit_of_the_sample_is_its_expected_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = _invoke("audit", str(EXAMPLES / "sample-traffic.jsonl"), "--no-wall-clock",
                     "--partitions", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (EXAMPLES / "sample-expected.jsonl").read_bytes()


def test_audit_options_reach_the_evaluation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_traffic(path, seed=5)
    until = "2026-11-22T06:00:00.000Z"
    result = _invoke("audit", str(path), "--no-wall-clock", "--partitions", "2", "--until",
                     until, "--payment-timeout", "20m", "--tcc-grace", "30s")
    assert result.exit_code == 0, result.output
    rules = RuleConfig(payment_timeout=20 * 60_000, tcc_grace=30_000)
    want = _batch(path, partitions=2, until=1_795_327_200_000, rules=rules)
    assert result.stdout.splitlines() == [output_line(o, wall_clock=False) for o in want]
    # epoch millis work as well
    again = _invoke("audit", str(path), "--no-wall-clock", "--partitions", "2", "--until",
                    "1795327200000", "--payment-timeout", "20m", "--tcc-grace", "30s")
    assert again.stdout == result.stdout


def test_wall_clock_fields_by_default(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_traffic(path)
    result = _invoke("audit", str(path))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records
    for record in records:
        stamp = record["detected_at"] if "mismatch_id" in record and "status" in record \
            else record["issued_at"]
        assert ISO.match(stamp)
        assert ISO.match(record.get("decided_at", "2026-01-01T00:00:00.000Z"))


def test_bad_lines_are_reported_and_the_rest_audited(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    lines = _write_traffic(good, orders=40)
    mixed = tmp_path / "mixed.jsonl"
    bad = [
        '{"topic": "payments", "event": {"event_id": "x", "order_id": "o"}}',
        "not json",
        '{"topic": "nope", "event": {}}',
        '{"topic": "inventory", "event": {"event_id": "e", "order_id": "o", "type": "RESERVED",'
        ' "event_time": "2026-11-21T00:00:00Z", "reservation_id": "r", "sku": "s",'
        ' "quantity": 0}}',
    ]
    body = [bad[0], *lines[:10], bad[1], "", *lines[10:], bad[2], bad[3]]
    mixed.write_text("\n".join(body) + "\n", encoding="utf-8")
    result = _invoke("audit", str(mixed), "--no-wall-clock")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("audit:")]
    n = len(body)
    assert errors[0].startswith(f"{mixed}:1: event.type: is missing")
    assert errors[1].startswith(f"{mixed}:12: not valid JSON")
    assert errors[2].startswith(f"{mixed}:{n - 1}: topic: 'nope' is not an input topic")
    assert errors[3].startswith(f"{mixed}:{n}: event.quantity: must not be less than 1")
    assert len(errors) == 4
    assert "(4 bad lines)" in result.stderr
    # the good lines were audited as if alone
    assert result.stdout.splitlines() == [
        output_line(o, wall_clock=False) for o in _batch(good)]


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = _invoke("audit", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_output_records_use_contract_names() -> None:
    path = EXAMPLES / "sample-traffic.jsonl"
    outputs = _batch(path)
    mismatch = next(o for o in outputs if isinstance(o, Mismatch))
    command = next(o for o in outputs if isinstance(o, Command))
    assert list(output_record(mismatch)) == [
        "mismatch_id", "type", "status", "order_id", "subject_id", "severity", "decided_at",
        "detected_at", "evidence", "command_id", "details", "resolved_at", "resolved_by"]
    assert list(output_record(command, wall_clock=False)) == [
        "command_id", "type", "order_id", "target_id", "amount", "currency", "sku",
        "quantity", "payment_id", "mismatch_id"]
    assert ISO.match(output_record(mismatch)["decided_at"])


def test_read_event_file_converts_records() -> None:
    path = EXAMPLES / "sample-traffic.jsonl"
    read = read_event_file(str(path), Topology())
    assert not read.bad and read.lines == len(read.events)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert read.events[0].event_id == first["event"]["event_id"]
    topic = Topology().topic_id(first["topic"])
    assert read.events[0] == event_from_record(source_of(topic), {
        **first["event"], "event_time": read.events[0].event_time})
