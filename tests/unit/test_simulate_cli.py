"""`crosscheck simulate`: files, expected output, options, and the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streams.audit import output_line
from streams.cli import sim_cmd
from streams.cli.main import cli
from streams.config import RULE_ENV, RuleConfig
from streams.rules.catalog import RULE_OF
from streams.simulate import SimConfig, expected_outputs, generate
from streams.simulate.faults import FAULTS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: How the bundled sample was made (regenerating it must give identical bytes).
SAMPLE_ARGS = ["--orders", "300", "--seed", "6", "--faults", "all=0.02", "--partitions", "4"]

sim_cmd.register(cli)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*RULE_ENV.values(), "CROSSCHECK_PARTITIONS"]:
        monkeypatch.delenv(name, raising=False)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sample_regenerates_byte_for_byte(tmp_path: Path) -> None:
    traffic, expected = tmp_path / "traffic.jsonl", tmp_path / "expected.jsonl"
    result = _invoke("simulate", *SAMPLE_ARGS, "--out", str(traffic), "--expected",
                     str(expected))
    assert result.exit_code == 0, result.output
    assert traffic.read_bytes() == (EXAMPLES / "sample-traffic.jsonl").read_bytes()
    assert expected.read_bytes() == (EXAMPLES / "sample-expected.jsonl").read_bytes()


def test_sample_is_small_and_covers_every_fault_twice() -> None:
    traffic = EXAMPLES / "sample-traffic.jsonl"
    assert traffic.stat().st_size < 1_500_000
    events = _lines(traffic)
    assert 2_000 <= len(events) <= 3_600
    opened: dict[str, set[object]] = {}
    for record in _lines(EXAMPLES / "sample-expected.jsonl"):
        if record.get("status") == "OPEN":
            opened.setdefault(str(record["type"]), set()).add(record["order_id"])
        assert "detected_at" not in record and "issued_at" not in record
    judged = {t.value for t in RULE_OF}  # the types the rule catalog decides
    for fault in FAULTS.values():
        if fault.type.value in judged:
            assert len(opened.get(fault.type.value, ())) >= 2, fault.name


def test_out_file_is_the_generator_output_in_produce_form(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    result = _invoke("simulate", "--orders", "60", "--seed", "3", "--faults", "all=0.05",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "simulated 60 orders (seed 3)" in result.stderr
    config = SimConfig(orders=60, seed=3, faults=dict.fromkeys(FAULTS, 0.05))
    events = generate(config)
    lines = _lines(out)
    assert [(line["topic"], line["event"]["event_id"]) for line in lines] == [
        (t.value, r["event_id"]) for t, r in events]
    # the expected file sits next to it, without wall-clock fields
    expected = (tmp_path / "t.expected.jsonl").read_text(encoding="utf-8").splitlines()
    want = [output_line(o, wall_clock=False) for o in expected_outputs(events, RuleConfig(), 4)]
    assert expected == want and want


def test_thresholds_and_partitions_shape_the_expected_output(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    result = _invoke("simulate", "--orders", "80", "--seed", "4", "--faults", "all=0.05",
                     "--payment-timeout", "5m", "--shipment-timeout", "2h", "--partitions", "2",
                     "--out", str(out), "--expected", str(tmp_path / "e.jsonl"))
    assert result.exit_code == 0, result.output
    rules = RuleConfig(payment_timeout=300_000, shipment_timeout=7_200_000)
    events = generate(SimConfig(orders=80, seed=4, faults=dict.fromkeys(FAULTS, 0.05),
                                rules=rules))
    want = [output_line(o, wall_clock=False) for o in expected_outputs(events, rules, 2)]
    assert (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines() == want


def test_start_option(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    result = _invoke("simulate", "--orders", "5", "--start", "2030-01-01T00:00:00Z",
                     "--span", "1h", "--out", str(out))
    assert result.exit_code == 0, result.output
    first = _lines(out)[0]["event"]
    assert isinstance(first, dict) and str(first["event_time"]).startswith("2030-01-01T0")


@pytest.mark.parametrize(("args", "message"), [
    (["--faults", "bogus=0.1"], "unknown fault 'bogus'"),
    (["--faults", "all=0.5"], "more than 1"),
    (["--rate", "100"], "--rate"),
    (["--start", "tomorrow"], "--start"),
    (["--span", "soon"], "--span"),
])
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = _invoke("simulate", "--orders", "5", "--out", str(tmp_path / "t.jsonl"), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_help_lists_every_fault() -> None:
    result = _invoke("simulate", "--help")
    assert result.exit_code == 0
    for name, fault in FAULTS.items():
        assert name in result.output and fault.type.value in result.output


def test_rate_paces() -> None:
    import time

    started = time.monotonic()
    assert list(sim_cmd._paced(range(6), 200.0)) == list(range(6))
    assert time.monotonic() - started >= 5 / 200 * 0.9
    assert list(sim_cmd._paced(range(3), 0)) == [0, 1, 2]
