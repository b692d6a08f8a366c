"""Real-broker tests of the rules file's command modes in `crosscheck worker`: shadow mode end
to end, and a group restarted with another rules file (shadow, then live).

Each test gets its own topics and consumer group; the worker runs with the short thresholds
of `scenarios.RULES` and a rules file (`--rules`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.rulebook import RULEBOOK
from streams.verify import (
    duplicates,
    inconsistencies,
    multiset_diff,
    normalize_command,
    sort_records,
)
from tests.integration.scenarios import SECOND, T0, OrderBuilder, Scenario, rules_scenario
from tests.integration.test_worker_rules import judge
from tests.integration.worker_support import WorkerOutputs, read_records
from topology.topics import TopicId, Topology

pytestmark = pytest.mark.integration



def _every_rule(mode: str) -> str:
    """A rules file giving every rule with a command the mode ``mode`` (its own: the
    subprocess's environment, CROSSCHECK_COMMANDS, beats the file's [defaults])."""
    return "".join(f'[rules.{info.type}]\ncommands = "{mode}"\n\n'
                   for info in RULEBOOK if info.command)


SHADOW, LIVE = _every_rule("shadow"), _every_rule("live")


def _rules_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _shadow(settings: Settings, topology: Topology) -> list[dict[str, Any]]:
    return read_records(settings, topology.name(TopicId.COMMANDS_SHADOW))


def _ids(commands: list[dict[str, Any]]) -> Counter[str]:
    return Counter(c["command_id"] for c in commands)


def test_shadow_mode_sends_the_same_commands_to_the_shadow_topic_only(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    scenario = rules_scenario(copies=1, seed=17)
    log = tmp_path / "worker.log"
    rules = _rules_file(tmp_path, "shadow.toml", SHADOW)
    outputs = judge(settings, topology, log, before=scenario.in_time_order(),
                    extra_args=("--rules", str(rules)))
    expected = scenario.expected()
    assert outputs.commands == [], "a command in shadow mode went to crosscheck.commands"
    shadow = _shadow(settings, topology)
    diff = multiset_diff(sort_records([normalize_command(c) for c in shadow]),
                         expected.commands, "shadow commands")
    assert not diff, f"{diff}\nworker log: {log}"
    assert max(_ids(shadow).values()) == 1
    # the mismatches are the live mode's, with the same command ids
    assert outputs.normalized().mismatches == expected.mismatches


def _mode_switch(mid: int) -> Any:
    """A duplicate payment (p2 refunded: DUPLICATE_PAYMENT) before ``mid``, then the order
    cancelled after it (p1 and p2 refunded: CANCELLED_BUT_CHARGED)."""
    cancel = (mid - T0) / SECOND + 10

    def template(b: OrderBuilder) -> None:
        (b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2, "p1").paid(2.5, "p1")
         .pay("SUCCEEDED", 3, "p2").inv("CONFIRMED", 3.5).cancelled(cancel))
    return template


def test_a_group_switched_from_shadow_to_live_keeps_what_it_emitted(
        settings: Settings, topology: Topology, tmp_path: Path) -> None:
    """The first half judged in shadow mode, the worker restarted with a live rules file for
    the second: no mismatch opened twice, each command id at most once per topic, the
    shadowed refund issued live once by the later live decision on the same payment."""
    scenario: Scenario = rules_scenario(copies=1, seed=23)
    ordered = scenario.in_time_order()
    mid = (ordered[0].arrival + ordered[-1].arrival) // 2
    scenario.order("switch", "mode-switch", T0, _mode_switch(mid))
    ordered = scenario.in_time_order()
    first = [line for line in ordered if line.arrival < mid]
    second = [line for line in ordered if line.arrival >= mid]
    log = tmp_path / "worker.log"
    judge(settings, topology, log, before=first,
          extra_args=("--rules", str(_rules_file(tmp_path, "shadow.toml", SHADOW))))
    outputs: WorkerOutputs = judge(
        settings, topology, log, before=second,
        extra_args=("--rules", str(_rules_file(tmp_path, "live.toml", LIVE))))
    shadow = _shadow(settings, topology)
    twice, again = duplicates(outputs.mismatches, outputs.commands)
    assert not twice and not again, (twice[:5], again[:5])
    # the mismatches that name a command not issued live name one issued in shadow
    dangling = inconsistencies(outputs.mismatches, outputs.commands)[1]
    assert set(dangling) <= set(_ids(shadow)), dangling[:5]
    assert shadow and outputs.commands
    assert max(_ids(shadow).values()) == 1
    # the decisions are those of one run: mismatches as the batch evaluator's
    assert outputs.normalized().mismatches == scenario.expected().mismatches
    refunds = {(c["target_id"], topic) for topic, commands in (("live", outputs.commands),
                                                               ("shadow", shadow))
               for c in commands
               if c["order_id"] == "mode-switch" and c["type"] == "REFUND_PAYMENT"}
    assert refunds == {("mode-switch-p2", "shadow"), ("mode-switch-p2", "live"),
                       ("mode-switch-p1", "live")}
    # nothing that went out live first goes out again in shadow
    live_first = {c["command_id"] for c in outputs.commands} - {
        c["command_id"] for c in shadow}
    assert live_first
