"""The worker's time per stage (``crosscheck_stage_seconds`` of its /metrics), for bench."""

from __future__ import annotations

import re
import urllib.request

from streams.worker.runtime_types import STAGES

_LINE = re.compile(r'^crosscheck_stage_seconds_total\{stage="(\w+)"\} ([0-9.eE+-]+)$',
                   re.MULTILINE)
#: the stages inside ``batch``, in the order a record goes through them
PARTS = tuple(s for s in STAGES if s not in ("batch", "commit"))


def parse_stages(metrics_text: str) -> dict[str, float]:
    """The stage seconds of a /metrics document (empty when it has none)."""
    return {m.group(1): float(m.group(2)) for m in _LINE.finditer(metrics_text)}


def scrape_stages(port: int, timeout: float = 5.0) -> dict[str, float]:
    """The stage seconds of the worker serving on 127.0.0.1:`port`; empty if it does not
    answer (a figure missing from the table, not a failed bench)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=timeout) as resp:
            return parse_stages(resp.read().decode("utf-8", "replace"))
    except OSError:
        return {}


def breakdown(stages: dict[str, float], records: int, wall_seconds: float) -> str:
    """One line: microseconds per record and share of the wall time for each stage, then
    the rest of ``Worker.process``, the offset (transaction) commits, and what lies outside
    them (Faust's consume path, waiting for input). ``wall_seconds`` is the time the worker
    was consuming."""
    if not stages or records <= 0 or wall_seconds <= 0:
        return "per-stage breakdown: not available (the worker's /metrics did not answer)"
    batch = stages.get("batch", 0.0)
    parts = [(name, stages.get(name, 0.0)) for name in PARTS]
    parts.append(("rest of the batch", max(batch - sum(v for _, v in parts), 0.0)))
    commit = stages.get("commit", 0.0)
    parts.append(("commits", commit))
    parts.append(("outside the batch (Faust consume path, waiting)",
                  max(wall_seconds - batch - commit, 0.0)))
    cells = [f"{name.replace('_', ' ')} {1e6 * v / records:,.1f} µs "
             f"({100 * v / wall_seconds:.0f}%)" for name, v in parts]
    return "per record: " + ", ".join(cells)
