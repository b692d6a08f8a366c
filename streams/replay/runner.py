"""The replay loop: read the inputs' history, feed the lanes, checkpoint, write the outputs.

One confluent-kafka consumer (group ``<app id>-replay-<name>``, read_committed) is assigned
to every input topic-partition from its start offset (``offsets``) or from the checkpoint.
Records go to the lane of their partition number (``merge``); kept outputs (``window``)
collect until the next checkpoint, which commits the engine state and positions to the local
store (``store``), delivers the outputs (``sinks``), and marks them delivered. When every
lane is drained, each moves its watermark to ``--to`` and a last checkpoint ends the run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.codec import Codec
from schemas.validation import format_time
from streams.clients import confluent_config
from streams.clock import wall_ms
from streams.config import Settings
from streams.engine.confirming import Confirming
from streams.engine.core import PartitionEngine
from streams.errors import CrosscheckError
from streams.model import Command, Mismatch, Source, Status
from streams.replay import checkpoint as ckpt
from streams.replay.checkpoint import Checkpoint, Counts, Position
from streams.replay.decode import InputDecoder
from streams.replay.merge import Feed, Lane
from streams.replay.offsets import start_offsets
from streams.replay.result import PartitionProgress, ProgressReport, ReplayResult
from streams.replay.setup import ReplayOptions, Target, prepare
from streams.replay.sinks import FileSink, KafkaSink
from streams.replay.store import ReplayStore
from topology.topics import TopicId

Output = Mismatch | Command
TP = tuple[str, int]
HIGH_WATER, LOW_WATER = 20_000, 5_000


class Replay:
    """One replay run (see the module docstring); ``request_stop()`` ends it at a checkpoint."""

    def __init__(self, settings: Settings, options: ReplayOptions,
                 on_progress: Callable[[ProgressReport], None] | None = None,
                 progress_every: float = 5.0) -> None:
        self.settings = settings
        self.options = options
        self.window = options.window
        self.codec = Codec()
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.stop_requested = False
        self.warnings: list[str] = []
        self._new: list[Output] = []
        self._lanes: list[Lane] = []
        self._route: dict[TP, tuple[Lane, Source, TopicId]] = {}
        self._paused: set[TP] = set()
        self._started: dict[TP, int] = {}
        self._events_base = self._records_base = 0
        self._began = time.monotonic()

    def request_stop(self) -> None:
        """Stop at the next step with a checkpoint (what SIGINT does)."""
        self.stop_requested = True

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        """Run (or resume) the replay until it is done or asked to stop."""
        began = self._began = time.monotonic()
        target = prepare(self.settings, self.options)
        self.partitions = target.partitions
        self.decoder = InputDecoder(self.codec, target.partitions)
        store = ReplayStore(target.state_dir / "state")
        try:
            return self._run(target, store, began)
        finally:
            store.close()

    def _run(self, target: Target, store: ReplayStore, began: float) -> ReplayResult:
        raw = store.checkpoint()
        ck = (ckpt.decode(raw) if raw is not None
              else Checkpoint(target.params, run_id=uuid.uuid4().hex[:16]))
        result = ReplayResult(self.options.name, target.group, target.state_dir,
                              target.output, ck.counts, ck.done, resumed=raw is not None)
        if raw is not None:
            diffs = ckpt.differences(ck.params, target.params)
            if diffs:
                raise CrosscheckError(
                    f"replay {self.options.name!r} was started with other parameters "
                    f"({'; '.join(diffs)}): use --restart to start it over, or another --name")
            if ck.done and not ck.pending:
                result.already_done = True
                return result
        elif self.options.resume:
            raise CrosscheckError(f"there is no checkpoint of replay {self.options.name!r} "
                                  f"to resume (in {target.state_dir})")
        consumer = Consumer(confluent_config(self.settings, **{
            "group.id": target.group, "enable.auto.commit": False,
            "isolation.level": "read_committed", "enable.partition.eof": True,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
        }))
        kafka: KafkaSink | None = None
        try:
            files = FileSink(self.options.out_dir) if self.options.out_dir else None
            if target.kafka_mismatches or target.kafka_commands:
                kafka = KafkaSink(
                    confluent_config(self.settings, **{"transactional.id": target.group,
                                                       "linger.ms": 20}),
                    consumer, self.codec, target.kafka_mismatches, target.kafka_commands,
                    target.kafka_shadow)
            self._recover(store, ck, files, kafka)
            if not ck.done:
                bounds = {(name, p): self._bounds(consumer, name, p)
                          for _tid, name in target.inputs for p in range(self.partitions)}
                if not ck.positions:
                    starts, result.probe_rounds = self._find_starts(target, bounds)
                    ck.positions = [Position(t, p, o) for (t, p), o in sorted(starts.items())]
                    ck.started = list(ck.positions)
                self._started = {(s.topic, s.partition): s.offset for s in ck.started}
                self._build_lanes(store, ck, bounds, target)
                self._records_base, self._events_base = ck.counts.records, ck.counts.events
                self._loop(consumer, store, ck, files, kafka)
            result.done = ck.done
            result.records_this_run = ck.counts.records - self._records_base
            result.held = sum(len(lane.engine.held) for lane in self._lanes
                              if isinstance(lane.engine, Confirming))
        finally:
            if kafka is not None:
                kafka.close()
            consumer.close()
        result.counts = ck.counts
        result.warnings = self.warnings
        result.seconds = time.monotonic() - began
        return result

    def _find_starts(self, target: Target, bounds: dict[TP, tuple[int, int]]
                     ) -> tuple[dict[TP, int], int]:
        """Start offsets, with a consumer tuned for many one-record fetches."""
        probe = Consumer(confluent_config(self.settings, **{
            "group.id": target.group, "enable.auto.commit": False,
            "isolation.level": "read_committed", "enable.partition.eof": True,
            "fetch.wait.max.ms": 10, "max.partition.fetch.bytes": 65536,
        }))
        try:
            return start_offsets(probe, bounds, self.window.read_from - self.window.lateness,
                                 self.decoder.event_time)
        finally:
            probe.close()

    def _bounds(self, consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                   timeout=15, cached=False)
        return int(low), int(high)

    def _build_lanes(self, store: ReplayStore, ck: Checkpoint, bounds: dict[TP, tuple[int, int]],
                     target: Target) -> None:
        at = {(s.topic, s.partition): s.offset for s in ck.positions}
        for p in range(self.partitions):
            feeds: dict[Source, Feed] = {}
            for tid, name in target.inputs:
                feeds[Source(tid.value)] = Feed(Source(tid.value), at[(name, p)],
                                                bounds[(name, p)][1])
            state = store.partition(p)
            rules = self.settings.rules
            # (the end of the range confirms nothing: a command the live worker would hold
            # at the end of these records is held here too)
            engine = Confirming(PartitionEngine(rules, state, wall_ms), rules, state, wall_ms,
                                force_confirms=False)
            lane = Lane(p, engine, self.window, feeds)
            self._lanes.append(lane)
            for tid, name in target.inputs:
                self._route[(name, p)] = (lane, Source(tid.value), tid)

    def _loop(self, consumer: Consumer, store: ReplayStore, ck: Checkpoint,
              files: FileSink | None, kafka: KafkaSink | None) -> None:
        consumer.assign([TopicPartition(t, p, self._feed((t, p)).position)
                         for (t, p) in self._route])
        self._flow_control(consumer)
        last_checkpoint = last_progress = last_record = time.monotonic()
        stop_after = self.options.stop_after
        for lane in self._lanes:
            self._collect(ck, lane.pump())
        while not all(lane.drained for lane in self._lanes):
            if self.stop_requested or (stop_after is not None and ck.counts.records >= stop_after):
                self._checkpoint(store, ck, files, kafka, consumer)
                return
            touched = self._read(consumer, ck)
            now = time.monotonic()
            if touched:
                last_record = now
            elif now - last_record > self.options.stall_timeout:
                raise CrosscheckError("no input record for "
                                      f"{self.options.stall_timeout:.0f}s; still waiting for "
                                      + ", ".join(self._unfinished()))
            for lane in touched:
                self._collect(ck, lane.pump())
            self._flow_control(consumer)
            if (now - last_checkpoint >= self.options.checkpoint_every
                    or store.held_orders >= self.options.max_held_orders):
                self._checkpoint(store, ck, files, kafka, consumer)
                last_checkpoint = now
            if self.on_progress and now - last_progress >= self.progress_every:
                self.on_progress(self.progress(ck.counts))
                last_progress = now
        if self.stop_requested:
            self._checkpoint(store, ck, files, kafka, consumer)
            return
        for lane in self._lanes:
            self._collect(ck, lane.finish())
            short = lane.short_of_end()
            if short is not None:
                self.warnings.append(
                    f"the input of partition {lane.partition} ends at {format_time(short)}, "
                    "before --to + allowed lateness: decisions near --to may lack events "
                    "still to come")
        ck.done = True
        self._checkpoint(store, ck, files, kafka, consumer)
        if self.on_progress:
            self.on_progress(self.progress(ck.counts))

    def _read(self, consumer: Consumer, ck: Checkpoint) -> set[Lane]:
        touched: set[Lane] = set()
        limit = self.options.stop_after
        routes = self._route
        decode = self.decoder.event
        counts = ck.counts
        for msg in consumer.consume(num_messages=5000, timeout=0.2):
            if limit is not None and counts.records >= limit:
                break  # the rest is read again after the checkpoint
            tp, offset = (msg.topic() or "", msg.partition() or 0), msg.offset() or 0  # where()
            route = routes.get(tp)
            if route is None:
                continue
            lane, source, tid = route
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    lane.feeds[source].reached(offset)
                    touched.add(lane)
                continue
            event = decode(tid, tp[1], msg.value())
            if lane.offer(source, offset, event):
                counts.records += 1
                if event is None:
                    counts.skipped += 1
            touched.add(lane)
        return touched

    def _feed(self, tp: TP) -> Feed:
        lane, source, _ = self._route[tp]
        return lane.feeds[source]

    def _unfinished(self) -> list[str]:
        return [f"{t}[{p}]@{self._feed((t, p)).position}" for (t, p) in self._route
                if not self._feed((t, p)).finished]

    def _flow_control(self, consumer: Consumer) -> None:
        """Pause topic-partitions that are finished or far ahead; resume the others."""
        pause, resume = [], []
        for tp in self._route:
            feed = self._feed(tp)
            full = feed.finished or len(feed.buffer) >= HIGH_WATER
            if full and tp not in self._paused:
                pause.append(tp)
            elif tp in self._paused and not feed.finished and len(feed.buffer) <= LOW_WATER:
                resume.append(tp)
        if pause:
            consumer.pause([TopicPartition(t, p) for t, p in pause])
            self._paused.update(pause)
        if resume:
            consumer.resume([TopicPartition(t, p) for t, p in resume])
            self._paused.difference_update(resume)

    # -- outputs and checkpoints --------------------------------------------------------------

    def _collect(self, ck: Checkpoint, outputs: list[Output]) -> None:
        kept = self.window.select(outputs)
        for output in kept:
            if isinstance(output, Command):
                ck.counts.commands += 1
            elif output.status is Status.OPEN:
                ck.counts.mismatches += 1
            else:
                ck.counts.resolved += 1
        self._new.extend(kept)

    def _positions(self) -> list[Position]:
        return sorted(Position(t, p, self._feed((t, p)).next_offset) for (t, p) in self._route)

    def _checkpoint(self, store: ReplayStore, ck: Checkpoint, files: FileSink | None,
                    kafka: KafkaSink | None, consumer: Consumer) -> None:
        """State, positions and pending outputs atomically; then deliver; then mark done.

        The last checkpoint of a finished replay (``ck.done``) writes no order state: nothing
        reads it again (a run of a done replay only delivers what is pending), and writing
        every order held since the checkpoint before took a tenth of a 1M-event replay."""
        ck.seq += 1
        ck.positions = self._positions()
        ck.counts.events = self._events_base + sum(lane.events_fed for lane in self._lanes)
        ck.pending = ckpt.pack_outputs(self._new)
        if files is not None:
            ck.file_sizes = files.sizes()
        store.commit(ckpt.encode(ck), state=not ck.done)
        self._deliver(ck, self._new, files, kafka, consumer)
        self._new = []
        ck.pending = []
        if files is not None:
            ck.file_sizes = files.sizes()
        store.put_checkpoint(ckpt.encode(ck))

    def _deliver(self, ck: Checkpoint, outputs: list[Output], files: FileSink | None,
                 kafka: KafkaSink | None, consumer: Consumer) -> None:
        if files is not None:
            files.write(outputs)
        if kafka is not None:
            kafka.write(outputs, ck.positions, ck.tag)
        else:
            consumer.commit(offsets=[TopicPartition(p.topic, p.partition, p.offset,
                                                    metadata=ck.tag)
                                     for p in ck.positions], asynchronous=False)

    def _recover(self, store: ReplayStore, ck: Checkpoint, files: FileSink | None,
                 kafka: KafkaSink | None) -> None:
        """Deliver the outputs of a checkpoint whose delivery was cut short."""
        if files is not None:
            files.cut_back(ck.file_sizes)
        if not ck.pending:
            return
        outputs = ckpt.unpack_outputs(ck.pending)
        if files is not None:
            files.write(outputs)
            ck.file_sizes = files.sizes()
        if kafka is not None and not kafka.committed(ck.positions, ck.tag):
            kafka.write(outputs, ck.positions, ck.tag)
        ck.pending = []
        store.put_checkpoint(ckpt.encode(ck))

    # -- progress -----------------------------------------------------------------------------

    def progress(self, counts: Counts) -> ProgressReport:
        """Records read of those to read, watermark and state per partition, and totals.

        A finished topic-partition counts as many records to read as it read.
        """
        parts = []
        for lane in self._lanes:
            read = total = 0
            for (t, p), (other, source, _) in self._route.items():
                if other is lane:
                    feed = lane.feeds[source]
                    start = self._started.get((t, p), feed.position)
                    done = max(min(feed.position, feed.end) - start, 0)
                    read += done
                    total += done if feed.finished else max(feed.end - start, 0)
            parts.append(PartitionProgress(lane.partition, read, total, lane.engine.watermark,
                                           lane.finished_at_end))
        return ProgressReport(parts, counts, counts.records - self._records_base,
                              time.monotonic() - self._began)
