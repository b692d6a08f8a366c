"""SOURCE_STALLED / SOURCE_RECOVERED alerts: one pair per stall of an input topic (stage 2).

Each partition's Partial lists its inputs stalled past ``source_hold`` right now
(``Partial.stalled``). Stage 2 keeps, per input topic, which partitions are stalled (a
``SourceStall`` in its state) and turns changes into alerts, as the partial arrives:

* SOURCE_STALLED when the first partition of a topic becomes stalled. A stalled source is one
  root cause: it is said once, not per partition and not again while the topic stays stalled
  (partitions that stall later join the same stall silently).
* SOURCE_RECOVERED when the last stalled partition of the topic is no longer stalled.

Fields of both: severity HIGH (the recovery goes where the stall went), sample_order_ids [],
mismatch_type null, and ``source`` = the topic, its partitions (SOURCE_STALLED: those stalled
when it is raised; SOURCE_RECOVERED: every partition stalled during the stall), their latest
last event time (null if none had a record) and ``stalled_ms`` = the partial's wall clock
minus the earliest ``since``. count = the number of those partitions. window_start /
window_end are wall clock, not an event-time window: the stall's earliest ``since`` and the
time of the alert (the partial's wall clock).

alert_id: SOURCE_STALLED hashes the topic and the ``since`` that opened the stall;
SOURCE_RECOVERED hashes its stall's alert_id. Both follow from the partials alone, so a
redelivered or replayed partial gives the same ids.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

import msgspec

from schemas.validation import format_time
from streams.metrics.windows import StalledInput

SOURCE_STALLED = "SOURCE_STALLED"
SOURCE_RECOVERED = "SOURCE_RECOVERED"
SOURCE_SEVERITY = "HIGH"


def alert_id(*parts: object) -> str:
    """Stable id of an alert."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


class SourceStall(msgspec.Struct):
    """An input topic with stalled partitions: its SOURCE_STALLED alert has been sent, its
    SOURCE_RECOVERED is due when ``partitions`` becomes empty."""

    #: the alert_id of its SOURCE_STALLED alert
    alert_id: str
    #: the earliest ``since`` (wall clock) of the partitions stalled during it
    since: int
    #: partition -> its stalled input as last reported, of the partitions stalled now
    partitions: dict[int, StalledInput] = msgspec.field(default_factory=dict)
    #: every partition stalled during it, ascending
    seen: list[int] = msgspec.field(default_factory=list)
    #: the latest last_event_time reported by any of them (None: none had a record)
    last_event_time: int | None = None


def source_alerts(stalls: dict[str, SourceStall], partition: int,
                  stalled: list[StalledInput], now: int | None) -> list[dict[str, Any]]:
    """Fold one partial's stalled inputs (of `partition`) into `stalls`; return the alerts
    that changes of a topic's stall call for. `now`: the partial's wall clock (None: not
    known; stalled_ms is then 0)."""
    reported = {s.topic: s for s in stalled}
    alerts: list[dict[str, Any]] = []
    for topic in sorted(set(stalls) | set(reported)):
        stall = stalls.get(topic)
        s = reported.get(topic)
        if s is not None and stall is None:
            stall = SourceStall(alert_id(SOURCE_STALLED, topic, s.since), s.since,
                                {partition: s}, [partition], s.last_event_time)
            stalls[topic] = stall
            alerts.append(_alert(SOURCE_STALLED, stall.alert_id, topic, stall,
                                 sorted(stall.partitions), now))
        elif s is not None and stall is not None:
            stall.partitions[partition] = s
            if partition not in stall.seen:
                bisect.insort(stall.seen, partition)
            stall.since = min(stall.since, s.since)
            stall.last_event_time = _latest(stall.last_event_time, s.last_event_time)
        elif stall is not None and stall.partitions.pop(partition, None) is not None \
                and not stall.partitions:
            del stalls[topic]
            alerts.append(_alert(SOURCE_RECOVERED, alert_id(SOURCE_RECOVERED, stall.alert_id),
                                 topic, stall, stall.seen, now))
    return alerts


def _alert(kind: str, aid: str, topic: str, stall: SourceStall, partitions: list[int],
           now: int | None) -> dict[str, Any]:
    end = stall.since if now is None else max(now, stall.since)
    return {
        "alert_id": aid, "kind": kind, "mismatch_type": None, "severity": SOURCE_SEVERITY,
        "count": len(partitions), "window_start": stall.since, "window_end": end,
        "sample_order_ids": [],
        "source": {"topic": topic, "partitions": list(partitions),
                   "last_event_time": stall.last_event_time,
                   "stalled_ms": end - stall.since},
    }


def _latest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def alert_key(alert: dict[str, Any]) -> str:
    """The key of an alert on the alerts topic ("alert type"): the mismatch type, or for a
    SOURCE_* alert ``SOURCE:<input topic>``, so the stall and the recovery of one topic share
    a partition (and their order)."""
    mismatch_type = alert.get("mismatch_type")
    if mismatch_type is not None:
        return str(mismatch_type)
    source = alert.get("source") or {}
    return f"SOURCE:{source.get('topic', '')}"


def describe_source(alert: dict[str, Any]) -> str:
    """The source of a SOURCE_* alert for people: ``inventory partitions=0,2
    last=2026-11-21T09:00:00.000Z stalled 10m`` (``recovered after 12m`` for a recovery)."""
    source = alert.get("source") or {}
    last = source.get("last_event_time")
    took = "recovered after" if alert.get("kind") == SOURCE_RECOVERED else "stalled"
    return (f"{source.get('topic', '?')} "
            f"partitions={','.join(map(str, source.get('partitions') or []))} "
            f"last={'-' if last is None else format_time(last)} "
            f"{took} {duration(source.get('stalled_ms') or 0)}")


def duration(ms: int) -> str:
    """A wall-clock span, short: 45s, 10m, 10m30s, 1h05m, 2d03h."""
    seconds = max(0, ms) // 1000
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days}d{hours % 24:02d}h"
    if hours:
        return f"{hours}h{minutes % 60:02d}m"
    if minutes:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60:02d}s"
    return f"{seconds}s"
