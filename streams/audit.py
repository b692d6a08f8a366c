"""The nightly reconciliation: the rules in batch over a JSON Lines file of input events.

``read_event_file`` parses a file in the ``produce`` form (bad lines are collected as
FILE:LINE: reason, the good ones kept), ``streams.batch.evaluate`` decides, and
``output_record`` renders mismatches and commands with the contract's field names and
ISO-8601 times, optionally without the wall-clock fields (detected_at, issued_at) so that
two runs over the same events are byte-identical. Commands decided in shadow mode never go
with the others: ``split_shadow`` sets them apart, for a file of their own
(``shadow_path``), as the worker sends them to the shadow topic.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from schemas.catalog import schema
from streams.export import to_json_record
from streams.model import Command, Event, Mismatch, Status
from streams.produce import LineError, LineParser, iter_lines
from streams.records import command_record, event_from_record, mismatch_record, source_of
from topology.topics import Topology

Output = Mismatch | Command

#: The wall-clock field of each output record.
WALL_CLOCK_FIELDS = ("detected_at", "issued_at")


@dataclass
class EventFile:
    """The good events of a file, its bad lines, and how many non-blank lines it had."""

    events: list[Event] = field(default_factory=list)
    bad: list[LineError] = field(default_factory=list)
    lines: int = 0


def read_event_file(path: str, topology: Topology,
                    on_bad: Callable[[LineError], None] | None = None) -> EventFile:
    """Parse a JSON Lines file of input events ('-': stdin); bad lines are collected."""
    result = EventFile()
    parser = LineParser(topology, path)
    stream: IO[bytes] = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    try:
        for lineno, text in iter_lines(stream):
            result.lines += 1
            try:
                line = parser.parse(text, lineno)
            except LineError as exc:
                result.bad.append(exc)
                if on_bad:
                    on_bad(exc)
                continue
            result.events.append(event_from_record(source_of(line.topic), line.record))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return result


def output_record(output: Output, *, wall_clock: bool = True) -> dict[str, Any]:
    """A Mismatch or Command as its JSON record (contract field names, ISO times)."""
    if isinstance(output, Mismatch):
        info, record = schema("Mismatch"), mismatch_record(output)
    else:
        info, record = schema("Command"), command_record(output)
    if not wall_clock:
        for name in WALL_CLOCK_FIELDS:
            record.pop(name, None)
    return to_json_record(info, record)


def output_line(output: Output, *, wall_clock: bool = True) -> str:
    """One JSON line (no newline) of an output record."""
    return json.dumps(output_record(output, wall_clock=wall_clock), ensure_ascii=False,
                      separators=(",", ":"))


def split_shadow(outputs: Iterable[Output]) -> tuple[list[Output], list[Command]]:
    """The outputs without the commands decided in shadow mode, and those commands."""
    kept: list[Output] = []
    shadow: list[Command] = []
    for output in outputs:
        if isinstance(output, Command) and output.shadow:
            shadow.append(output)
        else:
            kept.append(output)
    return kept, shadow


def shadow_path(path: str, default: str) -> str:
    """Where the shadow-mode commands of an output file go: ``X.jsonl`` -> ``X.shadow.jsonl``
    (``default`` for stdout, ``-``)."""
    if path == "-":
        return default
    for suffix in (".jsonl", ".json"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + ".shadow.jsonl"
    return path + ".shadow.jsonl"


def write_outputs(outputs: Iterable[Output], out: IO[str], *, wall_clock: bool = True) -> int:
    """Write the outputs as JSON Lines; returns how many."""
    count = 0
    for output in outputs:
        out.write(output_line(output, wall_clock=wall_clock))
        out.write("\n")
        count += 1
    return count


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name}={n}" for name, n in sorted(counter.items()))


def summary(outputs: Iterable[Output]) -> str:
    """'N mismatches opened (TYPE=n, ...), M resolved, K commands (TYPE=n, ...)', and
    ', S shadow commands (TYPE=n, ...)' when some were decided in shadow mode."""
    opened: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    shadow: Counter[str] = Counter()
    for output in outputs:
        if isinstance(output, Command):
            (shadow if output.shadow else commands)[output.type.value] += 1
        elif output.status is Status.OPEN:
            opened[output.type.value] += 1
        else:
            resolved[output.type.value] += 1
    parts = [f"{sum(opened.values())} mismatches opened"
             + (f" ({_counts(opened)})" if opened else ""),
             f"{sum(resolved.values())} resolved",
             f"{sum(commands.values())} commands"
             + (f" ({_counts(commands)})" if commands else "")]
    if shadow:
        parts.append(f"{sum(shadow.values())} shadow commands ({_counts(shadow)})")
    return ", ".join(parts)
