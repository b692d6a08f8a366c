"""Per-partition event-time watermark, as pure functions over PartitionMeta.

The progress of an input source is the largest event_time read on it. The watermark of a
partition number is the minimum of the sources' progress minus ``allowed_lateness``, where:

* a *quiet* source (caught up with known lag zero, no record for idle_timeout: the worker's
  Tick says so) still holds the watermark at its progress: records that are merely late
  are waited for, never overtaken;
* when *every* source is quiet, the end of the traffic is decided: the watermark is the
  maximum over the sources read so far of their progress, minus ``allowed_lateness`` (as
  Flink does when all inputs go idle); with nothing read at all there is no watermark;
* a *released* source (stalled past source_hold: quiet while another input of the
  partition number kept advancing) no longer holds it; nor, then, does it matter whether it
  ever had a record;
* any other source that has never had a record holds the watermark (no value: nothing is
  decided before every input has spoken, been released, or all are quiet);
* an event on a source clears its quiet and released flags;
* the watermark never moves backwards; ``force`` moves it to a given value (replay/batch
  end) under the same rule.

A rule's own watermark (``rule_candidate``) is the same over only the inputs the rule reads
(``RuleSpec.reads``): a quiet shipping service holds the partition's watermark, not
DUPLICATE_PAYMENT's, which reads payments alone. The engine makes a decision that would
fire as soon as its rule's watermark passes D (``PartitionEngine``'s early decisions).
"""

from __future__ import annotations

from typing import Any

from streams.engine.state import PartitionMeta
from streams.model import Source
from streams.rules.catalog import DECIDED_ON, RULES

SOURCES: tuple[Source, ...] = tuple(Source)
_NAMES: tuple[str, ...] = tuple(s.value for s in SOURCES)


def all_quiet(idle: list[str]) -> bool:
    """Whether every source is quiet (the end of the traffic)."""
    return len(idle) >= len(_NAMES) and all(name in idle for name in _NAMES)


def candidate(meta: PartitionMeta, allowed_lateness: int) -> int | None:
    """The watermark the sources currently allow (ignoring the never-backwards rule)."""
    max_time = meta.max_time
    if not all_quiet(meta.idle):
        released = meta.released
        lowest: int | None = None
        for name in _NAMES:
            if name in released:
                continue
            t = max_time.get(name)
            if t is None:
                return None  # a source that has not spoken holds the watermark
            if lowest is None or t < lowest:
                lowest = t
        if lowest is not None:
            return lowest - allowed_lateness
    if not max_time:
        return None
    return max(max_time.values()) - allowed_lateness


def rule_candidate(meta: PartitionMeta, reads: frozenset[Source],
                   allowed_lateness: int) -> int | None:
    """The watermark of a rule that reads only ``reads``: ``candidate`` over those inputs
    (the lowest progress of the ones not released), the end of the traffic when every
    input of the partition is quiet, and at least the partition's own watermark."""
    own = meta.watermark
    if all_quiet(meta.idle):
        return candidate(meta, allowed_lateness)
    released, max_time = meta.released, meta.max_time
    lowest: int | None = None
    for source in reads:
        name = source.value
        if name in released:
            continue
        t = max_time.get(name)
        if t is None:
            return own
        if lowest is None or t < lowest:
            lowest = t
    if lowest is None:
        return candidate(meta, allowed_lateness)
    mark = lowest - allowed_lateness
    return mark if own is None or mark > own else own


def rule_watermarks(meta: PartitionMeta, allowed_lateness: int) -> list[dict[str, Any]]:
    """Each group of rules' own watermark (the inputs it is over, the rule types, the
    watermark in event-time ms or None), by the inputs' names: what status, /health and the
    dashboard show."""
    groups: dict[frozenset[Source], list[int]] = {}
    for rule, reads in sorted(DECIDED_ON.items()):
        groups.setdefault(reads, []).append(rule)
    return [{"inputs": sorted(s.value for s in reads),
             "rules": [RULES[n].type.value for n in rules],
             "watermark": rule_candidate(meta, reads, allowed_lateness)}
            for reads, rules in sorted(groups.items(),
                                       key=lambda g: sorted(s.value for s in g[0]))]


def _settle(meta: PartitionMeta, allowed_lateness: int) -> PartitionMeta:
    new = candidate(meta, allowed_lateness)
    if new is not None and (meta.watermark is None or new > meta.watermark):
        meta.watermark = new
    return meta


def observe(
    meta: PartitionMeta, source: Source, event_time: int, allowed_lateness: int
) -> PartitionMeta:
    """Account for an event read on ``source``: raise its progress, clear its quiet and
    released flags."""
    name = source.value
    current = meta.max_time.get(name)
    if current is None or event_time > current:
        meta.max_time[name] = event_time
    if name in meta.idle:
        meta.idle.remove(name)
    if name in meta.released:
        meta.released.remove(name)
    return _settle(meta, allowed_lateness)


def set_idle(
    meta: PartitionMeta, source: Source, idle: bool, allowed_lateness: int
) -> PartitionMeta:
    """Mark ``source`` quiet, or active again (which also ends its release)."""
    names = set(meta.idle)
    if idle:
        names.add(source.value)
    else:
        names.discard(source.value)
        if source.value in meta.released:
            meta.released = sorted(set(meta.released) - {source.value})
    meta.idle = sorted(names)
    return _settle(meta, allowed_lateness)


def set_released(
    meta: PartitionMeta, source: Source, released: bool, allowed_lateness: int
) -> PartitionMeta:
    """Release ``source`` (stalled past source_hold: it stops holding the watermark; it is
    quiet too), or hold it again."""
    names = set(meta.released)
    if released:
        names.add(source.value)
        if source.value not in meta.idle:
            meta.idle = sorted({*meta.idle, source.value})
    else:
        names.discard(source.value)
    meta.released = sorted(names)
    return _settle(meta, allowed_lateness)


def force(meta: PartitionMeta, watermark: int) -> PartitionMeta:
    """Move the watermark to ``watermark`` unless that would move it backwards."""
    if meta.watermark is None or watermark > meta.watermark:
        meta.watermark = watermark
    return meta


def is_late(meta: PartitionMeta, event_time: int) -> bool:
    """Whether an event with this event_time is late (event_time <= watermark)."""
    return meta.watermark is not None and event_time <= meta.watermark
