"""How the worker sends a batch's outputs and changelog records (exactly-once or not)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from streams.worker.delivery import DeliveryGuard, check

#: one record to send: (source Faust Message, topic, partition, key, value)
Send = tuple[Any, str, int, bytes | None, bytes | None]


async def send(app: Any, delivery: DeliveryGuard, exactly_once: bool,
               sends: list[Send], defer: bool = False) -> Awaitable[None] | None:
    """Send a batch's records: in the source partitions' transactions under exactly-once
    (checked before each commits: ``delivery``), else delivered (all acknowledged) before
    this returns; or, with ``defer``, before the returned awaitable completes (None: nothing
    to wait for), which the caller awaits before it acks the batch's records."""
    if exactly_once:
        await send_in_transactions(app, delivery, sends)
        return None
    producer = app.producer._ensure_producer()  # aiokafka's, below Faust's per-record send
    futures = await send_by_partition(producer, sends)
    if not futures:
        return None
    # at-least-once: outputs are delivered before the batch's offsets are acked; a refused
    # one ends the process before they are (see streams/worker/delivery.py)
    delivered = _delivered(futures)
    if defer:
        return delivered
    await delivered
    return None


async def _delivered(futures: list[Any]) -> None:
    """Until every send is acknowledged; a refused one ends the process (``check``)."""
    await check(await asyncio.gather(*futures, return_exceptions=True), None, None)


async def send_in_transactions(app: Any, delivery: DeliveryGuard, sends: list[Send]) -> None:
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
    acknowledged (aiokafka would commit over a failed one).
    """
    producer: Any = app.producer
    by_tid: dict[str, list[Send]] = {}
    tids: dict[tuple[str, int], str] = {}  # per source topic-partition
    for record in sends:
        source = record[0]
        tp = (source.topic, source.partition)
        tid = tids.get(tp)
        if tid is None:
            tid = tids[tp] = transactional_id(app, source)
        of_tid = by_tid.get(tid)
        if of_tid is None:
            of_tid = by_tid[tid] = []
        of_tid.append(record)
    async with contextlib.AsyncExitStack() as locks:
        for tid in sorted(by_tid):
            await locks.enter_async_context(producer._trn_locks[tid])
        for tid, of_tid in by_tid.items():
            transaction = producer._transaction_producers.get(tid)
            if transaction is None:
                raise RuntimeError(f"no transaction producer for {tid}")
            for future in await send_by_partition(transaction, of_tid):
                delivery.track(tid, transaction, future)


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
    coroutine, a future and an accumulator lookup per record); the batches' futures.

    A batch holds records up to the producer's batch size (the first record always fits, so
    one larger than that goes alone, as ``send`` would send it)."""
    if not records:
        return []
    futures = []
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    futures.append(await producer.send_batch(batch, topic, partition=partition))  # not empty
    return futures


def transactional_id(app: Any, source: Any) -> str:
    """The transactional id Faust commits the offsets of this source record's partition with."""
    group = app.assignor.group_for_topic(source.topic)
    return f"{app.conf.id}-{group}-{source.partition}"
