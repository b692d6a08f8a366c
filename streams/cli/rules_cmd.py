"""`crosscheck rules [--json]`: the effective rules (the rules file merged with the defaults)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from streams.cli.context import settings_of, topology_of
from streams.cli.rule_options import apply_rule_options, rule_options
from streams.config import RuleConfig
from streams.durations import format_duration_ms
from streams.rulebook import RULEBOOK, THRESHOLDS
from topology.topics import TopicId

_HEADER = ("type", "on", "reads", "D", "severity", "command", "mode")


def rows(rules: RuleConfig) -> list[dict[str, Any]]:
    """One record per rule, in the contract's order: what it reads, when it decides, its
    severity, command and command mode, as ``rules`` makes them."""
    out = []
    for info in RULEBOOK:
        delay = rules.delay_of(info.type)
        decision = info.trigger if info.threshold is None else \
            f"{info.trigger} + {format_duration_ms(delay)} ({info.threshold})"
        enabled = rules.enabled(info.type)
        out.append({
            "type": info.type,
            "enabled": enabled,
            "reads": info.reads,
            "inputs": list(info.inputs),
            "decision_time": decision,
            "threshold": info.threshold,
            "threshold_ms": None if info.threshold is None else delay,
            "severity": rules.severity_of(info.type, info.severity).value,
            "default_severity": info.severity.value,
            "command": info.command,
            "target": info.target,
            "mode": rules.mode_of(info.type).value if info.command else None,
            "needs_paid": info.needs_paid,
        })
    return out


def as_json(rules: RuleConfig, rules_file: Path | None) -> dict[str, Any]:
    """The document of ``rules --json``."""
    return {
        "rules_file": None if rules_file is None else str(rules_file),
        "version": rules.version,
        "commands": rules.commands.value,
        "thresholds_ms": {name: getattr(rules, name) for name in THRESHOLDS},
        "rules": rows(rules),
    }


def render(rules: RuleConfig, rules_file: Path | None, topics: tuple[str, str]) -> list[str]:
    """The text table of ``rules``: a header, one line per rule, a legend naming the
    ``topics`` (live, shadow) the command modes send to."""
    source = f"rules file {rules_file}" if rules_file else "no rules file (the defaults)"
    table = [_HEADER]
    for row in rows(rules):
        command = f"{row['command']} {row['target']}" if row["command"] else "none"
        mode = row["mode"] if row["mode"] and row["enabled"] else "-"
        table.append((row["type"], "yes" if row["enabled"] else "no", row["reads"],
                      row["decision_time"], row["severity"], command, mode))
    widths = [max(len(cells[i]) for cells in table) for i in range(len(_HEADER))]
    lines = [f"{source}; version {rules.version}; default command mode "
             f"{rules.commands.value}"]
    lines.extend("  ".join(f"{cell:{width}}" for cell, width in zip(cells, widths, strict=True))
                 .rstrip() for cells in table)
    lines.append(f"reads: O orders, P payments, I inventory, S shipping. mode: live "
                 f"({topics[0]}), shadow ({topics[1]}), off (none).")
    return lines


@click.command("rules")
@click.option("--json", "json_out", is_flag=True, help="One JSON object instead of a table.")
@rule_options
@click.pass_context
def rules_command(ctx: click.Context, /, json_out: bool, **values: Any) -> None:
    """Print the effective rules: the rules file (--rules or CROSSCHECK_RULES_FILE) merged
    with the defaults, the environment and the options. Per rule: whether it is on, the
    inputs it reads, its decision time D, severity, command and command mode.

    A bad rules file is refused (each problem as FILE:LINE: reason, exit code 2), as by
    every command that judges.
    """
    settings = apply_rule_options(settings_of(ctx), values)
    if json_out:
        click.echo(json.dumps(as_json(settings.rules, settings.rules_file), indent=2))
        return
    topology = topology_of(ctx)
    topics = (topology.name(TopicId.COMMANDS), topology.name(TopicId.COMMANDS_SHADOW))
    for line in render(settings.rules, settings.rules_file, topics):
        click.echo(line)


def register(cli: click.Group) -> None:
    """Add the commands of this module."""
    cli.add_command(rules_command)
