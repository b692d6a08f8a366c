"""Comparing a worker's outputs with the expected ones, by the contract's stable ids.

The reference is what the batch evaluator (``streams.batch``, the simulator's ``--expected``)
says a worker must emit; the outputs are read back with read_committed. Records are compared
without their wall-clock fields (``detected_at``, ``issued_at``). A mismatch is identified by
(mismatch_id, status): each id is OPEN at most once and RESOLVED at most once; a command by
its command_id, issued at most once. Used by ``crosscheck chaos`` and the worker tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.model import Command, Mismatch
from streams.records import command_record, mismatch_record


def normalize_mismatch(record: dict[str, Any]) -> dict[str, Any]:
    """A Mismatch record without its wall-clock field."""
    return {k: v for k, v in record.items() if k != "detected_at"}


def normalize_command(record: dict[str, Any]) -> dict[str, Any]:
    """A Command record without its wall-clock field."""
    return {k: v for k, v in record.items() if k != "issued_at"}


def sort_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in a canonical order (by their sorted-key JSON)."""
    return sorted(records, key=_canonical)


def _canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


@dataclass
class Expected:
    """Normalised, sorted mismatches, commands, and commands decided in shadow mode (which
    a worker sends to the shadow topic)."""

    mismatches: list[dict[str, Any]]
    commands: list[dict[str, Any]]
    shadow_commands: list[dict[str, Any]] = field(default_factory=list)


def expected_records(outputs: Iterable[Mismatch | Command]) -> Expected:
    """The batch evaluator's outputs as normalised records (what a worker's must equal)."""
    mismatches: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    shadow: list[dict[str, Any]] = []
    for out in outputs:
        if isinstance(out, Mismatch):
            mismatches.append(normalize_mismatch(mismatch_record(out)))
        else:
            (shadow if out.shadow else commands).append(normalize_command(command_record(out)))
    return Expected(sort_records(mismatches), sort_records(commands), sort_records(shadow))


def mismatch_key(record: dict[str, Any]) -> tuple[str, str]:
    """The stable identity of a mismatch record: (mismatch_id, status)."""
    return str(record["mismatch_id"]), str(record["status"])


def command_key(record: dict[str, Any]) -> str:
    """The stable identity of a command record: its command_id."""
    return str(record["command_id"])


@dataclass
class IdCheck:
    """One output kind compared by stable id: what is lost, duplicated, extra or changed."""

    expected: int
    got: int
    #: expected ids never emitted
    lost: list[Any] = field(default_factory=list)
    #: ids emitted more than once (each listed once)
    duplicated: list[Any] = field(default_factory=list)
    #: ids emitted but not expected
    extra: list[Any] = field(default_factory=list)
    #: ids emitted and expected, with other field values (wall-clock fields aside)
    changed: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, extra or changed."""
        return not (self.lost or self.duplicated or self.extra or self.changed)

    def summary(self) -> dict[str, Any]:
        """Counts and a few ids of each kind, for a JSON report."""
        return {"expected": self.expected, "got": self.got, "lost": len(self.lost),
                "duplicated": len(self.duplicated), "extra": len(self.extra),
                "changed": len(self.changed),
                "examples": {name: [_plain(k) for k in getattr(self, name)[:5]]
                             for name in ("lost", "duplicated", "extra", "changed")
                             if getattr(self, name)}}


def _plain(key: Any) -> Any:
    return list(key) if isinstance(key, tuple) else key


def check_ids(got: list[dict[str, Any]], expected: list[dict[str, Any]],
              key: Callable[[dict[str, Any]], Any],
              normalize: Callable[[dict[str, Any]], dict[str, Any]]) -> IdCheck:
    """Compare emitted records with expected ones by ``key`` (see ``IdCheck``)."""
    want: dict[Any, bytes] = {key(r): _canonical(normalize(r)) for r in expected}
    counts = Counter(key(r) for r in got)
    seen: dict[Any, bytes] = {}
    for r in got:
        seen.setdefault(key(r), _canonical(normalize(r)))
    return IdCheck(
        expected=len(expected), got=len(got),
        lost=sorted(k for k in want if k not in counts),
        duplicated=sorted(k for k, n in counts.items() if n > 1),
        extra=sorted(k for k in counts if k not in want),
        changed=sorted(k for k, v in seen.items()
                       if k in want and want[k] != v))


def check_mismatches(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> IdCheck:
    """Mismatches by (mismatch_id, status)."""
    return check_ids(got, expected, mismatch_key, normalize_mismatch)


def check_commands(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> IdCheck:
    """Commands by command_id."""
    return check_ids(got, expected, command_key, normalize_command)


def duplicates(mismatches: list[dict[str, Any]], commands: list[dict[str, Any]]
               ) -> tuple[list[tuple[str, str]], list[str]]:
    """(mismatch_id, status) pairs and command_ids emitted more than once."""
    m = Counter(mismatch_key(r) for r in mismatches)
    c = Counter(command_key(r) for r in commands)
    return sorted(k for k, n in m.items() if n > 1), sorted(k for k, n in c.items() if n > 1)


def inconsistencies(mismatches: list[dict[str, Any]], commands: list[dict[str, Any]]
                    ) -> tuple[list[str], list[str]]:
    """Mismatch ids RESOLVED but never OPEN, and command ids named by a mismatch but never
    issued. The first contradict each other whatever the reference says; the second are
    legitimate only as commands still held (their decision's inputs have not confirmed it,
    ``streams.engine.held``) or dropped: compare them with the reference's."""
    opened = {r["mismatch_id"] for r in mismatches if r["status"] == "OPEN"}
    orphans = sorted({r["mismatch_id"] for r in mismatches
                      if r["status"] == "RESOLVED" and r["mismatch_id"] not in opened})
    issued = {r["command_id"] for r in commands}
    dangling = sorted({r["command_id"] for r in mismatches
                       if r["command_id"] is not None and r["command_id"] not in issued})
    return orphans, dangling


def multiset_diff(actual: list[dict[str, Any]], expected: list[dict[str, Any]], what: str,
                  show: int = 6) -> str:
    """'' if equal as multisets of whole records, else a short report of what is missing
    and extra."""
    a, e = Counter(map(_canonical, actual)), Counter(map(_canonical, expected))
    missing, extra = e - a, a - e
    if not missing and not extra:
        return ""
    lines = [f"{what}: {len(actual)} actual vs {len(expected)} expected; "
             f"{sum(missing.values())} missing, {sum(extra.values())} extra"]
    lines += [f"  missing {m.decode()}" for m in list(missing)[:show]]
    lines += [f"  extra   {x.decode()}" for x in list(extra)[:show]]
    return "\n".join(lines)
