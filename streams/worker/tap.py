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

The patched fetch loop is in ``fetch_loop.py``, the records and batches the tap hands out
in ``tap_records.py``. ``install`` refuses a faust-streaming whose loop is not the one the
patch reproduces (``faust_guard``; see ``docs/faust.md``): the worker then stops with a
reason instead of guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from time import monotonic
from typing import Any, cast

from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.worker import fetch_loop
from streams.worker.tap_records import TAP_ATTRIBUTE, Batch, BatchMark, TapMessage

log = logging.getLogger("crosscheck.worker")

__all__ = ["TAP_ATTRIBUTE", "Batch", "BatchMark", "BatchTap", "TapMessage", "close", "install",
           "run"]


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



def install() -> None:
    """Patch Faust's fetch loop to feed an app's tap (idempotent; ``fetch_loop.install``).
    FaustCouplingError if the installed Faust is not the one the patch reproduces."""
    fetch_loop.install()


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
    log.info("input records of %s reach the worker in batches below Faust's stream (the "
             "batch tap)", ", ".join(sorted(tap.topics)))
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
