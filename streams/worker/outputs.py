"""How the worker sends a batch's outputs and changelog records (exactly-once or not)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from streams.worker.delivery import DeliveryGuard, check

#: one record to send: (source Faust Message, topic, partition, key, value)
Send = tuple[Any, str, int, bytes | None, bytes | None]


async def send(app: Any, delivery: DeliveryGuard, exactly_once: bool,
               sends: list[Send]) -> None:
    """Send a batch's records: in the source partitions' transactions under exactly-once,
    else delivered (all acknowledged) before this returns."""
    if exactly_once:
        await send_in_transactions(app, delivery, sends)
        return
    producer = app.producer
    futures = []
    for _source, topic, partition, key, value in sends:
        futures.append(await producer.send(topic, key, value, partition, None, None))
    if futures:
        # at-least-once: outputs are delivered before the batch's offsets are acked; a
        # refused one ends the process before they are (see streams/worker/delivery.py)
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
    by_tid: dict[str, list[tuple[str, int, bytes | None, bytes | None]]] = {}
    for source, topic, partition, key, value in sends:
        by_tid.setdefault(transactional_id(app, source), []).append(
            (topic, partition, key, value))
    async with contextlib.AsyncExitStack() as locks:
        for tid in sorted(by_tid):
            await locks.enter_async_context(producer._trn_locks[tid])
        for tid, records in by_tid.items():
            transaction = producer._transaction_producers.get(tid)
            if transaction is None:
                raise RuntimeError(f"no transaction producer for {tid}")
            track = delivery.track
            for topic, partition, key, value in records:
                track(tid, transaction,
                      await transaction.send(topic, value, key=key, partition=partition))


def transactional_id(app: Any, source: Any) -> str:
    """The transactional id Faust commits the offsets of this source record's partition with."""
    group = app.assignor.group_for_topic(source.topic)
    return f"{app.conf.id}-{group}-{source.partition}"
