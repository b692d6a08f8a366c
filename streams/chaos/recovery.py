"""Time to ready after each SIGKILL: from the kill to the restarted worker's /health ready."""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Pending:
    name: str
    killed_at: float
    #: the slot's start count at the kill: only a later start's "ready" counts
    starts: int


@dataclass
class ReadyTimes:
    """Kills waiting for their worker to be ready again, and the seconds each one took.

    ``killed`` is called as a worker is SIGKILLed; ``seen`` whenever a worker is found
    ready (by the monitor's samples, about once a second, and by a kill's wait): the first
    ready of a later start of the killed slot ends that kill's wait. Thread-safe.
    """

    seconds: list[float] = field(default_factory=list)
    _pending: list[_Pending] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def killed(self, name: str, at: float, starts: int) -> None:
        """The worker of slot ``name`` (started ``starts`` times so far) was killed at ``at``."""
        with self._lock:
            self._pending.append(_Pending(name, at, starts))

    def seen(self, name: str, at: float, starts: int) -> None:
        """Slot ``name``'s worker (its ``starts``-th start) was ready at ``at``."""
        with self._lock:
            done = [p for p in self._pending if p.name == name and starts > p.starts]
            for p in done:
                self.seconds.append(round(max(at - p.killed_at, 0.0), 1))
                self._pending.remove(p)

    def doc(self) -> dict[str, Any]:
        """The figures as JSON: every kill's seconds in order, their median and max, and the
        kills whose worker was not seen ready again."""
        with self._lock:
            seconds = list(self.seconds)
            waiting = len(self._pending)
        return {"kills": len(seconds) + waiting, "seconds": seconds,
                "median_s": round(statistics.median(seconds), 1) if seconds else None,
                "max_s": max(seconds) if seconds else None, "not_ready": waiting}


def ready_line(doc: dict[str, Any]) -> str:
    """The report's line, as 'time to ready after a SIGKILL: median 19 s, max 31 s (4
    kills: 10, 19, 27, 31 s)'."""
    if not doc.get("kills"):
        return "time to ready after a SIGKILL: no kills"
    each = ", ".join(f"{s:.0f}" for s in doc["seconds"])
    figures = (f"median {doc['median_s']:.0f} s, max {doc['max_s']:.0f} s" if doc["seconds"]
               else "never ready")
    missing = f"; {doc['not_ready']} never ready again" if doc["not_ready"] else ""
    return (f"time to ready after a SIGKILL: {figures} ({doc['kills']} kills"
            + (f": {each} s" if each else "") + f"{missing})")
