"""The rules file (TOML): what it may set per rule and for all, checked with line numbers.

Layout (docs/rules.md has the full example, ``examples/rules.toml``)::

    [defaults]                     # every key optional
    commands = "shadow"            # live | shadow | off: the rules that set no mode of their own
    release_timeout = "20m"        # any duration of the contract's section 4

    [rules.PAYMENT_NOT_APPLIED]    # one table per rule type, every key optional
    enabled = false
    [rules.CANCELLED_BUT_CHARGED]
    severity = "HIGH"              # CRITICAL | HIGH | MEDIUM | LOW
    commands = "live"              # only for a rule that has a command
    release_timeout = "30m"        # only the duration this rule's decision time adds

Anything else (an unknown rule or key, a value of the wrong type, a negative or malformed
duration, a mode or severity that does not exist, a TOML syntax error) is refused, each
problem as ``FILE:LINE: reason``, before anything runs.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.durations import parse_duration_ms
from streams.errors import ConfigError
from streams.model import Severity
from streams.rulebook import BY_TYPE, THRESHOLDS, CommandMode, RuleSetting
from streams.toml_lines import KeyLines

_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")
_RULE_KEYS = ("enabled", "severity", "commands")


@dataclass(frozen=True)
class RulesFile:
    """What a valid rules file sets: global durations (ms), the global command mode, and per
    rule (sorted by type, only the rules it names)."""

    thresholds: dict[str, int]
    commands: CommandMode | None
    per_rule: tuple[RuleSetting, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules file, at a line (None: not known)."""

    line: int | None
    reason: str


