"""BatchTap: the judge topics' records handed to the worker in batches, below Faust's stream.

Faust delivers a fetched record through a chain of per-record coroutines: the fetch loop
(``Consumer._drain_messages``) runs the conductor's callback for each one under
``wait_first`` (two tasks per record), the conductor takes the flow-control and producer
locks and builds an ``Event``, puts it on the channel's queue, and the agent's stream takes
it off again, runs its sensors and processors, and acks it. Measured here at 60-65 µs of a
worker's ~200 µs per record (a third of the exactly-once worker's wall time, of which about
a third was its CPU and the rest its tasks waiting on each other).

With the tap installed (``install``), the fetch loop is Faust's own, patched at one point:
the records of a tapped topic go into the tap's buffer (a plain list), a fetched partition's
records at a time as light ``TapMessage`` objects (``offer_fetched``), instead of going
through the callback (and ``getmany`` is inlined into it, reading each partition's highwater
once per fetch instead of once per record). ``batches()`` yields up to ``batch_max`` records
at a time, when the buffer holds that many or ``within`` seconds have passed, as
``take_events`` did; the worker judges the batch and then ``ack``s it, so Faust's offset
commits (and under exactly-once its transaction commits) cover exactly the records whose
outputs were sent. Everything else is
Faust's as before: group membership, partition assignment, recovery, commits, other topics.

What the stream did that the tap keeps:
* A record fetched while flow is suspended (a rebalance under way) or of an older consumer
  generation is dropped, neither judged nor acked: after the rebalance Faust seeks to the
  committed offsets and fetches it again. (The stream skipped and acked such records.)
* When partitions are revoked, their buffered records are dropped (``drop``), and while
  flow is suspended (a rebalance or a stop under way) no batch is taken and the whole
  buffer is dropped, as Faust clears its channel queues.
* When the worker stops, ``close`` (called before the app stops) lets the batch under way
  finish and be acked, and takes no other: Faust's final commit covers exactly the judged
  records, with their outputs.
* A batch being judged is tracked as unacked (``Consumer.unacked``: one ``BatchMark`` for
  the batch, not each record) until acked, so a rebalance or a stop waits for it; and the
  monitor's per-partition ``stream_inbound_time`` is kept, so Faust's slow-processing
  checks see a stream that is working.
* Back-pressure: the fetch loop waits (or gives up, when flow is suspended) while the buffer
  holds ``2 * batch_max`` records, as it waited on a full channel queue.

The patched method is faust-streaming 0.15's ``Consumer._drain_messages``; ``install``
refuses any other version rather than guess (the worker then keeps Faust's stream path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from importlib import metadata
from time import monotonic
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger("crosscheck.worker")

#: the attribute of the Faust app that holds its BatchTap (read by the patched fetch loop)
TAP_ATTRIBUTE = "crosscheck_tap"
#: the faust-streaming releases whose ``Consumer._drain_messages`` the patch reproduces
SUPPORTED_FAUST = ("0.15.",)


class TapMessage:
    """A fetched record of a tapped topic, as the worker reads it: what the runtime, the
    batch loop and ``ack`` use (Faust's ``ConsumerMessage`` sets twenty attributes a record,
    and its ``_to_message`` was the fetch loop's largest cost)."""

    __slots__ = (
        "acked",
        "generation_id",
        "key",
        "offset",
        "partition",
        "topic",
        "tp",
        "value",
    )

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, tp: Any, generation_id: int) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.tp = tp
        self.generation_id = generation_id
        self.acked = False


class BatchMark:
    """What Faust's set of unacked messages (``Consumer._unacked_messages``, a WeakSet)
    holds for a batch being judged, instead of each of its records: ``wait_empty`` (a
    rebalance, a stop) waits until it is acked. (Adding and discarding each record there
    cost ~2.5 % of the worker's main thread.) Records waiting in the buffer are not tracked:
    none of them is judged while flow is suspended, and they are dropped then."""

    __slots__ = ("__weakref__", "acked", "offset", "refcount", "tp")

    def __init__(self) -> None:
        self.acked = False
        self.refcount = 1
        self.tp = None  # not a record: ``fill_head_gap`` compares tp and offset
        self.offset = -1


class Batch(list[Any]):
    """Records taken from the tap together, with the mark Faust's consumer tracks them by."""

    __slots__ = ("mark",)

    def __init__(self, records: Iterable[Any]) -> None:
        super().__init__(records)
        self.mark = BatchMark()


