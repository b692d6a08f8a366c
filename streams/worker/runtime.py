"""What the worker does with each consumed record, independent of Faust: decode, judge, emit.

Input records are decoded and validated; bad ones become dead letters (never an exception).
Good ones go to the PartitionEngine of their partition number, whose commands are held until
the inputs their rule reads confirm them (``streams.engine.confirming``). Records of the
internal ticks topic mark caught-up inputs quiet, or release inputs stalled past
source_hold; before a tick is applied, and before a batch is judged, an input whose end
offset moved past its position is active again (records already on the broker are waited
for, never overtaken). The result of a record is a list of Emit: an encoded record for an
output topic, produced in the transaction of the source partition.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

import msgspec

from schemas.codec import Codec
from schemas.errors import DecodeError, ValidationError
from streams.clock import wall_ms
from streams.config import RuleConfig
from streams.engine.confirming import Confirming
from streams.engine.core import PartitionEngine, partition_of, record_engine
from streams.engine.partition import Engine
from streams.engine.watermark import all_quiet
from streams.inputs import decode_input, framed_id
from streams.metrics.aggregate import encode as encode_partial
from streams.metrics.tracker import WindowTracker
from streams.metrics.windows import Partial, StalledInput
from streams.model import Command, DeadLetter, Mismatch, Source
from streams.names import STALLED_KEY, WINDOWS_CLOSED_KEY, WINDOWS_KEY
from streams.records import command_record, dead_letter_record, mismatch_record
from streams.worker.arrival import Arrival
from streams.worker.runtime_types import Counters, Emit, PartitionCtx, RecordLike
from streams.worker.windows_store import PartitionStore, load_windows, window_key
from topology.partitioner import KeyPartitions, partition_for
from topology.topics import BY_ID, INPUTS, TopicId, Topology, command_topic

_encoder = msgspec.msgpack.Encoder()
_since_decoder = msgspec.msgpack.Decoder(dict[str, int])


class Runtime(Arrival):
    """Turns consumed records into output records, one PartitionEngine per partition number
    (what has arrived: ``streams.worker.arrival``)."""

    def __init__(self, rules: RuleConfig, topology: Topology, codec: Codec,
                 store_for: Callable[[int], PartitionStore],
                 output_partitions: dict[TopicId, int],
                 input_partitions: int, worker_id: str,
                 clock: Callable[[], int] = wall_ms,
                 position_of: Callable[[tuple[str, int]], int | None] = lambda tp: None,
                 end_of: Callable[[tuple[str, int]], int | None] = lambda tp: None,
                 ) -> None:
        self.rules = rules
        self.topology = topology
        self.codec = codec
        self.clock = clock
        self.worker_id = worker_id
        self.input_partitions = input_partitions
        #: next offset to process of an input topic-partition, as the idle ticker knows it
        self.position_of = position_of
        #: the end offset the broker last reported for an input topic-partition (None:
        #: unknown), the consumer's fetch highwater
        self.end_of = end_of
        self.started_at = clock()
        self.counters = Counters()
        self._store_for = store_for
        self._parts: dict[int, PartitionCtx] = {}
        self.tracker = WindowTracker(rules.metrics_window, max(rules.storm_threshold + 1, 10))
        #: order_id -> its input partition (murmur2), for the last orders seen
        self._homes = KeyPartitions(input_partitions, partition_of=partition_of)
        #: called with the mismatches and commands of every record that has some (the web
        #: layer keeps the recent ones: streams.web.probe)
        self.observer: Callable[[list[Mismatch | Command]], None] | None = None
        self._out_partitions = output_partitions
        self._ids = topology.by_name()
        self._names = {t: topology.name(t) for t in BY_ID}
        #: input topic name -> (its Source, the schema id of the last record of it read,
        #: its counter key): set once one was read with an id of its schema, its records
        #: then go to the native engine's ``on_record`` (the checked path when that says no)
        self._fast: dict[str, tuple[Source, int, str]] = {}

    def part(self, partition: int) -> PartitionCtx:
        """Engine, store and metrics windows of a partition number (created on first use)."""
        ctx = self._parts.get(partition)
        if ctx is None:
            store = self._store_for(partition)
            windows, upgrade = load_windows(store)
            engine = PartitionEngine(self.rules, store, self.clock)
            ctx = PartitionCtx(engine, store, windows, record_engine(engine),
                               None if upgrade else windows.closed_until, upgrade)
            ctx.confirm = Confirming(engine, self.rules, store, self.clock)
            meta = store.get_meta()
            ctx.all_idle = meta is not None and all_quiet(meta.idle)
            if meta is not None and meta.released:
                ctx.released = tuple(meta.released)
                stored = store.get_blob(STALLED_KEY)
                since = _since_decoder.decode(stored) if stored is not None else {}
                now = self.clock() - self.rules.source_hold
                ctx.stalled_since = {n: since.get(n, now) for n in meta.released}
            self._parts[partition] = ctx
        return ctx

    def engine(self, partition: int) -> Engine:
        """The engine of a partition number."""
        return self.part(partition).engine

    def forget(self, partition: int) -> None:
        """Drop the engine of a partition this worker no longer owns."""
        self._parts.pop(partition, None)

    def watermarks(self) -> dict[int, int | None]:
        """Current watermark of each partition this worker has an engine for."""
        return {p: c.engine.watermark for p, c in sorted(self._parts.items())}

    def persist(self, partition: int) -> None:
        """Hand the partition's changed metrics windows to its store (before the store is
        flushed): each window changed, opened or closed since the last call, and
        closed_until if it moved."""
        ctx = self._parts.get(partition)
        if ctx is None:
            return
        windows, store = ctx.windows, ctx.store
        if ctx.upgrade:
            store.put_blob(WINDOWS_KEY, None)
            ctx.upgrade = False
        for start in windows.dirty:
            counts = windows.open.get(start)
            store.put_blob(window_key(start), None if counts is None else _encoder.encode(counts))
        windows.dirty.clear()
        if windows.closed_until != ctx.stored_closed_until:
            store.put_blob(WINDOWS_CLOSED_KEY, _encoder.encode(windows.closed_until))
            ctx.stored_closed_until = windows.closed_until

    def settle_stages(self) -> None:
        """Move the native engines' time spent reading values (in ``on_record``, inside the
        engine stage) to the decode stage: once per batch."""
        stages = self.counters.stage_seconds
        for ctx in self._parts.values():
            if ctx.fast is not None:
                seconds = ctx.fast.take_decode_seconds()
                stages["decode"] += seconds
                stages["engine"] -= seconds

    def handle(self, record: RecordLike) -> list[Emit]:
        """Process one consumed record; never raises for bad input."""
        fast = self._fast.get(record.topic)
        if fast is not None:
            value = record.value
            ctx = self.part(record.partition)
            if value is not None and ctx.fast is not None:
                began = perf_counter()
                done = ctx.fast.on_record(fast[0], value, fast[1], record.partition,
                                          self.input_partitions)
                if done is not None:
                    outputs, etype, event_time, amount, currency, watermark = done
                    self.counters.events[fast[2]] += 1
                    windows = ctx.windows
                    if ctx.fast.last_was_new:
                        self.tracker.count(windows, fast[0], etype, event_time, amount,
                                           currency)
                    else:
                        self.counters.duplicates_ignored += 1
                    self.counters.stage_seconds["engine"] += perf_counter() - began
                    if outputs or ctx.all_idle or ctx.released or ctx.holds() \
                            or not self.tracker.closes_nothing(windows, watermark):
                        return self._judged(record.partition, ctx, outputs)
                    return []  # what _judged gives (an event does not make an input idle)
                self.counters.stage_seconds["engine"] += perf_counter() - began
        return self._checked(record)

    def _checked(self, record: RecordLike) -> list[Emit]:
        """``handle`` through the checked path: decode_input, the partition check and
        ``on_event``, each with its own error (what ``on_record`` does in one call for a
        certainly valid record)."""
        topic = self._ids.get(record.topic)
        if topic is TopicId.TICKS:
            return self._on_tick(record)
        if topic is None or topic not in INPUTS:
            return [self._dead(record, f"topic {record.topic} is not an input topic")]
        stages = self.counters.stage_seconds
        began = perf_counter()
        try:
            event = decode_input(self.codec, topic, record.value)
        except (DecodeError, ValidationError) as exc:
            return self._dead_counted(record, str(exc))
        finally:
            decoded = perf_counter()
            stages["decode"] += decoded - began
        home = self._homes.of(event.order_id)
        if home != record.partition:
            return self._dead_counted(
                record, f"misrouted: order {event.order_id!r} belongs to partition {home} "
                f"(murmur2 of the order_id), record is on {record.partition}; "
                "key the record by order_id")
        self.counters.events[topic.value] += 1
        ctx = self.part(record.partition)
        schema_id = framed_id(self.codec, topic, record.value) if ctx.fast is not None else None
        if schema_id is not None:
            self._fast[record.topic] = (event.source, schema_id, topic.value)
        outputs = ctx.engine.on_event(event)
        if ctx.engine.last_was_new:
            self.tracker.on_event(ctx.windows, event)
        else:
            self.counters.duplicates_ignored += 1
        stages["engine"] += perf_counter() - decoded
        return self._judged(record.partition, ctx, outputs)

    def _judged(self, partition: int, ctx: PartitionCtx,
                outputs: list[Mismatch | Command]) -> list[Emit]:
        """Emits for the outputs (commands held until confirmed, decisions made without a
        released input marked so), plus a metrics Partial when windows closed or the
        inputs' state changed."""
        meta = ctx.store.get_meta()
        confirm = ctx.confirm
        if confirm is not None and (outputs or confirm.held.held):
            held = confirm.held
            issued, dropped = held.released, held.dropped
            outputs = confirm.settle(outputs)
            self.counters.held_issued += held.released - issued
            self.counters.held_dropped += held.dropped - dropped
        if outputs and meta is not None:
            outputs = self._excused(meta.max_time, meta.released, outputs)
        emits = [self._emit(o) for o in outputs]
        if outputs:
            self.tracker.on_outputs(ctx.windows, outputs)
            if self.observer is not None:
                self.observer(outputs)
        before = ctx.windows.closed_until
        watermark = meta.watermark if meta is not None else None
        closed = self.tracker.close(ctx.windows, watermark)
        all_idle = meta is not None and all_quiet(meta.idle)
        released = tuple(meta.released) if meta is not None else ()
        if closed or ctx.windows.closed_until != before or all_idle != ctx.all_idle \
                or released != ctx.released:
            ctx.all_idle = all_idle
            sent_at: int | None = None
            if released != ctx.released:  # (what the source alerts measure from)
                sent_at = self.clock()
                ctx.stalled_since = {
                    n: ctx.stalled_since.get(n, sent_at - self.rules.source_hold)
                    for n in released}
                ctx.released = released
                ctx.store.put_blob(STALLED_KEY, _encoder.encode(ctx.stalled_since))
            stalled = [StalledInput(self._names[TopicId(n)], meta.max_time.get(n)
                                    if meta is not None else None, ctx.stalled_since[n])
                       for n in released]
            partial = Partial(partition, watermark, all_idle, closed, stalled, sent_at)
            name = self._names[TopicId.METRICS_PARTIALS]
            emits.append(Emit(TopicId.METRICS_PARTIALS, name, 0, str(partition).encode(),
                              encode_partial(partial), partial))
        return emits

    def _dead_counted(self, record: RecordLike, reason: str) -> list[Emit]:
        ctx = self.part(record.partition)
        self.tracker.on_dead_letter(ctx.windows)
        return [self._dead(record, reason)]

    def _emit(self, output: Mismatch | Command) -> Emit:
        if isinstance(output, Mismatch):
            topic, body = TopicId.MISMATCHES, mismatch_record(output)
            if output.status.value == "OPEN":
                self.counters.mismatches[output.type.value] += 1
            else:
                self.counters.resolved += 1
        else:
            topic, body = command_topic(output.shadow), command_record(output)
            counts = self.counters.shadow_commands if output.shadow else self.counters.commands
            counts[output.type.value] += 1
        name = self._names[topic]
        key = output.order_id.encode()
        value = self.codec.encode(BY_ID[topic].value_schema, body, name)
        # (murmur2 of the key's UTF-8 bytes: the native one when the native core runs)
        return Emit(topic, name, partition_of(output.order_id, self._out_partitions[topic]),
                    key, value, output)

    def _dead(self, record: RecordLike, reason: str) -> Emit:
        self.counters.dead_letters += 1
        letter = DeadLetter(record.topic, record.partition, record.offset, record.key,
                            record.value, reason, self.clock())
        name = self._names[TopicId.DLQ]
        count = self._out_partitions[TopicId.DLQ]
        partition = partition_for(record.key, count) if record.key else record.partition % count
        value = self.codec.encode("DeadLetter", dead_letter_record(letter), name)
        return Emit(TopicId.DLQ, name, partition, record.key, value, letter)