class RulesFileError(ConfigError):
    """A rules file that cannot be used: every problem, ``FILE:LINE: reason`` each."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.reason))
        super().__init__("\n".join(
            f"{name}:{p.line}: {p.reason}" if p.line else f"{name}: {p.reason}"
            for p in self.problems))


def load_rules_file(path: Path) -> RulesFile:
    """Read and check a rules file; RulesFileError (a ConfigError) if it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesFileError(str(path), [Problem(None, "no such rules file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesFileError(str(path), [Problem(None, f"cannot be read ({exc})")]) from None
    return parse_rules(text, str(path))


def parse_rules(text: str, name: str) -> RulesFile:
    """Check the text of a rules file called ``name`` (for the messages)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesFileError(name, [_syntax_problem(str(exc), text)]) from None
    return _Checker(KeyLines(text)).check(doc, name)


def _syntax_problem(message: str, text: str) -> Problem:
    at = _AT_LINE.search(message)
    if at:
        reason = _AT_LINE.sub("", message)
        return Problem(int(at.group(1)), f"TOML syntax: {reason} (column {at.group(2)})")
    reason = _AT_END.sub("", message)
    return Problem(max(1, len(text.splitlines())), f"TOML syntax: {reason} (at the end)")


class _Checker:
    """Collects the problems of a parsed document, each at its key's line."""

    def __init__(self, lines: KeyLines) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def check(self, doc: dict[str, Any], name: str) -> RulesFile:
        thresholds: dict[str, int] = {}
        commands: CommandMode | None = None
        per_rule: list[RuleSetting] = []
        for key, value in doc.items():
            if key == "defaults":
                if self._table(("defaults",), value):
                    thresholds, commands = self._defaults(value)
            elif key == "rules":
                if self._table(("rules",), value):
                    per_rule = [s for rule, body in value.items()
                                if (s := self._rule(rule, body)) is not None]
            else:
                self._unknown((key,), ("defaults", "rules"), " at the top level")
        if self.problems:
            raise RulesFileError(name, self.problems)
        return RulesFile(thresholds, commands, tuple(sorted(per_rule, key=lambda s: s.type)))

    def _defaults(self, body: dict[str, Any]) -> tuple[dict[str, int], CommandMode | None]:
        thresholds: dict[str, int] = {}
        commands: CommandMode | None = None
        for key, value in body.items():
            path = ("defaults", key)
            if key == "commands":
                commands = self._mode(path, value)
            elif key in THRESHOLDS:
                ms = self._duration(path, value)
                if ms is not None:
                    thresholds[key] = ms
            else:
                self._unknown(path, ("commands", *THRESHOLDS), " in [defaults]")
        return thresholds, commands

    def _rule(self, rule: str, body: Any) -> RuleSetting | None:
        info = BY_TYPE.get(rule)
        if info is None:
            self._unknown(("rules", rule), tuple(BY_TYPE), "", "rule",
                          "`crosscheck rules` lists the fifteen")
            return None
        if not self._table(("rules", rule), body):
            return None
        where = f"[rules.{rule}]"
        setting: dict[str, Any] = {}
        for key, value in body.items():
            path = ("rules", rule, key)
            if key == "enabled":
                setting[key] = self._boolean(path, value)
            elif key == "severity":
                setting[key] = self._severity(path, value)
            elif key == "commands":
                if info.command is None:
                    self._problem(path, f"{where} commands: {rule} issues no command, so it "
                                        "has no command mode")
                else:
                    setting[key] = self._mode(path, value)
            elif key in THRESHOLDS:
                if key != info.threshold:
                    own = (f"its decision time adds {info.threshold}" if info.threshold
                           else "its decision time is its trigger")
                    self._problem(path, f"{where} {key}: {rule} does not use {key} ({own})")
                else:
                    setting["threshold"] = self._duration(path, value)
            else:
                known = (*_RULE_KEYS, *((info.threshold,) if info.threshold else ()))
                self._unknown(path, known, f" in {where}")
        if not any(v is not None for v in setting.values()):
            return None
        return RuleSetting(rule, **setting)

    # -- values ----------------------------------------------------------------------------

    def _table(self, path: tuple[str, ...], value: Any) -> bool:
        if isinstance(value, dict):
            return True
        self._problem(path, f"{_dotted(path)}: expected a table, got {_kind(value)} {value!r}")
        return False

    def _duration(self, path: tuple[str, ...], value: Any) -> int | None:
        key = _dotted(path)
        if not isinstance(value, str):
            self._problem(path, f"{key}: expected a duration string such as \"15m\", got "
                                f"{_kind(value)} {value!r}")
            return None
        if value.strip().startswith("-"):
            self._problem(path, f"{key}: {value!r} is negative; a duration is 0 or more")
            return None
        try:
            return parse_duration_ms(value, key)
        except ConfigError as exc:
            self._problem(path, str(exc))
            return None

    def _mode(self, path: tuple[str, ...], value: Any) -> CommandMode | None:
        key = _dotted(path)
        if not isinstance(value, str):
            self._problem(path, f"{key}: expected \"live\", \"shadow\" or \"off\", got "
                                f"{_kind(value)} {value!r}")
            return None
        try:
            return CommandMode(value.strip().lower())
        except ValueError:
            self._problem(path, f"{key}: {value!r} is not live, shadow or off")
            return None

    def _severity(self, path: tuple[str, ...], value: Any) -> Severity | None:
        key = _dotted(path)
        names = ", ".join(s.value for s in Severity)
        if not isinstance(value, str):
            self._problem(path, f"{key}: expected one of {names}, got {_kind(value)} "
                                f"{value!r}")
            return None
        try:
            return Severity(value.strip().upper())
        except ValueError:
            self._problem(path, f"{key}: {value!r} is not one of {names}")
            return None

    def _boolean(self, path: tuple[str, ...], value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        self._problem(path, f"{_dotted(path)}: expected true or false, got {_kind(value)} "
                            f"{value!r}")
        return None

    # -- problems --------------------------------------------------------------------------

    def _unknown(self, path: tuple[str, ...], known: tuple[str, ...], where: str,
                 what: str = "key", hint: str = "") -> None:
        """``path``'s last key is none of ``known``."""
        key = path[-1]
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            hint = f"did you mean {close[0]}?"
        elif not hint:
            hint = f"known: {', '.join(known)}"
        self._problem(path, f"unknown {what} {key!r}{where} ({hint})")

    def _problem(self, path: tuple[str, ...], reason: str) -> None:
        self.problems.append(Problem(self.lines.line_of(path), reason))


def _dotted(path: tuple[str, ...]) -> str:
    if len(path) > 1 and path[0] == "rules":
        return f"[rules.{path[1]}]" + (f" {'.'.join(path[2:])}" if len(path) > 2 else "")
    if len(path) > 1 and path[0] == "defaults":
        return f"[defaults] {'.'.join(path[1:])}"
    return ".".join(path)


def _kind(value: Any) -> str:
    """The TOML name of a value's type."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (dict, "table"), (list, "array")):
        if isinstance(value, kind):
            return name
    return "date-time"
