"""Faust's RocksDB table store with the worker's local-state layout (``local_state``).

Registered as the ``crosscheck://`` store of the worker's tables. Over Faust's store it:

* rolls back, when it opens a partition's database, what batches whose transactions may not
  have committed wrote (``local_state.roll_back``), and upgrades a database of the earlier
  layout (its due index built from its orders);
* applies changelog records (Faust's recovery of active and standby partitions) in one
  WriteBatch with the orders' due index entries and the offset reached;
* when the recovery starts, before it reads the changelog offsets to start from, reads the
  assigned partitions' changelogs in bulk up to their end (``restore.catch_up``), so that
  Faust's per-record recovery has little or nothing left. (Not in the rebalance callback:
  a member whose callback outlasts its session timeout is dropped from the group.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import Store as FaustRocksStore
from faust.tables.recovery import Recovery

from streams.names import ORDERS_TABLE
from streams.worker import local_state, restore

log = logging.getLogger("crosscheck.worker")

#: the store URL of the worker's tables
STORE_URL = "crosscheck://"
#: the attribute of the Faust app holding the librdkafka config a bulk restore reads with
RESTORE_CONFIG_ATTRIBUTE = "crosscheck_restore_config"


def _say(line: str) -> None:
    print(f"crosscheck: {line}", file=sys.stderr, flush=True)


class Store(FaustRocksStore):
    """A worker table's RocksDB store (see the module docstring)."""

    @property
    def indexed(self) -> bool:
        """Whether this table's databases hold the due index (the orders table)."""
        return bool(self.table_name == ORDERS_TABLE)

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        undone, built = local_state.on_open(db, self.indexed)
        if undone:
            _say(f"{self.table_name} partition {partition}: rolled back {undone} batch(es) "
                 "whose transactions did not commit")
        if built:
            log.info("%s partition %d: upgraded to the current state format (due index "
                     "built, %d entries)", self.table_name, partition, built)
        return db

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        records: dict[int, list[local_state.Change]] = {}
        last: dict[int, int] = {}
        for event in batch:
            message = event.message
            records.setdefault(message.partition, []).append((message.key, message.value))
            last[message.partition] = max(message.offset, last.get(message.partition, -1))
        for partition, changes in records.items():
            local_state.apply_changelog(self._db_for_partition(partition), changes,
                                        last[partition], self.indexed)

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any,
                           generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topics = self.table.changelog_topic.topics
        await self._roll_back_standbys({tp for tp in assigned if tp.topic in topics})

    async def catch_up(self, tps: Iterable[Any], config: dict[str, Any]) -> None:
        """Read these changelog partitions of this table in bulk up to their end (called by
        the recovery, outside the rebalance callback: a group member whose callback takes
        longer than its session timeout is dropped from the group)."""
        targets: list[restore.Target] = []
        async with self.db_lock:
            for tp in sorted(tps):
                targets.append((tp.topic, tp.partition, self._db_for_partition(tp.partition),
                                self.indexed))
            restored = await asyncio.to_thread(restore.catch_up, config, targets)
        restore.describe(restored, _say)

    async def _roll_back_standbys(self, assigned: set[Any]) -> None:
        """A partition this worker judged until this rebalance and now keeps as a standby
        stays open: what its last, aborted, transaction wrote is rolled back before the
        standby applies the new owner's changelog records (under the partition's
        transaction locks, so that no commit of it is between its commit and its confirm)."""
        try:
            standbys = self.app.assignor.assigned_standbys()
        except Exception:  # no assignor yet
            return
        for tp in sorted(assigned & set(standbys)):
            db = self._dbs.get(tp.partition)
            if db is None:
                continue
            async with contextlib.AsyncExitStack() as locks:
                for lock in _transaction_locks(self.app, tp.partition):
                    await locks.enter_async_context(lock)
                undone = local_state.roll_back(db)
            if undone:
                _say(f"{self.table_name} partition {tp.partition} (now a standby here): rolled "
                     f"back {undone} batch(es) whose transactions did not commit")


async def build_offsets(recovery: Any, consumer: Any, tps: Any, destination: Any,
                        title: str) -> None:
    """``Recovery._build_offsets``, after a bulk catch-up of the worker's tables' partitions
    among ``tps`` (their applied offsets, read at assignment, are read again after it)."""
    config = getattr(recovery.app, RESTORE_CONFIG_ATTRIBUTE, None)
    if config is not None:
        by_store: dict[int, tuple[Store, list[Any]]] = {}
        for tp in tps:
            table = recovery.tp_to_table.get(tp)
            store = getattr(table, "data", None)
            if isinstance(store, Store):
                by_store.setdefault(id(store), (store, []))[1].append(tp)
        for store, of_store in by_store.values():
            await store.catch_up(of_store, config)
            for tp in of_store:
                applied = store.persisted_offset(tp)
                if applied is not None:
                    destination[tp] = applied
    await _faust_build_offsets(recovery, consumer, tps, destination, title)


_faust_build_offsets = Recovery._build_offsets


def _transaction_locks(app: Any, partition: int) -> list[Any]:
    """The locks of the transactions of a partition number (Faust's transactional ids end
    with it), in a stable order."""
    locks = getattr(getattr(app, "producer", None), "_trn_locks", None) or {}
    suffix = f"-{partition}"
    return [locks[tid] for tid in sorted(locks) if tid.endswith(suffix)]


def register() -> None:
    """Make ``STORE_URL`` name this store, and have the recovery catch up in bulk first
    (idempotent)."""
    STORES.aliases["crosscheck"] = f"{__name__}:Store"
    if Recovery._build_offsets is not build_offsets:
        Recovery._build_offsets = build_offsets  # type: ignore[method-assign,assignment]
