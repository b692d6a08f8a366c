"""Fixes for defects of Faust's (faust-streaming 0.15.3) recovery and commits, applied at start.

1. ``Recovery.on_recovery_completed`` resumes the stream partitions *before* it seeks
them to their committed offsets. Records fetched in between are skipped and acknowledged;
after the seek, the already fetched record N+1 arrives first and the re-fetched record N
(the one at the committed offset) is dropped as older than the last read offset. So on a
restart or rebalance the record at the committed offset of an input partition could be
skipped while its offset was committed: an input event lost (seen here on about one restart
in four). The replacement below is Faust's method with the seek moved before the resume.

2. Under exactly-once, the highwater recovery reads a changelog partition up to is the
consumer's *cached* last stable offset: the one of the last fetch response for that
partition, or None when it has not been fetched since it was assigned. A changelog
partition is only fetched while it is being recovered, so when a partition comes back to
a worker after a rebalance (it was recovered here before, then another worker wrote to it)
the cached value is stale or missing: with a stale one, recovery stops at the old end, or is
skipped, and the worker goes on from its local RocksDB as it was when the partition left
(orders without their newer events: false OVERSHIPMENT, SHIPPED_WITHOUT_PAYMENT, ...; found
with ``crosscheck chaos --rebalances 16``); with none (-1), the persisted offset is "higher
than the highwater" and recovery crashes with ConsistencyError. ``_highwaters`` now asks the
broker (ListOffsets; read_committed gives the last stable offset), as Faust already does
without transactions.

3. aiokafka commits a transaction even when sends in it failed (see
``streams/worker/delivery.py``). ``Producer.commit_transactions`` now first settles the
worker's tracked sends of each transaction (the app's ``crosscheck_delivery`` guard) under
the transaction's lock, and never commits one with a failed send. It also commits the
transactions of all partitions concurrently (Faust's method commits them one after another:
~50 ms of broker round trips each, so a worker with four partitions spent 200 ms per commit).
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer

from streams.worker import faults, faust_guard
from streams.worker.confirm import CONFIRMATIONS_ATTRIBUTE, Confirmations, confirm_now
from streams.worker.delivery import exit_failed_batch

#: the attribute of the Faust app that holds its DeliveryGuard
GUARD_ATTRIBUTE = "crosscheck_delivery"
#: the attribute of the Faust app that holds the worker's stage seconds (``commit`` is added)
STAGES_ATTRIBUTE = "crosscheck_stage_seconds"

log = logging.getLogger("crosscheck.worker")


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return
    if assignment:
        # first seek, then resume: nothing is fetched from a position about to be reset
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.completed.set()
    self.app.flow_control.resume()
    consumer.resume_flow()
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _highwaters(self: Any, partitions: Any) -> Any:
    """End offsets of the partitions, asked of the broker (read_committed: the last stable
    offset), never the cached value of the last fetch (see 2. above)."""
    return await self._ensure_consumer().end_offsets(partitions)


async def _commit_transactions(self: Any, tid_to_offset_map: Any, group_id: str,
                               start_new_transaction: bool = True) -> None:
    """Faust's method, with every tracked send of a transaction settled before its offsets
    are sent and it commits (see 3. above)."""
    guard = getattr(self.app, GUARD_ATTRIBUTE, None)
    stages = getattr(self.app, STAGES_ATTRIBUTE, None)
    began = perf_counter()
    try:
        await _commit_each(self, tid_to_offset_map, group_id, start_new_transaction, guard)
    finally:
        if stages is not None:
            stages["commit"] = stages.get("commit", 0.0) + perf_counter() - began


async def _commit_each(self: Any, tid_to_offset_map: Any, group_id: str,
                       start_new_transaction: bool, guard: Any) -> None:
    """Commit every transaction of the map, all at once: each has its own producer and lock,
    so their round trips to the broker (settle, offsets, commit, begin) overlap instead of
    adding up. A failure of one does not stop the others (each commits its own offsets with
    its own outputs, or not at all); the first failure is raised once all have finished."""
    results = await asyncio.gather(
        *(_commit_one(self, tid, offsets, group_id, start_new_transaction, guard)
          for tid, offsets in tid_to_offset_map.items()),
        return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _commit_one(self: Any, transactional_id: str, offsets: Any, group_id: str,
                      start_new_transaction: bool, guard: Any) -> None:
    confirmations = getattr(self.app, CONFIRMATIONS_ATTRIBUTE, None) or Confirmations()
    async with self._trn_locks[transactional_id]:
        transaction_producer = self._transaction_producers.get(transactional_id)
        if not transaction_producer:
            log.warning("Commit invoked for unknown transaction %s", transactional_id)
            return
        if guard is not None:
            await guard.settle(transactional_id, transaction_producer)
        committed = confirmations.take(transactional_id, transaction_producer)
        faults.before_commit()
        await transaction_producer.send_offsets_to_transaction(offsets, group_id)
        await transaction_producer.commit_transaction()
        if start_new_transaction:
            await transaction_producer.begin_transaction()
        confirm_committed(committed)  # the local state of the batches it covered


def confirm_committed(batches: list[Any]) -> None:
    """Confirm the local state of a committed transaction's batches (a database closed since
    is skipped: ``confirm_now``). Any other failure ends the process: a batch left
    unconfirmed while later ones are confirmed would be rolled back over them."""
    try:
        confirm_now(batches, committed=True)
    except Exception as exc:
        exit_failed_batch(exc)


def apply() -> None:
    """Install the fixed methods, and the shared RocksDB memory budget (idempotent), once
    ``faust_guard`` has found the installed Faust and aiokafka to be the ones they were
    written for (FaustCouplingError if not, unless overridden: see docs/faust.md)."""
    from streams.worker import rocksdb_budget

    faust_guard.ensure()
    rocksdb_budget.patch_faust()
    if Recovery.on_recovery_completed is not _on_recovery_completed:
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
    if AIOKafkaConsumerThread._highwaters is not _highwaters:
        AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
    if AIOKafkaProducer.commit_transactions is not _commit_transactions:
        AIOKafkaProducer.commit_transactions = _commit_transactions  # type: ignore[method-assign]
