"""How the runtime keeps track of arrival: ticks, quiet and released inputs, held commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from schemas.codec import Codec
from schemas.errors import DecodeError
from streams.config import RuleConfig
from streams.engine.held import confirmed_until
from streams.engine.watermark import all_quiet, rule_watermarks
from streams.model import Command, Mismatch, Source, Status
from streams.rules.catalog import RULE_OF, RULES
from streams.worker.runtime_types import Counters, Emit, PartitionCtx, RecordLike
from topology.topics import TopicId


class Arrival:
    """The part of ``streams.worker.runtime.Runtime`` that deals with what has arrived
    (docs/time.md): Tick records mark inputs quiet or released; before a tick is applied,
    and before a batch is judged, an input whose end offset moved past its position is
    active again; decisions made on excused input are counted and, when an input their
    rule reads was released, marked ``decided_without``; the inputs' states, the rule
    watermarks and the held commands are reported."""

    rules: RuleConfig
    codec: Codec
    counters: Counters
    worker_id: str
    started_at: int
    position_of: Callable[[tuple[str, int]], int | None]
    end_of: Callable[[tuple[str, int]], int | None]
    _parts: dict[int, PartitionCtx]
    _names: dict[TopicId, str]

    def part(self, partition: int) -> PartitionCtx:
        raise NotImplementedError

    def _judged(self, partition: int, ctx: PartitionCtx,
                outputs: list[Mismatch | Command]) -> list[Emit]:
        raise NotImplementedError

    def _excused(self, progress: dict[str, int], released: list[str],
                 outputs: list[Mismatch | Command]) -> list[Mismatch | Command]:
        """Count the mismatches opened on excused input; mark those decided while an input
        their rule reads was released with ``decided_without`` (its topics)."""
        lateness = self.rules.allowed_lateness
        result: list[Mismatch | Command] = []
        for output in outputs:
            if isinstance(output, Mismatch) and output.status is Status.OPEN:
                reads = RULES[RULE_OF[output.type]].reads
                until = confirmed_until(progress, reads, lateness)
                if until is None or output.decided_at > until:
                    self.counters.excused[output.type.value] += 1
                    without = sorted(self._names[TopicId(s.value)] for s in reads
                                     if s.value in released)
                    if without:
                        details = {**output.details, "decided_without": ",".join(without)}
                        output = msgspec.structs.replace(output, details=details)
            result.append(output)
        return result

    def _on_tick(self, record: RecordLike) -> list[Emit]:
        try:
            tick = self.codec.decode_as("Tick", record.value)
        except DecodeError:
            return []  # internal topic: nothing to dead-letter
        origin = (record.key or b"").decode(errors="replace").partition("/")[0]
        if origin != self.worker_id or tick["sent_at"] < self.started_at:
            return []  # another worker's or an earlier life's notice
        self.counters.ticks += 1
        partition = record.partition
        ctx = self.part(partition)
        outputs = self.reactivate(partition, quiet=True)
        engine = ctx.engine
        # accept a notice only if this worker's processed position is still exactly where
        # the ticker saw the topic-partition caught up, and no later end offset is known: a
        # record processed or arrived since, or an ownership change in between (positions
        # are forgotten on revoke), voids it
        offsets = tick.get("offsets") or []
        for i, topic_value in enumerate(tick["idle_topics"]):
            if i < len(offsets) and self._caught_up(topic_value, partition, offsets[i]):
                source = Source(topic_value)
                meta = ctx.store.get_meta()
                if meta is not None and self._ends_traffic(meta.idle, source, partition):
                    continue  # another quiet input's lag is not known to be zero
                outputs.extend(engine.set_idle(source, True))
        released = tick.get("released_offsets") or []
        for i, topic_value in enumerate(tick.get("released_topics") or []):
            if i < len(released) and self._caught_up(topic_value, partition, released[i]):
                ctx.stalled_since.setdefault(topic_value,
                                             tick["sent_at"] - self.rules.source_hold)
                outputs.extend(engine.set_released(Source(topic_value), True))
        return self._judged(partition, ctx, outputs)

    def _caught_up(self, topic_value: str, partition: int, offset: int) -> bool:
        """Whether an input topic-partition is still at ``offset`` with no later end offset
        known."""
        tp = (self._names[TopicId(topic_value)], partition)
        end = self.end_of(tp)
        return self.position_of(tp) == offset and (end is None or end <= offset)

    def _lag(self, source: str, partition: int) -> int | None:
        """Records known to wait on the broker for an input topic-partition (None: its
        position or its end offset is not known)."""
        tp = (self._names[TopicId(source)], partition)
        position, end = self.position_of(tp), self.end_of(tp)
        return None if position is None or end is None else max(0, end - position)

    def _ends_traffic(self, quiet: list[str], source: Source, partition: int) -> bool:
        """Whether marking ``source`` quiet would make every input quiet while the lag of
        another quiet one is unknown (then the end of the traffic is not decided yet)."""
        names = {*quiet, source.value}
        if not all_quiet(sorted(names)):
            return False
        return any(self._lag(n, partition) is None for n in names if n != source.value)

    def reactivate(self, partition: int, quiet: bool = False) -> list[Mismatch | Command]:
        """Before records of ``partition`` are judged: a released input (``quiet``: any
        quiet one) whose end offset moved past its position is active again, holding the
        watermark at its progress until its records are read. Nothing is decided by it."""
        ctx = self._parts.get(partition)
        if ctx is None:
            return []
        meta = ctx.store.get_meta()
        if meta is None or not (meta.idle if quiet else meta.released):
            return []
        outputs: list[Mismatch | Command] = []
        for name in list(meta.idle if quiet else meta.released):
            lag = self._lag(name, partition)
            if lag:
                self.counters.reactivated += 1
                outputs.extend(ctx.engine.set_idle(Source(name), False))
        return outputs

    def before_batch(self, partition: int) -> list[Emit]:
        """Before a batch with records of ``partition`` is judged: ``reactivate`` its
        released inputs with records waiting, and what that emits (a Partial)."""
        ctx = self._parts.get(partition)
        count = self.counters.reactivated
        outputs = self.reactivate(partition)
        if ctx is None or self.counters.reactivated == count:
            return []
        return self._judged(partition, ctx, outputs)

    def released_partitions(self) -> list[int]:
        """Partition numbers with a released input (``reactivate`` matters for them)."""
        return [p for p, ctx in self._parts.items() if ctx.released]

    def held_commands(self) -> dict[int, list[dict[str, object]]]:
        """Each partition's held commands (``HeldCommands.describe``)."""
        return {p: ctx.confirm.held.describe() for p, ctx in sorted(self._parts.items())
                if ctx.confirm is not None and ctx.confirm.held.held}

    def held_count(self) -> int:
        """How many commands are held on this worker's partitions."""
        return sum(len(ctx.confirm.held) for ctx in self._parts.values()
                   if ctx.confirm is not None)

    def rule_watermarks(self) -> dict[int, list[dict[str, Any]]]:
        """Per partition number: each rule group's own watermark (``rule_watermarks``)."""
        lateness = self.rules.allowed_lateness
        return {p: rule_watermarks(meta, lateness) for p, ctx in sorted(self._parts.items())
                if (meta := ctx.store.get_meta()) is not None}

    def input_states(self) -> dict[int, dict[str, object]]:
        """Per partition number: each input's progress, quiet/released flags and the
        watermark (status, /health, the dashboard)."""
        result: dict[int, dict[str, object]] = {}
        for p, ctx in sorted(self._parts.items()):
            meta = ctx.store.get_meta()
            if meta is None:
                continue
            inputs = {}
            for source in Source:
                name = source.value
                state = ("released" if name in meta.released else "quiet"
                         if name in meta.idle else "never seen"
                         if name not in meta.max_time else "active")
                inputs[self._names[TopicId(name)]] = {
                    "progress": meta.max_time.get(name), "state": state,
                    "lag": self._lag(name, p)}
            result[p] = {"watermark": meta.watermark, "all_quiet": all_quiet(meta.idle),
                         "inputs": inputs, "held_commands": len(ctx.confirm.held)
                         if ctx.confirm is not None else 0,
                         "rule_watermarks": rule_watermarks(meta, self.rules.allowed_lateness)}
        return result
