"""Per-partition event-time watermark, as pure functions over PartitionMeta.

The watermark of a partition number is the minimum, over the *non-idle* input sources, of
the largest event_time read on that source, minus ``allowed_lateness``:

* a non-idle source that has never been read holds the watermark (no value: nothing can be
  decided before every active input has spoken);
* when every source is idle, the watermark is the maximum over the sources read so far of
  their largest event_time, minus ``allowed_lateness`` (like Flink when all inputs go idle);
  with nothing read at all there is no watermark;
* an event on a source clears its idle flag;
* the watermark never moves backwards; ``force`` moves it to a given value (replay/batch end)
  under the same rule.
"""

from __future__ import annotations

from streams.engine.state import PartitionMeta
from streams.model import Source

SOURCES: tuple[Source, ...] = tuple(Source)


def candidate(meta: PartitionMeta, allowed_lateness: int) -> int | None:
    """The watermark the sources currently allow (ignoring the never-backwards rule)."""
    idle = set(meta.idle)
    active = [s for s in SOURCES if s.value not in idle]
    if active:
        if any(s.value not in meta.max_time for s in active):
            return None
        return min(meta.max_time[s.value] for s in active) - allowed_lateness
    if not meta.max_time:
        return None
    return max(meta.max_time.values()) - allowed_lateness


def _settle(meta: PartitionMeta, allowed_lateness: int) -> PartitionMeta:
    new = candidate(meta, allowed_lateness)
    if new is not None and (meta.watermark is None or new > meta.watermark):
        meta.watermark = new
    return meta


def observe(
    meta: PartitionMeta, source: Source, event_time: int, allowed_lateness: int
) -> PartitionMeta:
    """Account for an event read on ``source``: raise its max time, clear its idle flag."""
    current = meta.max_time.get(source.value)
    if current is None or event_time > current:
        meta.max_time[source.value] = event_time
    if source.value in meta.idle:
        meta.idle.remove(source.value)
    return _settle(meta, allowed_lateness)


def set_idle(
    meta: PartitionMeta, source: Source, idle: bool, allowed_lateness: int
) -> PartitionMeta:
    """Mark ``source`` idle (it no longer holds the watermark) or active again."""
    names = set(meta.idle)
    if idle:
        names.add(source.value)
    else:
        names.discard(source.value)
    meta.idle = sorted(names)
    return _settle(meta, allowed_lateness)


def force(meta: PartitionMeta, watermark: int) -> PartitionMeta:
    """Move the watermark to ``watermark`` unless that would move it backwards."""
    if meta.watermark is None or watermark > meta.watermark:
        meta.watermark = watermark
    return meta


def is_late(meta: PartitionMeta, event_time: int) -> bool:
    """Whether an event with this event_time is late (event_time <= watermark)."""
    return meta.watermark is not None and event_time <= meta.watermark
