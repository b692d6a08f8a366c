"""Faust's fetch loop (``Consumer._drain_messages``), patched to hand the tapped topics' records
to the worker's BatchTap instead of running each through Faust's per-record callback.

The loop is faust-streaming 0.15.3's, with ``Consumer.getmany`` inlined; both sources are
fingerprinted (``faust_guard``), so ``install`` refuses a Faust whose loop differs (see
``docs/faust.md``). What the tap does with the records: ``streams/worker/tap.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, cast

from faust.transport.consumer import CONSUMER_FETCHING, Consumer

from streams.worker import faust_guard
from streams.worker.tap_records import TAP_ATTRIBUTE, TapMessage


class Tap(Protocol):
    """What the fetch loop needs of the app's BatchTap."""

    topics: frozenset[str]

    def room(self) -> int: ...

    async def wait_room(self) -> None: ...

    def offer_many(self, messages: list[Any]) -> int: ...


def install() -> None:
    """Patch Faust's fetch loop to feed an app's tap (idempotent), once ``faust_guard`` has
    found the installed Faust to be the one the patch reproduces (FaustCouplingError if not,
    unless overridden)."""
    faust_guard.ensure()
    if Consumer._drain_messages is not _drain_messages:
        Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]


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
    tap = cast(Tap | None, getattr(self.app, TAP_ATTRIBUTE, None))
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


async def offer_fetched(consumer: Any, tap: Tap, records: Mapping[Any, list[Any]],
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

