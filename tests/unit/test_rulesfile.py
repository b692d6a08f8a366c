"""The rules file: what it sets, how it merges with the environment, and every refusal with
its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench.procs import env_for
from streams.config import RuleConfig, load_settings
from streams.errors import ConfigError
from streams.model import Severity
from streams.rulebook import (
    BY_TYPE,
    RULEBOOK,
    THRESHOLDS,
    CommandMode,
    RuleSetting,
    issue_as,
)
from streams.rulesfile import RulesFileError, load_rules_file, parse_rules
from streams.toml_lines import KeyLines

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.toml"
CM = CommandMode


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(tmp_path: Path, text: str) -> RulesFileError:
    path = _write(tmp_path, text)
    with pytest.raises(RulesFileError) as info:
        load_settings({}, path)
    return info.value


# -- what a file sets ----------------------------------------------------------------------


def test_the_example_file() -> None:
    rules = load_settings({}, EXAMPLE).rules
    assert rules.commands is CM.SHADOW
    assert rules.payment_timeout == 20 * 60_000
    assert not rules.enabled("PAYMENT_NOT_APPLIED") and not rules.enabled("PAID_WITHOUT_PAYMENT")
    assert rules.enabled("DUPLICATE_PAYMENT")
    assert rules.mode_of("DUPLICATE_PAYMENT") is CM.LIVE
    assert rules.mode_of("PAID_NOT_SHIPPED") is CM.OFF
    assert rules.mode_of("REFUND_WITHOUT_RELEASE") is CM.SHADOW
    assert rules.delay_of("CANCELLED_BUT_CHARGED") == 30 * 60_000
    assert rules.delay_of("CANCELLED_BUT_RESERVED") == rules.release_timeout == 10 * 60_000
    assert rules.severity_of("RESERVATION_WITHOUT_PAYMENT", Severity.LOW) is Severity.MEDIUM
    assert rules.severity_of("TCC_HANGING", Severity.MEDIUM) is Severity.MEDIUM
    assert "DUPLICATE_PAYMENT" not in rules.shadowed
    assert "PAYMENT_NOT_APPLIED" not in rules.shadowed  # (off: it commands nothing)
    assert "CANCELLED_BUT_CHARGED" in rules.shadowed


def test_without_a_file_every_rule_is_on_live_with_the_contract_s_values() -> None:
    rules = RuleConfig()
    assert load_settings({}).rules == rules and load_settings({}).rules_file is None
    for info in RULEBOOK:
        assert rules.enabled(info.type)
        assert rules.mode_of(info.type) is CM.LIVE
        assert rules.severity_of(info.type, info.severity) is info.severity
        want = 0 if info.threshold is None else THRESHOLDS[info.threshold]
        assert rules.delay_of(info.type) == want
    assert {name: getattr(rules, name) for name in THRESHOLDS} == THRESHOLDS
    assert rules.callback_timeout == 5 * 60_000
    assert rules.horizon == 24 * 3_600_000
    assert rules.shadowed == ()


def test_the_rulebook_agrees_with_the_catalog() -> None:
    from streams.rules.catalog import RULES

    assert len(RULEBOOK) == 15 and len(BY_TYPE) == 15
    letters = {"orders": "O", "payments": "P", "inventory": "I", "shipping": "S"}
    for spec in RULES.values():
        info = BY_TYPE[spec.type.value]
        assert info.severity is spec.severity
        assert info.command == (spec.command.value if spec.command else None)
        assert set(info.reads.split(", ")) == {letters[s.value] for s in spec.reads}


def test_a_rule_s_own_threshold_is_its_alone_and_the_horizon_counts_it(tmp_path: Path) -> None:
    path = _write(tmp_path, '[rules.PAID_WITHOUT_PAYMENT]\npayment_grace = "3d"\n')
    rules = load_settings({}, path).rules
    assert rules.delay_of("PAID_WITHOUT_PAYMENT") == 3 * 86_400_000
    assert rules.delay_of("SHIPPED_WITHOUT_PAYMENT") == rules.payment_grace == 120_000
    assert rules.horizon == 3 * 86_400_000


def test_empty_tables_and_an_empty_file_change_nothing(tmp_path: Path) -> None:
    for text in ("", "# nothing\n", "[defaults]\n[rules]\n[rules.TCC_HANGING]\n"):
        assert load_settings({}, _write(tmp_path, text)).rules == RuleConfig()


def test_inline_and_dotted_tables_are_the_same_settings() -> None:
    a = parse_rules('[rules.TCC_HANGING]\ncommands = "off"\nseverity = "low"\n', "a")
    b = parse_rules('rules.TCC_HANGING = { commands = "OFF", severity = "LOW" }\n', "b")
    c = parse_rules('[rules]\nTCC_HANGING.commands = "off"\nTCC_HANGING.severity = "LOW"\n',
                    "c")
    want = (RuleSetting("TCC_HANGING", severity=Severity.LOW, commands=CM.OFF),)
    assert a.per_rule == b.per_rule == c.per_rule == want


# -- precedence -------------------------------------------------------------------------------


def test_environment_replaces_the_file_s_globals_not_a_rule_s_own(tmp_path: Path) -> None:
    path = _write(tmp_path, '[defaults]\nrelease_timeout = "20m"\ncommands = "shadow"\n'
                            '[rules.CANCELLED_BUT_CHARGED]\nrelease_timeout = "30m"\n'
                            '[rules.DUPLICATE_PAYMENT]\ncommands = "live"\n')
    rules = load_settings({"CROSSCHECK_RELEASE_TIMEOUT": "15m", "CROSSCHECK_COMMANDS": "off"},
                          path).rules
    assert rules.release_timeout == rules.delay_of("REFUND_WITHOUT_RELEASE") == 15 * 60_000
    assert rules.delay_of("CANCELLED_BUT_CHARGED") == 30 * 60_000
    assert rules.commands is CM.OFF and rules.mode_of("TCC_HANGING") is CM.OFF
    assert rules.mode_of("DUPLICATE_PAYMENT") is CM.LIVE
    file_only = load_settings({}, path).rules
    assert file_only.release_timeout == 20 * 60_000 and file_only.commands is CM.SHADOW


def test_the_file_comes_from_the_variable_unless_given(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.NOPE]\n", encoding="utf-8")
    good = tmp_path / "good.toml"
    good.write_text('[defaults]\ncommands = "shadow"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml:1: unknown rule 'NOPE'"):
        load_settings({"CROSSCHECK_RULES_FILE": str(bad)})
    s = load_settings({"CROSSCHECK_RULES_FILE": str(bad)}, good)
    assert s.rules.commands is CM.SHADOW and s.rules_file == good.resolve()
    assert load_settings({"CROSSCHECK_RULES_FILE": str(good)}).rules_file == good.resolve()


def test_crosscheck_commands_alone_changes_every_rule() -> None:
    rules = load_settings({"CROSSCHECK_COMMANDS": "Shadow"}).rules
    assert rules.commands is CM.SHADOW
    assert rules.shadowed == tuple(i.type for i in RULEBOOK if i.command)
    with pytest.raises(ConfigError, match=r"^CROSSCHECK_COMMANDS: 'dry-run' is not live, "
                                          r"shadow or off$"):
        load_settings({"CROSSCHECK_COMMANDS": "dry-run"})


def test_a_subprocess_gets_exactly_the_same_rules(tmp_path: Path) -> None:
    path = _write(tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    s = load_settings({"CROSSCHECK_TCC_GRACE": "7s"}, path).with_rules(payment_timeout=1_000)
    child = load_settings(env_for(s))
    assert child.rules == s.rules and child.rules_file == s.rules_file
    plain = load_settings({})
    assert load_settings({**env_for(plain), "CROSSCHECK_RULES_FILE": ""}).rules == plain.rules
    assert "CROSSCHECK_RULES_FILE" not in env_for(plain)


def test_the_version_follows_what_the_rules_do_not_where_they_came_from(tmp_path: Path) -> None:
    base = RuleConfig()
    same = load_settings({}, _write(tmp_path, '[defaults]\ncommands = "live"\n'
                                              'payment_timeout = "15m"\n')).rules
    assert same.version == base.version and len(base.version) == 12
    changed = [
        RuleConfig(payment_timeout=1),
        RuleConfig(commands=CM.SHADOW),
        RuleConfig(per_rule=(RuleSetting("TCC_HANGING", enabled=False),)),
        RuleConfig(per_rule=(RuleSetting("TCC_HANGING", severity=Severity.LOW),)),
        RuleConfig(per_rule=(RuleSetting("CANCELLED_BUT_SHIPPED", threshold=1),)),
    ]
    assert len({base.version, *(r.version for r in changed)}) == len(changed) + 1
    # a threshold no rule's D uses differently, or a rule without a command: no change
    assert RuleConfig(idle_timeout=1).version == base.version
    assert RuleConfig(per_rule=(RuleSetting("AMOUNT_MISMATCH"),)).version == base.version


def test_which_rules_decide_earlier_than_before() -> None:
    old = RuleConfig(release_timeout=20 * 60_000).delays
    new = RuleConfig(per_rule=(RuleSetting("CANCELLED_BUT_CHARGED", threshold=30 * 60_000),
                               RuleSetting("TCC_HANGING", enabled=False)))
    assert new.earlier_than(old) == {"REFUND_WITHOUT_RELEASE": 10 * 60_000,
                                     "CANCELLED_BUT_RESERVED": 10 * 60_000}
    assert RuleConfig().earlier_than(RuleConfig().delays) == {}
    assert RuleConfig().earlier_than({"GONE": 5, "TCC_GRACE": 1}) == {}


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "reason"), [
    ('[rules.DUPLICATE_PAYMENTS]\nenabled = false\n', 1,
     "unknown rule 'DUPLICATE_PAYMENTS' (did you mean DUPLICATE_PAYMENT?)"),
    ('[rules.XYZ]\n', 1, "unknown rule 'XYZ' (`crosscheck rules` lists the fifteen)"),
    ('[defaults]\n\npayment_timeot = "1m"\n', 3,
     "unknown key 'payment_timeot' in [defaults] (did you mean payment_timeout?)"),
    ('[rules.TCC_HANGING]\nenable = true\n', 2,
     "unknown key 'enable' in [rules.TCC_HANGING] (did you mean enabled?)"),
    ('version = 2\n', 1, "unknown key 'version' at the top level (known: defaults, rules)"),
    ('[rules.AMOUNT_MISMATCH]\nenabled = "no"\n', 2,
     "[rules.AMOUNT_MISMATCH] enabled: expected true or false, got string 'no'"),
    ('[defaults]\ntcc_grace = 60\n', 2,
     '[defaults] tcc_grace: expected a duration string such as "15m", got integer 60'),
    ('[rules.TCC_HANGING]\nseverity = 3\n', 2,
     "[rules.TCC_HANGING] severity: expected one of CRITICAL, HIGH, MEDIUM, LOW, got "
     "integer 3"),
    ('[defaults]\ncommands = true\n', 2,
     '[defaults] commands: expected "live", "shadow" or "off", got boolean True'),
    ('rules = 1\n', 1, "rules: expected a table, got integer 1"),
    ('[rules]\nTCC_HANGING = "off"\n', 2,
     "[rules.TCC_HANGING]: expected a table, got string 'off'"),
    ('[defaults]\nrelease_timeout = "-5m"\n', 2,
     "[defaults] release_timeout: '-5m' is negative; a duration is 0 or more"),
    ('[rules.CANCELLED_BUT_CHARGED]\nrelease_timeout = " -1s"\n', 2,
     "[rules.CANCELLED_BUT_CHARGED] release_timeout: ' -1s' is negative; a duration is 0 or "
     "more"),
    ('[defaults]\nshipment_timeout = "1 day"\n', 2,
     "[defaults] shipment_timeout: '1 day' is not a duration (examples: 500ms, 60s, 15m, 24h)"),
    ('[defaults]\ncommands = "maybe"\n', 2,
     "[defaults] commands: 'maybe' is not live, shadow or off"),
    ('[rules.DUPLICATE_PAYMENT]\ncommands = "dry-run"\n', 2,
     "[rules.DUPLICATE_PAYMENT] commands: 'dry-run' is not live, shadow or off"),
    ('[rules.DUPLICATE_PAYMENT]\nseverity = "URGENT"\n', 2,
     "[rules.DUPLICATE_PAYMENT] severity: 'URGENT' is not one of CRITICAL, HIGH, MEDIUM, LOW"),
    ('[rules.AMOUNT_MISMATCH]\ncommands = "live"\n', 2,
     "[rules.AMOUNT_MISMATCH] commands: AMOUNT_MISMATCH issues no command, so it has no "
     "command mode"),
    ('[rules.DUPLICATE_PAYMENT]\npayment_grace = "1m"\n', 2,
     "[rules.DUPLICATE_PAYMENT] payment_grace: DUPLICATE_PAYMENT does not use payment_grace "
     "(its decision time is its trigger)"),
    ('[rules.CANCELLED_BUT_SHIPPED]\nrelease_timeout = "1m"\n', 2,
     "[rules.CANCELLED_BUT_SHIPPED] release_timeout: CANCELLED_BUT_SHIPPED does not use "
     "release_timeout (its decision time adds payment_grace)"),
    ('[defaults]\ncommands = "live"\n[rules\n', 3,
     "TOML syntax: Expected ']' at the end of a table declaration (column 7)"),
    ('[defaults]\ncommands = "live\n', 2, "TOML syntax: Illegal character '\\n' (column 17)"),
    ('[defaults]\ncommands = "live"\ncommands = "off"\n', 3,
     "TOML syntax: Cannot overwrite a value (column 17)"),
    ('[rules.TCC_HANGING]\nenabled = false\n[rules.TCC_HANGING]\n', 3,
     "TOML syntax: Cannot declare ('rules', 'TCC_HANGING') twice (column 19)"),
])
def test_a_bad_file_is_refused_with_its_line_and_reason(tmp_path: Path, text: str, line: int,
                                                         reason: str) -> None:
    error = _refusal(tmp_path, text)
    path = tmp_path / "rules.toml"
    assert str(error) == f"{path}:{line}: {reason}"
    assert error.name == str(path)


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    error = _refusal(tmp_path, '[rules.TCC_HANGING]\nenable = true\n'
                               '[defaults]\ncommands = "maybe"\nx = 1\n'
                               '[rules.NOPE]\n')
    assert [(p.line, p.reason.split(" ")[0]) for p in error.problems] == [
        (2, "unknown"), (4, "[defaults]"), (5, "unknown"), (6, "unknown")]
    assert len(str(error).splitlines()) == 4


def test_a_missing_or_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such rules file$"):
        load_settings({}, tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[defaults]\n")
    with pytest.raises(ConfigError, match=r"binary\.toml: cannot be read \("):
        load_rules_file(binary)


def test_key_lines_follow_tables_dotted_keys_and_skip_multi_line_values() -> None:
    lines = KeyLines('# c\n[defaults]\na = [\n  "x = 1",\n  2,\n]\nb = """\nc = 2\n"""\n'
                     'd.e = 3\n[ rules . "T" ]\nf = { g = 1 }\n[[arr]]\nh = 1\n')
    assert lines.line_of(("defaults",)) == 2
    assert lines.line_of(("defaults", "a")) == 3
    assert lines.line_of(("defaults", "x")) == 2  # (not a key: inside the array)
    assert lines.line_of(("defaults", "b")) == 7
    assert lines.line_of(("defaults", "c")) == 2  # (inside the string)
    assert lines.line_of(("defaults", "d", "e")) == 10
    assert lines.line_of(("defaults", "d")) == 10
    assert lines.line_of(("rules", "T")) == 11
    assert lines.line_of(("rules", "T", "f", "g")) == 12
    assert lines.line_of(("arr", "h")) == 14
    assert lines.line_of(("missing",)) is None


# -- how a command goes out -------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "live", "shadow", "want"), [
    (CM.LIVE, False, False, CM.LIVE),
    (CM.LIVE, False, True, CM.LIVE),  # decided in shadow before: issued live, once
    (CM.LIVE, True, False, None),
    (CM.LIVE, True, True, None),
    (CM.SHADOW, False, False, CM.SHADOW),
    (CM.SHADOW, False, True, None),
    (CM.SHADOW, True, False, None),  # already executed: not even shadowed again
    (CM.OFF, False, False, None),
    (CM.OFF, False, True, None),
])
def test_issue_as(mode: CommandMode, live: bool, shadow: bool, want: CommandMode | None) -> None:
    assert issue_as(mode, live, shadow) is want
