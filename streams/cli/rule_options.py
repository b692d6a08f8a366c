"""The --rules FILE and --<threshold> options, shared by every command that runs the rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from streams.config import RULE_ENV, Settings
from streams.durations import format_duration_ms, parse_duration_ms


def rule_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --rules FILE and one --<threshold> option per rule setting (durations such as
    90s, 15m, 24h)."""
    for attr in reversed(list(RULE_ENV)):
        func = click.option(
            f"--{attr.replace('_', '-')}", attr, default=None, metavar="DURATION",
            help=f"Overrides {RULE_ENV[attr]}.",
        )(func)
    return click.option(
        "--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
        default=None, expose_value=False, callback=_remember_rules_file, metavar="FILE",
        help="Rules file (TOML: per rule enabled, severity, threshold, command mode; see "
             "docs/rules.md). Overrides CROSSCHECK_RULES_FILE.")(func)


def _remember_rules_file(ctx: click.Context, param: click.Parameter,
                         value: Path | None) -> None:
    """Keep --rules FILE for ``settings_of``, which reads it (and refuses a bad one)."""
    if value is not None:
        root = ctx.find_root()
        root.ensure_object(dict)
        root.obj["rules_file"] = value


def apply_rule_options(settings: Settings, values: dict[str, Any]) -> Settings:
    """Settings with the given rule options applied."""
    changes = {attr: parse_duration_ms(v, f"--{attr.replace('_', '-')}")
               for attr, v in values.items() if attr in RULE_ENV and v is not None}
    return settings.with_rules(**changes) if changes else settings


def describe_rules(settings: Settings) -> str:
    """One line with the thresholds in force, and what a rules file changes."""
    from streams.rulebook import BY_TYPE

    r = settings.rules
    line = ", ".join(f"{f.name}={format_duration_ms(getattr(r, f.name))}"
                     for f in dataclasses.fields(r) if f.name in RULE_ENV)
    line += f"; commands {r.commands.value}"
    for s in r.per_rule:
        info = BY_TYPE[s.type]
        changed = [("enabled" if s.enabled else "disabled") if s.enabled is not None else "",
                   f"severity {s.severity.value}" if s.severity else "",
                   f"commands {s.commands.value}" if s.commands else "",
                   f"{info.threshold}={format_duration_ms(s.threshold)}"
                   if s.threshold is not None else ""]
        line += f"; {s.type} {' '.join(c for c in changed if c)}"
    if settings.rules_file is not None:
        line += f"; rules file {settings.rules_file}"
    return f"{line}; version {r.version}"
