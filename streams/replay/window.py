"""The time range of a replay: which events are fed to the engines and which outputs are kept.

A replay over ``[start, end)`` (``--from``, ``--to``) with warm-up W and allowed lateness L:

* events with ``start - W <= event_time <= end`` are fed; older ones are dropped (the warm-up
  is what the replay knows of the past), later ones cannot change a decision made by ``end``;
* a topic-partition is finished at its first event with ``event_time > end + L``: no later
  record of it can be older than ``end`` unless it was late (disorder above L);
* the final watermark is ``end``: every decision with D <= end is made, none after;
* kept: mismatches with ``start <= decided_at < end`` (OPEN, and RESOLVED ones whose
  ``resolved_at < end``), and the commands those OPEN mismatches issued.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.validation import parse_event_time
from streams.config import RuleConfig
from streams.model import Command, Mismatch, Status

Output = Mismatch | Command


def default_warmup(rules: RuleConfig) -> int:
    """The default warm-up: the longest rule horizon plus the allowed lateness."""
    return rules.horizon + rules.allowed_lateness


@dataclass(frozen=True)
class ReplayWindow:
    """``[start, end)`` with its warm-up and lateness (epoch ms)."""

    start: int
    end: int
    warmup: int
    lateness: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("--to must be after --from")
        if self.warmup < 0:
            raise ValueError("--warmup must not be negative")

    @property
    def read_from(self) -> int:
        """The oldest event time that is fed (``start - warmup``)."""
        return self.start - self.warmup

    @property
    def stop_after(self) -> int:
        """A topic-partition is finished at its first event later than this."""
        return self.end + self.lateness

    def feeds(self, event_time: int) -> bool:
        """Whether an event with this time is fed to the engine."""
        return self.read_from <= event_time <= self.end

    def decided_in(self, decided_at: int) -> bool:
        """Whether a decision time lies in ``[start, end)``."""
        return self.start <= decided_at < self.end

    def keeps(self, mismatch: Mismatch) -> bool:
        """Whether a mismatch record belongs to the replay's output."""
        if not self.decided_in(mismatch.decided_at):
            return False
        if mismatch.status is Status.RESOLVED:
            return mismatch.resolved_at is not None and mismatch.resolved_at < self.end
        return True

    def select(self, outputs: Iterable[Output]) -> list[Output]:
        """The outputs to keep, in order (a command goes with the OPEN mismatch that issued it).

        The engine emits a command right after the OPEN mismatch that issued it, in the same
        output list, so ``outputs`` must be whole lists returned by the engine.
        """
        kept: list[Output] = []
        opened: set[str] = set()
        for output in outputs:
            if isinstance(output, Mismatch):
                if self.keeps(output):
                    kept.append(output)
                    if output.status is Status.OPEN:
                        opened.add(output.mismatch_id)
            elif output.mismatch_id in opened:
                kept.append(output)
        return kept


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    return parse_event_time(value, "time")


def select_records(window: ReplayWindow, mismatches: Iterable[dict[str, Any]],
                   commands: Iterable[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same selection over exported records (e.g. a live worker's output, to compare).

    Times may be epoch ms (decoded Avro) or ISO-8601 text (``crosscheck export``). A command
    is kept when the OPEN mismatch named by its ``mismatch_id`` is.
    """
    kept_m: list[dict[str, Any]] = []
    opened: set[str] = set()
    for m in mismatches:
        decided = _ms(m["decided_at"])
        assert decided is not None
        if not window.decided_in(decided):
            continue
        if m["status"] == Status.RESOLVED.value:
            resolved = _ms(m.get("resolved_at"))
            if resolved is None or resolved >= window.end:
                continue
        else:
            opened.add(m["mismatch_id"])
        kept_m.append(m)
    kept_c = [c for c in commands if c["mismatch_id"] in opened]
    return kept_m, kept_c
