"""The Faust app of `crosscheck worker`: tables, the judging agent, the idle ticker, outputs.

One agent subscribes the four input topics and the internal ticks topic (all co-partitioned);
their records reach ``Worker.process`` in batches, below Faust's per-record stream path
(``tap.py``; ``consume="stream"`` keeps the agent's ``take_events`` instead). For each
batch: every record goes through the Runtime (decode, PartitionEngine), each touched
partition's TableStore is flushed once, and the outputs and changelog records are produced.
Under exactly-once they are produced by the transactional producer of the *source*
partition, the one Faust commits that partition's offsets with, so outputs, state and
offsets commit or abort together. (Faust's own transactional send routes
by destination topic and cannot reach topics it does not consume.)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, cast

import faust

from schemas.codec import Codec
from schemas.registry import registry_from
from schemas.validation import format_time
from streams.clients import confluent_config
from streams.clock import wall_ms
from streams.config import Settings
from streams.metrics.aggregate import (
    RECENT_WINDOWS,
    Aggregator,
    AggregatorState,
    decode_partial,
    decode_state,
)
from streams.metrics.aggregate import encode as encode_state
from streams.metrics.sources import alert_key
from streams.names import AGENT_NAME, AGGREGATOR_NAME, META_TABLE, METRICS_TABLE, ORDERS_TABLE
from streams.worker import confirm, faust_patch, outputs, rocks_store, tap, ticker
from streams.worker.confirm import Confirmations
from streams.worker.delivery import DeliveryGuard, whole_or_exit
from streams.worker.echo import describe, describe_alert
from streams.worker.faust_app import WorkerOptions, build_app
from streams.worker.idle import IdleTracker
from streams.worker.offsets import TailProbe, fill_head_gap
from streams.worker.outputs import Send
from streams.worker.runtime import Runtime
from streams.worker.runtime_types import Emit
from streams.worker.store import BlobTable, Flushed, TableStore
from topology.partitioner import partition_for
from topology.topics import INPUTS, TopicId, Topology

log = logging.getLogger("crosscheck.worker")


@dataclass
class Worker:
    """The app and everything its agent uses."""

    app: faust.App
    settings: Settings
    options: WorkerOptions
    runtime: Runtime
    tracker: IdleTracker
    topology: Topology
    tail_probe: TailProbe
    stores: dict[int, TableStore] = field(default_factory=dict)
    #: every send of an open transaction, settled before it commits (see delivery.py)
    delivery: DeliveryGuard = field(default_factory=DeliveryGuard)
    #: the staged local state of each open transaction, confirmed after it commits
    confirmations: Confirmations = field(default_factory=Confirmations)
    batches: int = 0
    records: int = 0
    #: per (topic, partition), the offset after the last record judged (its state written
    #: locally): a stop is clean only once the group's commits cover it (clean_stop.py)
    judged: dict[tuple[str, int], int] = field(default_factory=dict)
    recent_windows: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=RECENT_WINDOWS))
    recent_alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    #: at-least-once: a batch's deliveries are awaited by the tap's loop before it acks the
    #: batch, while the next batch is judged (``take_unsettled``), instead of in ``process``
    defer_delivery: bool = False
    _unsettled: Awaitable[None] | None = None
    _reported_at: int = field(default_factory=wall_ms)
    _reported_records: int = 0

    @property
    def exactly_once(self) -> bool:
        """Whether outputs go through transactions."""
        return self.settings.processing_guarantee == "exactly_once"

    async def process(self, messages: Sequence[Any]) -> None:
        """Judge one batch of records (Faust Messages), flush state, produce outputs and
        changelog records."""
        stages = self.runtime.counters.stage_seconds
        began = perf_counter()
        emits: list[tuple[Any, list[Emit]]] = []
        last_of_partition: dict[int, Any] = {}
        last_of_tp: dict[tuple[str, int], Any] = {}
        now = wall_ms()
        released = self.runtime.released_partitions()
        if released:  # records already on the broker are waited for, never overtaken
            first: dict[int, Any] = {}
            for m in messages:
                first.setdefault(m.partition, m)
            for partition in released:
                if partition in first and (out := self.runtime.before_batch(partition)):
                    emits.append((first[partition], out))
        handle = self.runtime.handle
        for m in messages:  # a Faust message is what the runtime reads of a record
            out = handle(m)
            last_of_tp[m.tp] = m
            if out:
                emits.append((m, out))
        judged = self.judged
        for tp, m in last_of_tp.items():  # (a TP is a (topic, partition) tuple)
            self.tracker.saw(tp, m.offset, now)
            judged[tp] = m.offset + 1
            last_of_partition[m.partition] = m
        self.runtime.settle_stages()
        sends: list[Send] = []
        flushed: list[tuple[Any, Flushed]] = []
        decided = perf_counter()
        for partition, last in last_of_partition.items():
            self.runtime.persist(partition)
            store = self.stores.get(partition)
            if store is not None and store.dirty:
                flushed.append((last, store.flush()))
        for m, out in emits:
            sends.extend((m, e.name, e.partition, e.key, e.value) for e in out)
        written = perf_counter()
        stages["state_write"] += written - decided
        await self._produce(sends, defer=self.defer_delivery, flushed=flushed)
        finished = perf_counter()
        stages["produce"] += finished - written
        stages["batch"] += finished - began
        self.batches += 1
        self.records += len(messages)
        if self.options.echo:
            for _m, out in emits:
                for e in out:
                    if e.topic is not TopicId.METRICS_PARTIALS:  # internal, not news
                        print(describe(e.output), flush=True)
        if now - self._reported_at >= self.options.report_every * 1000:
            self._report(now)

    def _report(self, now: int) -> None:
        seconds = max((now - self._reported_at) / 1000, 1e-3)
        c = self.runtime.counters
        wms = ", ".join(f"p{p}={'-' if wm is None else format_time(wm)}"
                        for p, wm in self.runtime.watermarks().items())
        print(f"[{format_time(now)}] {self.records} records "
              f"({(self.records - self._reported_records) / seconds:,.0f}/s), "
              f"{sum(c.mismatches.values())} opened, {c.resolved} resolved, "
              f"{sum(c.commands.values())} commands, {c.dead_letters} dead letters; "
              f"watermarks {wms}", file=sys.stderr, flush=True)
        self._reported_at, self._reported_records = now, self.records

    async def _produce(self, sends: list[Send], defer: bool = False,
                       flushed: list[tuple[Any, Flushed]] | None = None) -> None:
        settle = await outputs.send(self.app, self.delivery, self.exactly_once, sends,
                                    defer=defer, flushed=flushed)
        if settle is not None:
            self._unsettled = settle

    def take_unsettled(self) -> Awaitable[None] | None:
        """What must complete before the records of the batch just processed are acked (its
        at-least-once deliveries, with ``defer_delivery``), or None; see ``tap.run``."""
        settle, self._unsettled = self._unsettled, None
        return None if settle is None else whole_or_exit(settle)

    async def aggregate(self, events: Sequence[Any]) -> None:
        """Fold metrics partials into final windows and alerts (the aggregator agent)."""
        await fill_head_gap(self.app, events[0].message)  # see streams/worker/offsets.py
        table = BlobTable(cast(Any, self.app.tables)[METRICS_TABLE], 0)
        raw = table.get(b"state")
        state = decode_state(raw) if raw else AggregatorState()
        rules = self.settings.rules
        aggregator = Aggregator(rules.metrics_window, rules.storm_threshold,
                                max(rules.storm_threshold + 1, 10), self.options.input_partitions)
        sends: list[Send] = []
        codec = self.runtime.codec
        metrics_name = self.topology.name(TopicId.METRICS)
        alerts_name = self.topology.name(TopicId.ALERTS)
        for event in events:
            message = event.message
            self.judged[(message.topic, message.partition)] = message.offset + 1
            windows, alerts = aggregator.on_partial(state, decode_partial(message.value),
                                                    wall_ms())
            for w in windows:
                key = format_time(w["window_start"]).encode()
                sends.append((event.message, metrics_name, 0, key,
                              codec.encode("MetricsWindow", w, metrics_name)))
                self.recent_windows.append(w)
            for a in alerts:
                sends.append((event.message, alerts_name, self._alert_partition(a),
                              alert_key(a).encode(), codec.encode("Alert", a, alerts_name)))
                self.recent_alerts.append(a)
                # -- alert webhook (best-effort: enqueue is O(1), delivery in the background) --
                if self.options.alert_webhook:
                    from streams.worker.webhook import sender_for
                    sender_for(self.options.alert_webhook).enqueue(a)
                # -- end alert webhook --
                if self.options.echo:
                    print(describe_alert(a), flush=True)
        table.put(b"state", encode_state(state))
        await self._produce(sends, flushed=[(events[-1].message, table.flush())])

    def _alert_partition(self, alert: dict[str, Any]) -> int:
        count = self.options.output_partitions[TopicId.ALERTS]
        return partition_for(alert_key(alert), count)

    def store_for(self, partition: int) -> TableStore:
        """The TableStore of a partition (created on first use)."""
        store = self.stores.get(partition)
        if store is None:
            tables: Any = self.app.tables
            store = TableStore(tables[ORDERS_TABLE], tables[META_TABLE], partition)
            store.prepare()
            self.stores[partition] = store
        return store

    def revoke(self, partitions: set[int]) -> None:
        """Forget cached state of partitions given away by a rebalance."""
        self.confirmations.forget(partitions)
        for p in partitions:
            store = self.stores.pop(p, None)
            if store is not None:
                store.close()
            self.runtime.forget(p)

    def end_offset(self, tp: tuple[str, int]) -> int | None:
        """The end offset the broker last reported for a topic-partition (the consumer's
        fetch highwater), None if none was reported yet."""
        try:
            end = self.app.consumer.highwater(faust.types.TP(*tp))
        except Exception:  # not assigned, or not fetched yet
            return None
        return end if isinstance(end, int) else None

    async def tick(self) -> None:
        """Send a Tick for inputs that are idle and caught up (see ``ticker.tick``)."""
        await ticker.tick(self)


def create_worker(settings: Settings, options: WorkerOptions) -> Worker:
    """Build the Faust app, its tables and agent for these settings."""
    faust_patch.apply()
    topology = Topology(options.input_partitions, settings.topic_prefix, settings.topic_overrides)
    app = build_app(settings, options)
    codec = Codec(registry_from(settings.schema_registry_url, settings.schema_registry_auth))
    worker_id = uuid.uuid4().hex[:12]
    holder: dict[str, Worker] = {}
    tracker = IdleTracker(settings.rules.idle_timeout, wall_ms(),
                          inputs=frozenset(topology.name(t) for t in INPUTS))
    runtime = Runtime(settings.rules, topology, codec,
                      lambda p: holder["worker"].store_for(p), options.output_partitions,
                      options.input_partitions, worker_id, position_of=tracker.position,
                      end_of=lambda tp: holder["worker"].end_offset(tp))
    worker = Worker(app, settings, options, runtime, tracker, topology, TailProbe(settings))
    holder["worker"] = worker
    setattr(app, faust_patch.GUARD_ATTRIBUTE, worker.delivery)  # read by commit_transactions
    setattr(app, faust_patch.STAGES_ATTRIBUTE, runtime.counters.stage_seconds)  # its "commit"
    setattr(app, confirm.CONFIRMATIONS_ATTRIBUTE, worker.confirmations)  # and this
    setattr(app, rocks_store.RESTORE_CONFIG_ATTRIBUTE, confluent_config(settings))  # its store

    channel = app.topic(*[topology.name(t) for t in INPUTS], topology.name(TopicId.TICKS),
                        key_type=bytes, value_type=bytes, key_serializer="raw",
                        value_serializer="raw")

    async def judge(stream: Any) -> None:
        try:
            async for events in stream.take_events(options.batch_max,
                                                   within=options.batch_within):
                # shielded: a stop cancels the agent (stream_wait_empty=False), and Faust
                # acks a batch the agent was cancelled in (take_events acks in `finally`);
                # the stop's final commit would then commit its offsets with only part of
                # its records sent. The batch finishes; that commit waits for its locks.
                # A batch that raises ends the process before anything commits.
                await asyncio.shield(whole_or_exit(worker.process([e.message for e in events])))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Faust's stream itself failed (the batches are whole)
            await fail(exc)

    app.agent(channel, name=AGENT_NAME)(judge)  # subscribes the inputs (and is the
    # "stream" path); with the tap installed, their records go to the tap instead
    if options.consume == "batch":
        tap.install()  # refuses (FaustCouplingError) a Faust it was not written for
        batch_tap = tap.BatchTap(app, channel.topics, options.batch_max, options.batch_within)
        setattr(app, tap.TAP_ATTRIBUTE, batch_tap)

        worker.defer_delivery = True

        async def judge_batches() -> None:
            try:
                await tap.run(batch_tap, lambda batch: whole_or_exit(worker.process(batch)),
                              worker.take_unsettled)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await fail(exc)

        app.task(judge_batches)

    partials = app.topic(topology.name(TopicId.METRICS_PARTIALS), key_type=bytes,
                         value_type=bytes, key_serializer="raw", value_serializer="raw")

    async def aggregate(stream: Any) -> None:
        try:
            async for events in stream.take_events(500, within=0.2):
                # as judge: never half a batch
                await asyncio.shield(whole_or_exit(worker.aggregate(events)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await fail(exc)

    async def fail(exc: BaseException) -> None:
        """Stop the whole worker: an agent that died must not leave a worker that only
        looks alive. Uncommitted work is aborted and redone after the restart."""
        log.critical("crosscheck worker stops: %s: %s", type(exc).__name__, exc, exc_info=exc)
        print(f"crosscheck: worker failed: {type(exc).__name__}: {exc}", file=sys.stderr,
              flush=True)
        await app.crash(exc)

    app.agent(partials, name=AGGREGATOR_NAME)(aggregate)
    app.timer(options.tick_interval)(worker.tick)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        partitions = {tp.partition for tp in revoked}
        dropping = getattr(app, tap.TAP_ATTRIBUTE, None)
        if dropping is not None:
            dropping.drop(revoked)
        worker.revoke(partitions)
        worker.tracker.forget([(tp.topic, tp.partition) for tp in revoked])

    app.on_partitions_revoked.connect(cast(Any, on_revoked))

    return worker


__all__ = ["Worker", "create_worker"]
