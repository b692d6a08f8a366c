"""`crosscheck rules` and `--rules FILE`: the effective table, and a bad file stopping every
command that judges before it does anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streams.cli import bench_cmd, chaos_cmd, replay_cmd, rules_cmd, sim_cmd, worker_cmd
from streams.cli.main import cli
from streams.cli.rule_options import describe_rules
from streams.config import RULE_ENV, RuleConfig, load_settings
from streams.rulebook import RULEBOOK

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.toml"

for _module in (bench_cmd, chaos_cmd, replay_cmd, rules_cmd, sim_cmd, worker_cmd):
    _module.register(cli)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*RULE_ENV.values(), "CROSSCHECK_RULES_FILE", "CROSSCHECK_COMMANDS",
                 "CROSSCHECK_TOPIC_PREFIX", "CROSSCHECK_TOPICS"]:
        monkeypatch.delenv(name, raising=False)
    # a command that got past its settings would find no broker here, and say so
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("CROSSCHECK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _table(result: Result) -> dict[str, list[str]]:
    """type -> its cells (split on runs of two spaces)."""
    rows = {}
    for line in result.stdout.splitlines()[2:-1]:
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        rows[cells[0]] = cells
    return rows


def test_the_default_table_lists_the_fifteen_rules_live() -> None:
    result = _invoke("rules")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("no rules file (the defaults); version ")
    assert lines[1].split() == ["type", "on", "reads", "D", "severity", "command", "mode"]
    rows = _table(result)
    assert list(rows) == [r.type for r in RULEBOOK]
    assert rows["PAYMENT_NOT_APPLIED"] == [
        "PAYMENT_NOT_APPLIED", "yes", "P, O",
        "max(SUCCEEDED of p, PLACED) + 5m (callback_timeout)", "HIGH", "MARK_ORDER_PAID order",
        "live"]
    assert rows["DUPLICATE_PAYMENT"][3:] == ["SUCCEEDED of p", "CRITICAL", "REFUND_PAYMENT p",
                                             "live"]
    assert rows["AMOUNT_MISMATCH"][-2:] == ["none", "-"]
    assert "crosscheck.commands.shadow" in lines[-1]


def test_the_table_of_a_file_and_options() -> None:
    result = _invoke("rules", "--rules", str(EXAMPLE), "--release-timeout", "12m")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(f"rules file {EXAMPLE}; version ")
    rows = _table(result)
    assert rows["PAYMENT_NOT_APPLIED"][1] == "no" and rows["PAYMENT_NOT_APPLIED"][-1] == "-"
    assert rows["DUPLICATE_PAYMENT"][-1] == "live"
    assert rows["TCC_HANGING"][-1] == "shadow"
    assert rows["PAID_NOT_SHIPPED"][-1] == "off"
    assert rows["RESERVATION_WITHOUT_PAYMENT"][3:5] == [
        "first RESERVED/CONFIRMED of r + 20m (payment_timeout)", "MEDIUM"]
    assert rows["CANCELLED_BUT_CHARGED"][3] == \
        "max(CANCELLED, SUCCEEDED of p) + 30m (release_timeout)"
    assert rows["REFUND_WITHOUT_RELEASE"][3] == "REFUNDED of p + 12m (release_timeout)"


def test_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSCHECK_RULES_FILE", str(EXAMPLE))
    result = _invoke("rules", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["rules_file"] == str(EXAMPLE) and doc["commands"] == "shadow"
    assert doc["thresholds_ms"]["callback_timeout"] == 300_000
    by_type = {r["type"]: r for r in doc["rules"]}
    assert len(by_type) == 15
    assert by_type["CANCELLED_BUT_CHARGED"] == {
        "type": "CANCELLED_BUT_CHARGED", "enabled": True, "reads": "O, P",
        "inputs": ["orders", "payments"],
        "decision_time": "max(CANCELLED, SUCCEEDED of p) + 30m (release_timeout)",
        "threshold": "release_timeout", "threshold_ms": 1_800_000, "severity": "CRITICAL",
        "default_severity": "CRITICAL", "command": "REFUND_PAYMENT", "target": "p",
        "mode": "shadow", "needs_paid": False}
    assert by_type["PAID_WITHOUT_PAYMENT"]["mode"] is None
    assert by_type["PAID_WITHOUT_PAYMENT"]["needs_paid"] is True
    assert doc["version"] != RuleConfig().version


def test_the_start_line_of_a_worker_says_what_the_file_changes() -> None:
    settings = load_settings({}, EXAMPLE)
    line = describe_rules(settings)
    assert line.startswith("allowed_lateness=1m, ")
    assert "payment_timeout=20m, " in line and "callback_timeout=5m" in line
    assert line.endswith(
        "; commands shadow; CANCELLED_BUT_CHARGED release_timeout=30m; DUPLICATE_PAYMENT "
        "commands live; PAID_NOT_SHIPPED commands off; PAID_WITHOUT_PAYMENT disabled; "
        "PAYMENT_NOT_APPLIED disabled; RESERVATION_WITHOUT_PAYMENT severity MEDIUM; rules "
        f"file {EXAMPLE}; version {settings.rules.version}")
    assert describe_rules(load_settings({})).endswith(
        f"; commands live; version {RuleConfig().version}")


BAD = '[defaults]\ncommands = "live"\n\n[rules.DUPLICATE_PAYMENT]\nseverity = "URGENT"\n'


@pytest.mark.parametrize("args", [
    ["rules"],
    ["audit", "events.jsonl", "--out", "out.jsonl"],
    ["simulate", "--orders", "3", "--out", "sim.jsonl"],
    ["replay", "--from", "2026-11-21T00:00:00Z", "--to", "2026-11-22T00:00:00Z",
     "--out", "replay"],
    ["worker", "--web-port", "1"],
    ["bench", "--out", "bench.json"],
    ["soak", "--out", "soak.json"],
    ["chaos"],
])
def test_a_bad_rules_file_stops_every_command_that_judges(tmp_path: Path,
                                                          args: list[str]) -> None:
    (tmp_path / "events.jsonl").write_text("", encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _invoke(*args, "--rules", str(bad))
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"crosscheck: error: {bad}:5: [rules.DUPLICATE_PAYMENT] "
                             "severity: 'URGENT' is not one of CRITICAL, HIGH, MEDIUM, LOW\n")
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing ran


def test_the_variable_s_bad_file_stops_them_too(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.NOPE]\n", encoding="utf-8")
    monkeypatch.setenv("CROSSCHECK_RULES_FILE", str(bad))
    result = _invoke("audit", "events.jsonl")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"crosscheck: error: {bad}:1: unknown rule 'NOPE'")
    result = _invoke("rules", "--rules", str(EXAMPLE))  # the option replaces the variable
    assert result.exit_code == 0, result.output