class BatchTap:
    """A buffer of fetched records of some topics, taken out in batches (see module doc)."""

    def __init__(self, app: Any, topics: Iterable[str], batch_max: int, within: float) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.batch_max = batch_max
        self.within = within
        self.limit = 2 * batch_max
        self._buffer: list[Any] = []
        self._full = asyncio.Event()  # the buffer holds a whole batch
        self._room = asyncio.Event()  # the buffer is below ``limit``
        self._room.set()
        self._idle = asyncio.Event()  # no batch is being judged
        self._idle.set()
        #: acks waiting for their batch's deliveries (see ``run``)
        self._settling: set[asyncio.Task[None]] = set()
        self.closing = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._buffer)

    async def wait_room(self) -> None:
        """Until the buffer is below its limit."""
        await self._room.wait()

    def offer_many(self, messages: list[Any]) -> int:
        """Add fetched records (in order); how many were added. A record is dropped if it
        belongs to an older generation, and all are while flow is suspended (see the module
        docstring)."""
        app = self.app
        if not app.flow_control.is_active():
            self.dropped += len(messages)
            return 0
        generation = app.consumer_generation_id
        kept = [m for m in messages if m.generation_id == generation]
        self.dropped += len(messages) - len(kept)
        buffer = self._buffer
        buffer.extend(kept)
        if len(buffer) >= self.batch_max:
            self._full.set()
            if len(buffer) >= self.limit:
                self._room.clear()
        return len(kept)

    def room(self) -> int:
        """How many records the fetch loop may add now."""
        return self.limit - len(self._buffer)

    def take(self) -> list[Any]:
        """Up to ``batch_max`` records, in fetch order, of the current generation."""
        buffer = self._buffer
        batch = buffer[:self.batch_max]
        del buffer[:self.batch_max]
        self._refresh()
        generation = self.app.consumer_generation_id
        fresh = [m for m in batch if m.generation_id == generation]
        if len(fresh) != len(batch):
            self.dropped += len(batch) - len(fresh)
        if not fresh:
            return fresh
        inbound = self.app.monitor.stream_inbound_time
        now = monotonic()
        for tp in {m.tp for m in fresh}:
            inbound[tp] = now
        taken = Batch(fresh)
        self.app.consumer._unacked_messages.add(taken.mark)
        return taken

    def _refresh(self) -> None:
        """Set ``_full`` and ``_room`` after records left the buffer (``offer_many``, which only
        adds, sets them itself: it runs per fetched chunk)."""
        size = len(self._buffer)
        if size < self.batch_max:
            self._full.clear()
        if size < self.limit:
            self._room.set()

    def drop(self, tps: Iterable[Any]) -> int:
        """Forget the buffered records of these topic-partitions (revoked); how many."""
        gone = set(tps)
        before = len(self._buffer)
        self._buffer = [m for m in self._buffer if m.tp not in gone]
        self._refresh()
        self.dropped += before - len(self._buffer)
        return before - len(self._buffer)

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Batches of records, each as soon as it is whole or ``within`` seconds passed,
        until ``close``. None is taken while flow is suspended (a rebalance or a stop under
        way): the buffer is dropped then, as Faust clears its channel queues, since those
        records are fetched again from the committed offsets."""
        while not self.closing:
            if len(self._buffer) < self.batch_max:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.within)
            if self.closing:
                return
            if not self.app.flow_control.is_active():
                self.drop_all()
                continue
            batch = self.take()
            if batch:
                yield batch

    def drop_all(self) -> int:
        """Forget every buffered record; how many."""
        return self.drop({m.tp for m in self._buffer})

    async def close(self) -> None:
        """Take no more batches, and wait until the one being judged is judged and acked.

        Called when the worker begins to stop, before Faust stops its consumer: its final
        commit then covers that batch with its outputs. (Without this a batch could be
        judged, its state written to the local RocksDB, after that commit ended the
        transactions; the clean restart from local state then saw its records as already
        judged, and their outputs were lost. Found by the SIGTERM restart test.)
        """
        self.closing = True
        self._full.set()  # wakes ``batches``
        await self._idle.wait()
        while self._settling:  # judged batches whose deliveries are not yet acknowledged
            await asyncio.wait(set(self._settling))

    def _ack_when(self, batch: list[Any], settle: Awaitable[None] | None) -> None:
        """Ack the batch now, or once ``settle`` has completed (in a task ``close`` waits
        for; a failed delivery ends the process in ``settle``, so the batch is not acked)."""
        if settle is None:
            self.ack(batch)
            return

        async def ack_settled() -> None:
            await settle
            self.ack(batch)

        task = asyncio.ensure_future(ack_settled())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def ack(self, batch: Iterable[Any]) -> None:
        """Mark a judged batch's records as done: Faust's next commit covers their offsets.

        What ``Consumer.ack`` of faust-streaming 0.15 does for each record, for the whole
        batch under one hold of its ``ack_lock`` (one topic check per topic, one wake-up of
        a commit waiting for acks): per record it cost ~1 us of the worker's main thread."""
        consumer = self.app.consumer
        if isinstance(batch, Batch):
            batch.mark.acked = True
            consumer._unacked_messages.discard(batch.mark)
        acks_enabled_for = self.app.topics.acks_enabled_for
        committed_offset = consumer._committed_offset
        acked_index_of = consumer._acked_index
        acked_of = consumer._acked
        enabled: dict[str, bool] = {}
        count = 0
        with ack_lock:
            try:
                for message in batch:
                    if message.acked:
                        continue
                    message.acked = True
                    topic = message.topic
                    on = enabled.get(topic)
                    if on is None:
                        on = enabled[topic] = bool(acks_enabled_for(topic))
                    if not on:
                        continue
                    tp, offset = message.tp, message.offset
                    committed = committed_offset[tp]
                    if committed is None or offset >= committed:
                        acked_index = acked_index_of[tp]
                        if offset not in acked_index:
                            acked_index.add(offset)
                            acked_of[tp].append(offset)
                            count += 1
            finally:
                consumer._n_acked += count
                notify(consumer._waiting_for_ack)


