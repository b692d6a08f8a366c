"""What the rules file does to the decisions: a rule off, its severity, its own duration, and
where its commands go (live, shadow, off), in the streaming engine and the batch evaluator."""

from __future__ import annotations

from dataclasses import replace

from builders import RULES, T0, assert_robust, commands, inv, of_type, pay, placed, run_stream

from streams.config import RuleConfig
from streams.engine import MemoryStore
from streams.model import Severity
from streams.rulebook import CommandMode, RuleSetting

PWR = "PAYMENT_WITHOUT_RESERVATION"
DUP = "DUPLICATE_PAYMENT"
CBC = "CANCELLED_BUT_CHARGED"
D2 = T0 + RULES.reservation_timeout


def _with(*settings: RuleSetting, commands: CommandMode = CommandMode.LIVE) -> RuleConfig:
    return replace(RULES, per_rule=tuple(sorted(settings, key=lambda s: s.type)),
                   commands=commands)


def test_a_rule_switched_off_decides_nothing() -> None:
    rules = _with(RuleSetting(PWR, enabled=False))
    out = assert_robust([pay("SUCCEEDED", T0)], rules)
    assert of_type(out, PWR) == [] and commands(out) == []


def test_the_rules_file_severity_goes_on_new_mismatches() -> None:
    rules = _with(RuleSetting(PWR, severity=Severity.LOW))
    [m] = of_type(assert_robust([pay("SUCCEEDED", T0)], rules), PWR)
    assert m.severity is Severity.LOW


def test_a_rule_own_duration_moves_its_decision_only() -> None:
    rules = _with(RuleSetting(PWR, threshold=1_234))
    out = assert_robust([pay("SUCCEEDED", T0), placed(T0), placed(T0 + 1, kind="CANCELLED")],
                        rules)
    [m] = of_type(out, PWR)
    assert m.decided_at == T0 + 1_234
    [c] = of_type(out, CBC)  # release_timeout, not this rule's duration
    assert c.decided_at == T0 + 1 + RULES.release_timeout


def test_shadow_mode_same_ids_on_the_shadow_side() -> None:
    live = assert_robust([pay("SUCCEEDED", T0)])
    shadow = assert_robust([pay("SUCCEEDED", T0)], _with(commands=CommandMode.SHADOW))
    [m_live], [m_shadow] = of_type(live, PWR), of_type(shadow, PWR)
    assert m_live.command_id == m_shadow.command_id is not None
    [c_live], [c_shadow] = commands(live), commands(shadow)
    assert (c_live.shadow, c_shadow.shadow) == (False, True)
    assert c_live.command_id == c_shadow.command_id


def test_mode_off_emits_the_mismatch_without_a_command() -> None:
    out = assert_robust([pay("SUCCEEDED", T0)], _with(RuleSetting(PWR, commands=CommandMode.OFF)))
    [m] = of_type(out, PWR)
    assert m.command_id is None and commands(out) == []


def test_a_shadowed_refund_is_issued_live_once_by_a_later_live_decision() -> None:
    # DUPLICATE_PAYMENT (shadow) wants p2 refunded at once; CANCELLED_BUT_CHARGED (live)
    # wants the same later: one shadow command, then one live one, same id
    rules = _with(RuleSetting(DUP, commands=CommandMode.SHADOW))
    events = [placed(T0), inv("RESERVED", T0), pay("SUCCEEDED", T0, "p1"),
              pay("SUCCEEDED", T0 + 10, "p2"), placed(T0 + 20, kind="CANCELLED")]
    out = assert_robust(events, rules)
    p2 = [c for c in commands(out) if c.target_id == "p2"]
    assert [c.shadow for c in p2] == [True, False]
    assert p2[0].command_id == p2[1].command_id
    assert [c.shadow for c in commands(out) if c.target_id == "p1"] == [False]


def test_a_mode_change_keeps_what_went_out_and_issues_live_once() -> None:
    """The same partition state, first under shadow, then under live: the shadowed command
    is not issued again after the switch; a new live decision on the same target is, once."""
    store = MemoryStore()
    shadow = _with(commands=CommandMode.SHADOW)
    first = [placed(T0), inv("RESERVED", T0), pay("SUCCEEDED", T0, "p1"),
             pay("SUCCEEDED", T0 + 10, "p2")]
    out = run_stream(first, shadow, store, until=T0 + 15)
    [dup] = commands(out)
    assert (dup.target_id, dup.shadow) == ("p2", True)
    # redelivered under live: the shadowed decision is not made again
    assert commands(run_stream(first, RULES, store, until=T0 + 15)) == []
    out = run_stream([placed(T0 + 20, kind="CANCELLED")], RULES, store,
                     until=T0 + 20 + RULES.release_timeout + 5_000)
    refunds = [c for c in commands(out) if c.type.value == "REFUND_PAYMENT"]
    assert [(c.target_id, c.shadow) for c in refunds] == [("p1", False), ("p2", False)]
    assert of_type(out, DUP) == []  # not opened twice
    # and once only: the same decisions again issue nothing
    assert commands(run_stream(first, RULES, store, until=T0 + 100_000)) == []


def test_a_rule_switched_off_still_resolves_what_it_opened_with_its_severity() -> None:
    store = MemoryStore()
    [opened] = of_type(run_stream([pay("SUCCEEDED", T0)], RULES, store, until=D2), PWR)
    assert opened.severity is Severity.HIGH
    off = _with(RuleSetting(PWR, enabled=False, severity=Severity.LOW))
    later = [inv("RESERVED", D2 + 100), inv("RELEASED", D2 + 150), pay("SUCCEEDED", D2 + 200, "p2")]
    assert len(of_type(run_stream(later, RULES, MemoryStore(), until=D2 + 100_000), PWR)) == 1
    out = run_stream(later, off, store, until=D2 + 100_000)
    [resolved] = of_type(out, PWR)  # resolved; p2, unreserved, is not decided: the rule is off
    assert (resolved.mismatch_id, resolved.status.value, resolved.severity) == (
        opened.mismatch_id, "RESOLVED", Severity.HIGH)
