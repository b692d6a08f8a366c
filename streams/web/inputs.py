"""Each input topic-partition's progress and state, and the held commands, as the web shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.validation import format_time

#: what an input topic-partition can be: *stalled* is quiet while another input of its
#: partition number advances, *released* is stalled past source_hold (it no longer holds
#: the watermark), *never seen* has had no record (it holds nothing)
STATES = ("active", "quiet", "stalled", "released", "never seen")
#: the states that have a start time (the tracker's wall clock)
TIMED = frozenset({"quiet", "stalled", "released"})
#: how many held commands the documents list (the count is always complete)
HELD_SHOWN = 10


@dataclass(frozen=True)
class InputRow:
    """One input topic-partition of this worker: progress (largest event time read, ms),
    records known to wait on the broker, its state and since when (wall ms)."""

    topic: str
    partition: int
    progress: int | None
    lag: int | None
    state: str
    since: int | None


def merged_state(engine: str, tracker: str | None) -> str:
    """The engine's view (released, quiet, active, never seen) refined by the ticker's: an
    input the engine has not released yet is *stalled* once the ticker saw another input of
    its partition number advance while it was quiet (or is about to release it)."""
    if engine == "released":
        return "released"
    if tracker in ("stalled", "released"):
        return "stalled"
    return engine


def input_rows(states: Mapping[int, Mapping[str, Any]],
               stalls: Mapping[tuple[str, int], tuple[str, int]]) -> list[InputRow]:
    """Rows by partition and topic, from ``Runtime.input_states()`` and
    ``IdleTracker.stall_states()``."""
    rows: list[InputRow] = []
    for partition, part in sorted(states.items()):
        inputs: Mapping[str, Mapping[str, Any]] = part.get("inputs", {})
        for topic, info in sorted(inputs.items()):
            seen = stalls.get((topic, partition))
            state = merged_state(str(info["state"]), seen[0] if seen is not None else None)
            since = seen[1] if seen is not None and state in TIMED else None
            rows.append(InputRow(topic, partition, info.get("progress"), info.get("lag"),
                                 state, since))
    return rows


def _iso(ms: int | None) -> str | None:
    return None if ms is None else format_time(ms)


def _seconds(now: int, since: int | None) -> float | None:
    return None if since is None else round((now - since) / 1000, 3)


def inputs_doc(rows: list[InputRow], now: int) -> list[dict[str, Any]]:
    """The rows as JSON: times ISO and ms, and how long the state has lasted (seconds)."""
    return [{"topic": r.topic, "partition": r.partition, "progress": _iso(r.progress),
             "progress_ms": r.progress, "lag": r.lag, "state": r.state,
             "since": _iso(r.since), "since_ms": r.since, "for_seconds": _seconds(now, r.since)}
            for r in rows]


def held_doc(held: Mapping[int, list[dict[str, Any]]], now: int,
             shown: int = HELD_SHOWN) -> dict[str, Any]:
    """How many commands are held, and the ``shown`` oldest decisions (with what each waits
    for), from ``Runtime.held_commands()``."""
    rows = sorted(((p, r) for p, rs in held.items() for r in rs),
                  key=lambda pr: (pr[1]["decided_at"], pr[1]["command_id"]))
    return {"count": len(rows), "oldest": [
        {"partition": p, "command_id": r["command_id"], "type": r["type"],
         "order_id": r["order_id"], "target_id": r["target_id"],
         "mismatch_id": r["mismatch_id"], "decided_at": _iso(r["decided_at"]),
         "waits_for": list(r["waits_for"]), "held_at": _iso(r["held_at"]),
         "held_seconds": _seconds(now, r["held_at"])}
        for p, r in rows[:max(0, shown)]]}