def supported() -> bool:
    """Whether the installed faust-streaming is one the patched fetch loop reproduces."""
    try:
        version = metadata.version("faust-streaming")
    except metadata.PackageNotFoundError:
        return False
    return version.startswith(SUPPORTED_FAUST)


def install() -> bool:
    """Patch Faust's fetch loop to feed an app's tap (idempotent); False if not supported."""
    if not supported():
        log.warning("faust-streaming %s is not one the batch tap supports (%s): the worker "
                    "uses Faust's per-record stream path", _version(), SUPPORTED_FAUST)
        return False
    if Consumer._drain_messages is not _drain_messages:
        Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    return True


def _version() -> str:
    try:
        return metadata.version("faust-streaming")
    except metadata.PackageNotFoundError:
        return "(not installed)"


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
    """Faust 0.15's ``Consumer._drain_messages`` with its ``getmany`` inlined, and records of
    tapped topics handed to the app's BatchTap (``offer_fetched``) instead of being run
    through the per-record callback.

    For the other topics ``getmany`` (an async generator) is inlined as it is, record for
    record (the scheduler's round-robin order, the flow and generation checks before each
    record, the active partitions), but for one thing: the partition's highwater is read and
    handed to the monitor once per fetched topic-partition, not once per record (the monitor
    keeps the last value; it was ~1 us a record through three layers of calls)."""
    callback = self.callback
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    tap = cast(BatchTap | None, getattr(self.app, TAP_ATTRIBUTE, None))
    tapped = tap.topics if tap is not None else frozenset()

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    app = self.app
    to_message = self._to_message
    highwater = self.highwater
    track_end_offset = app.monitor.track_tp_end_offset

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            # Sleeping because sometimes getmany is called in a loop
            # never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                # -- Consumer.getmany, inlined --
                records, active_partitions = await self._wait_next_records(1.0)
                generation_id = app.consumer_generation_id
                if records is None or self.should_stop:
                    unset_flag(flag_consumer_fetching)
                    continue
                if not self.flow_active:
                    self.log.dev("getmany called while flow not active. "
                                 "Seek back to committed offsets.")
                    try:
                        await self.perform_seek()
                    except Exception as ex:
                        self.log.warning(
                            f"exception performing seek when flow not active {ex}")
                    unset_flag(flag_consumer_fetching)
                    continue
                if tap is not None:
                    await offer_fetched(self, tap, records, active_partitions, generation_id)
                    records = {tp: r for tp, r in records.items() if tp.topic not in tapped}
                tracked_end: set[Any] = set()
                for tp, record in self.scheduler.iterate(records):
                    if not self.flow_active:
                        break
                    if app.consumer_generation_id != generation_id:
                        self.log.dev("Generation id changed from %r to %r. Cancelling getmany.",
                                     generation_id, app.consumer_generation_id)
                        break
                    if not (active_partitions is None or tp in active_partitions
                            or tp in self._buffered_partitions):
                        continue
                    if tp not in tracked_end:
                        tracked_end.add(tp)
                        track_end_offset(tp, highwater(tp))
                    message = to_message(tp, record)
                    # -- the body of Faust's loop over getmany --
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        # We have a gap in income messages
                        if gap > 1 and r_offset:
                            acks_enabled = acks_enabled_for(message.topic)
                            if acks_enabled:
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                     offset, message.key, message.value)
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


