"""How the worker sends a batch's outputs and changelog records (exactly-once or not)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from streams.worker.confirm import CONFIRMATIONS_ATTRIBUTE, Confirmations, Staged, confirm_now
from streams.worker.delivery import DeliveryGuard, check
from streams.worker.store import Flushed

#: one record to send: (source Faust Message, topic, partition, key, value)
Send = tuple[Any, str, int, bytes | None, bytes | None]

async def send(app: Any, delivery: DeliveryGuard, exactly_once: bool,
               sends: list[Send], defer: bool = False,
               flushed: list[tuple[Any, Flushed]] | None = None) -> Awaitable[None] | None:
    """Send a batch's records and the changelog records of its ``flushed`` state (each with
    the source Faust Message whose partition's transaction carries it): in the source
    partitions' transactions under exactly-once (checked before each commits: ``delivery``;
    the staged state is confirmed after it committed), else delivered (all acknowledged, the
    staged state then confirmed) before this returns; or, with ``defer``, before the returned
    awaitable completes (None: nothing to wait for), which the caller awaits before it acks
    the batch's records."""
    flushed = flushed or []
    if exactly_once:
        await send_in_transactions(app, delivery, sends, flushed)
        return None
    producer = app.producer._ensure_producer()  # aiokafka's, below Faust's per-record send
    futures = await send_by_partition(producer, sends)
    staged = [await _send_staged(producer, f) for _source, f in flushed]
    futures.extend(fut for s in staged if s is not None for _t, _p, fut, _n in s.sends)
    if not futures and not staged:
        return None
    # at-least-once: outputs are delivered before the batch's offsets are acked; a refused
    # one ends the process before they are (see streams/worker/delivery.py)
    delivered = _delivered(futures, [s for s in staged if s is not None])
    if defer:
        return delivered
    await delivered
    return None


async def _delivered(futures: list[Any], staged: list[Staged]) -> None:
    """Until every send is acknowledged (a refused one ends the process: ``check``); then the
    staged state is confirmed."""
    await check(await asyncio.gather(*futures, return_exceptions=True), None, None)
    confirm_now(staged)


async def _send_staged(producer: Any, flushed: Flushed) -> Staged | None:
    """Send a flush's changelog records; its staged batch, with the sends' futures."""
    staged = flushed.staged
    by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    for w in flushed.writes:
        by_partition.setdefault((w.topic, w.partition), []).append((w.key, w.value))
    for (topic, partition), records in by_partition.items():
        for future, count in await send_counted(producer, topic, partition, records):
            if staged is not None:
                staged.sends.append((topic, partition, future, count))
    return staged


async def send_in_transactions(app: Any, delivery: DeliveryGuard, sends: list[Send],
                               flushed: list[tuple[Any, Flushed]] | None = None) -> None:
    """Send one batch's records while holding the locks of all its transactions.

    Faust commits a transaction (offsets + commit) under the same per-transactional-id
    lock its ``send`` takes for every single record. Sending record by record let a
    commit land in the middle of a batch: its changelog records committed, its outputs
    left in the next transaction, lost when the process died before that one committed
    (the restarted worker, its state restored with the batch applied, never re-emitted
    them); and a stop's final commit (which ends the transactions) could come between
    two of a batch's transactions. Holding every lock the batch needs (taken in sorted
    order; Faust's commit takes each one) until all its records are sent keeps a batch's
    state and outputs whole in the transactions that commit its offsets.

    Every send is tracked by ``delivery``: a transaction commits only once all of them are
    acknowledged (aiokafka would commit over a failed one). Each flushed state's batch is
    registered with its transaction (the app's ``Confirmations``) while the lock is held, so
    the commit that covers its changelog records confirms it.
    """
    producer: Any = app.producer
    by_tid: dict[str, list[Send]] = {}
    flushed_by_tid: dict[str, list[Flushed]] = {}
    tids: dict[tuple[str, int], str] = {}  # per source topic-partition

    def tid_of(source: Any) -> str:
        tp = (source.topic, source.partition)
        tid = tids.get(tp)
        if tid is None:
            tid = tids[tp] = transactional_id(app, source)
        return tid

    for record in sends:
        tid = tid_of(record[0])
        of_tid = by_tid.get(tid)
        if of_tid is None:
            of_tid = by_tid[tid] = []
        of_tid.append(record)
    for source, f in flushed or ():
        flushed_by_tid.setdefault(tid_of(source), []).append(f)
    confirmations: Confirmations | None = getattr(app, CONFIRMATIONS_ATTRIBUTE, None)
    async with contextlib.AsyncExitStack() as locks:
        for tid in sorted(by_tid.keys() | flushed_by_tid.keys()):
            await locks.enter_async_context(producer._trn_locks[tid])
        for tid in by_tid.keys() | flushed_by_tid.keys():
            transaction = producer._transaction_producers.get(tid)
            if transaction is None:
                raise RuntimeError(f"no transaction producer for {tid}")
            for future in await send_by_partition(transaction, by_tid.get(tid, [])):
                delivery.track(tid, transaction, future)
            staged: list[Staged] = []
            for f in flushed_by_tid.get(tid, ()):
                batch = await _send_staged(transaction, f)
                if batch is None:
                    continue
                for _topic, _partition, future, _count in batch.sends:
                    delivery.track(tid, transaction, future)
                staged.append(batch)
            if staged:
                if confirmations is None:
                    raise RuntimeError("the app has no Confirmations for its staged state")
                confirmations.sent(tid, transaction, staged)


async def send_by_partition(producer: Any, sends: list[Send]) -> list[Any]:
    """Send records through one aiokafka producer, each destination partition's in order as
    ``send_batches``; the batches' futures."""
    by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    for _source, topic, partition, key, value in sends:
        by_partition.setdefault((topic, partition), []).append((key, value))
    futures = []
    for (topic, partition), records in by_partition.items():
        futures.extend(await send_batches(producer, topic, partition, records))
    return futures


async def send_batches(producer: Any, topic: str, partition: int,
                       records: list[tuple[bytes | None, bytes | None]]) -> list[Any]:
    """Send one partition's records, in order, as few record batches (aiokafka's
    ``create_batch``/``send_batch``: one append each and one future per batch, instead of a
    coroutine, a future and an accumulator lookup per record); the batches' futures."""
    return [future for future, _count in await send_counted(producer, topic, partition,
                                                             records)]


async def send_counted(producer: Any, topic: str, partition: int,
                       records: list[tuple[bytes | None, bytes | None]]
                       ) -> list[tuple[Any, int]]:
    """``send_batches``, each batch's future with how many records it holds (its result is
    the batch's first offset).

    A batch holds records up to the producer's batch size (the first record always fits, so
    one larger than that goes alone, as ``send`` would send it)."""
    if not records:
        return []
    sent: list[tuple[Any, int]] = []
    batch = producer.create_batch()
    count = 0
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
            count = 0
        count += 1
    sent.append((await producer.send_batch(batch, topic, partition=partition), count))
    return sent


def transactional_id(app: Any, source: Any) -> str:
    """The transactional id Faust commits the offsets of this source record's partition with."""
    group = app.assignor.group_for_topic(source.topic)
    return f"{app.conf.id}-{group}-{source.partition}"
