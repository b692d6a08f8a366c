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
_NAMES: tuple[str, ...] = tuple(s.value for s in SOURCES)


def candidate(meta: PartitionMeta, allowed_lateness: int) -> int | None:
    """The watermark the sources currently allow (ignoring the never-backwards rule)."""
    idle, max_time = meta.idle, meta.max_time
    lowest: int | None = None
    for name in _NAMES:
        if name in idle:
            continue
        t = max_time.get(name)
        if t is None:
            return None  # an active source that has not spoken holds the watermark
        if lowest is None or t < lowest:
            lowest = t
    if lowest is not None:
        return lowest - allowed_lateness
    if not max_time:
        return None
    return max(max_time.values()) - allowed_lateness


def _settle(meta: PartitionMeta, allowed_lateness: int) -> PartitionMeta:
    new = candidate(meta, allowed_lateness)
    if new is not None and (meta.watermark is None or new > meta.watermark):
        meta.watermark = new
    return meta


def observe(
    meta: PartitionMeta, source: Source, event_time: int, allowed_lateness: int
) -> PartitionMeta:
    """Account for an event read on ``source``: raise its max time, clear its idle flag."""
    name = source.value
    current = meta.max_time.get(name)
    if current is None or event_time > current:
        meta.max_time[name] = event_time
    if name in meta.idle:
        meta.idle.remove(name)
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