async def offer_fetched(consumer: Any, tap: BatchTap, records: Mapping[Any, list[Any]],
                        active_partitions: Any, generation_id: int) -> None:
    """Hand one fetch's records of the tapped topics to the tap, a topic-partition at a time.

    What Faust's loop does for each record, done for a partition's records together: the
    flow and generation checks (before each partition, and again in ``offer_many``), the
    active partitions, the highwater handed to the monitor, the read offset (a record below
    it is dropped), a gap in the offsets registered (transaction markers), a commit once
    ``commit_every`` records were acked, and back-pressure: records go in as the buffer has
    room, the loop waiting (or giving up, when flow is suspended) while it is full. Records
    become ``TapMessage`` objects, tracked by their batch (``BatchMark``) once taken. The
    partitions of one fetch are handed over one after another, not interleaved record by
    record: a batch's order across partitions carries no meaning (each partition's records
    stay in order, and each has its own transaction)."""
    app = consumer.app
    read_offset = consumer._read_offset
    commit_every = consumer._commit_every
    for tp, fetched in records.items():
        if tp.topic not in tap.topics:
            continue
        if not consumer.flow_active or app.consumer_generation_id != generation_id:
            return
        if not (active_partitions is None or tp in active_partitions
                or tp in consumer._buffered_partitions):
            continue
        app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
        topic, partition = tp.topic, tp.partition
        acks_enabled = app.topics.acks_enabled_for(topic)
        r_offset = read_offset[tp]
        messages = []
        for record in fetched:
            offset = record.offset
            if r_offset is not None and offset < r_offset:
                consumer.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                 offset, record.key, record.value)
                continue
            if r_offset and offset - r_offset > 1 and acks_enabled:
                await consumer._add_gap(tp, r_offset + 1, offset)
            messages.append(TapMessage(topic, partition, offset, record.key, record.value, tp,
                                       generation_id))
            r_offset = offset
        if commit_every is not None and consumer._n_acked >= commit_every:
            consumer._n_acked = 0
            await consumer.commit()
        start = 0
        while start < len(messages):
            room = tap.room()
            if room <= 0:
                await consumer.wait_first(tap.wait_room(), consumer.suspend_flow.wait())
                if (tap.room() <= 0 or not consumer.flow_active
                        or app.consumer_generation_id != generation_id):
                    return  # flow suspended: after the rebalance Faust seeks back
                continue
            chunk = messages[start:start + room]
            tap.offer_many(chunk)
            start += len(chunk)
            read_offset[tp] = chunk[-1].offset
            await asyncio.sleep(0)  # the batch loop runs between chunks


#: batches judged whose acks still wait for their deliveries (at-least-once): the loop
#: judges no further batch while this many wait
MAX_UNSETTLED = 2


async def run(tap: BatchTap, judge: Callable[[list[Any]], Awaitable[None]],
              unsettled: Callable[[], Awaitable[None] | None] = lambda: None) -> None:
    """The worker's batch loop over a tap: judge each batch whole, then ack it.

    A batch is never left half done: it runs shielded, and when the loop is cancelled it
    still finishes, and only then are its records acked, so a commit covers
    a batch's offsets only after all its outputs were sent. (``judge`` ends the process
    itself when a batch fails: see ``delivery.whole_or_exit``.)

    ``unsettled()``, asked after each batch, is what must complete before that batch's
    records are acked (at-least-once: the broker's acknowledgement of its outputs), or None.
    The next batch is judged meanwhile (up to ``MAX_UNSETTLED`` batches wait), and the batch
    is acked when it completes; ``close`` waits for them too. (Waiting in the loop left the
    worker idle for the producer's linger and a round trip to the broker, every batch.)
    """
    async for batch in tap.batches():
        tap._idle.clear()
        try:
            while len(tap._settling) >= MAX_UNSETTLED:
                await asyncio.wait(set(tap._settling), return_when=asyncio.FIRST_COMPLETED)
            work = asyncio.ensure_future(judge(batch))
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                if not work.cancelled() and work.exception() is None:
                    settle = unsettled()
                    if settle is not None:
                        await asyncio.shield(settle)
                    tap.ack(batch)
                raise
            tap._ack_when(batch, unsettled())
        finally:
            tap._idle.set()


async def close(app: Any) -> None:
    """``BatchTap.close`` of the app's tap, if it has one."""
    batch_tap = cast(BatchTap | None, getattr(app, TAP_ATTRIBUTE, None))
    if batch_tap is not None:
        await batch_tap.close()
