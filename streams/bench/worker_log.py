"""What a worker's log says about a start: its bulk restores, roll-backs, and Faust's milestones.

The recovery phase runs its workers with ``--loglevel info``, so that Faust logs each step
of joining the group and recovering the tables with a timestamp; ``timeline`` turns them into
seconds after a SIGKILL, which is where the time to ready goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_BULK = re.compile(r"bulk restore: ([\d,]+) changelog records of (\d+) partition\(s\) in "
                   r"([\d.]+) s")
#: what a worker says about its local state as it starts (``said``)
_STATE_WORDS = ("rolled back", "bulk restore", "local state")
#: a Faust log line: ``[2026-12-07 03:25:06,641] [29760] [INFO] Joined group ...`` (local time)
_STAMPED = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] (.*)$")
_STAMP_FORMAT = "%Y-%m-%d %H:%M:%S,%f"

#: (milestone, the words of the Faust log line that marks it), in the order they happen
MILESTONES = (
    ("started", "Starting..."),
    ("joined", "Joined group"),
    ("assigned", "Setting newly assigned partitions"),
    ("recovery_reads", "Restoring state from changelog topics"),
    ("recovery_read_all", "Aborted tx until highwater"),
    ("recovery_done", "Done reading from changelog topics"),
    ("faust_ready", "Worker ready"),
)


@dataclass(frozen=True)
class BulkRestore:
    """One ``bulk restore:`` line of a worker (one table's catch-up on an assignment)."""

    records: int
    partitions: int
    seconds: float


def bulk_restores(log: str) -> list[BulkRestore]:
    """The bulk restores a worker log reports, in order."""
    return [BulkRestore(int(m[1].replace(",", "")), int(m[2]), float(m[3]))
            for m in _BULK.finditer(log)]


def said(log: str) -> list[str]:
    """The lines of a worker log about its local state (roll-backs, restores), in order."""
    return [line.strip() for line in log.splitlines()
            if any(word in line for word in _STATE_WORDS)]


def timeline(log: str, since: float) -> dict[str, float]:
    """Seconds from ``since`` (epoch seconds) to the first Faust log line of each milestone
    logged at or after it (``MILESTONES``; one not logged is left out)."""
    found: dict[str, float] = {}
    for line in log.splitlines():
        m = _STAMPED.match(line)
        if m is None:
            continue
        # local time, as the worker logged it
        at = datetime.strptime(m[1], _STAMP_FORMAT).astimezone().timestamp() - since
        if at < -0.001:
            continue
        for name, words in MILESTONES:
            if name not in found and words in m[2]:
                found[name] = round(max(at, 0.0), 3)
    return found


def milestones(found: dict[str, float]) -> str:
    """A timeline as 'started 0.4 s, joined 6.1 s, ...' (the milestones' order)."""
    return ", ".join(f"{name.replace('_', ' ')} {found[name]:.1f} s"
                     for name, _words in MILESTONES if name in found) or "-"
