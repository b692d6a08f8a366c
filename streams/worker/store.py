"""A StateStore over the worker's Faust tables (RocksDB + changelog), written back once per batch.

The engine reads and writes through an in-memory overlay of the partition's dirty keys;
``flush()`` writes each dirty key once: one RocksDB WriteBatch per table, with the undo
records of the batch (``local_state.stage``), and one changelog record per key that the
worker produces in the partition's transaction, together with the outputs and the consumed
offsets. Once that transaction committed the batch is confirmed (``streams/worker/confirm.py``);
a batch never confirmed is rolled back when the database is next opened. So an order touched
by a whole batch of events costs one write, not one per event, committed offsets never run
ahead of committed state, and the local state survives a crash. (Faust's own
``table[key] = value`` path sends changelog records one at a time through a 100-message
buffer: measured here at ~1k events/s.) Faust still owns the tables' RocksDB files,
changelog topics and recovery (through ``streams/worker/rocks_store.py``). Reads of keys not
in the overlay go straight to the partition's RocksDB.

The due index lives in the orders table's databases, under keys no order can have
(``local_state.INDEX_PREFIX + due_key``): it changes in the same WriteBatch as the orders,
which list their own entries (``OrderState.dues``), so a changelog replay rebuilds it with
them. Its keys sort by due time (``%016x`` due + order_id) and are scanned in order with a
RocksDB iterator. A decision then costs no changelog records of its own. What changed since
the last flush is held by a ``DueBuffer`` (``streams/worker/due_index.py``; native when the
native engine runs).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from streams.engine import core
from streams.engine.state import (
    PartitionMeta,
    decode_meta,
    encode_meta,
)
from streams.names import META_KEY
from streams.worker import due_index, local_state
from streams.worker.confirm import Staged, next_generation
from streams.worker.local_state import INDEX_PREFIX

#: RocksDB options of every table partition (and of the due index). Faust opens each with
#: 64 MiB memtables (up to 3) and a 2 GiB block cache: with three stores per input partition
#: that is gigabytes of memory at a few partitions, and write-ahead logs of 64 MiB each before
#: a flush. The state itself is small (SST files of ~25 MB for 25k open orders in the soak
#: run), so each store gets 32 MiB memtables, at most 2; and all stores of the worker share
#: one 32 MiB block cache and a 128 MiB memtable budget (``rocksdb_budget``), so RocksDB's
#: memory stays under 160 MiB per worker however long it runs. (``block_cache_size`` only
#: sizes the cache Faust creates and ``rocksdb_budget`` replaces.)
TABLE_ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 32 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 2**20,
}


class TableLike(Protocol):
    """What the store needs of a Faust table: its RocksDB store and its changelog topic."""

    data: Any
    changelog_topic: Any


class ChangelogWrite(NamedTuple):
    """One changelog record to produce (value None: a tombstone)."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None


class Flushed(NamedTuple):
    """What a flush wrote: the changelog records to produce, and the staged batch to confirm
    once they are committed (None: nothing was written)."""

    writes: list[ChangelogWrite]
    staged: Staged | None


class TableStore:
    """The state of one partition number in three Faust tables: orders, due index, meta."""

    def __init__(self, orders: TableLike, meta: TableLike, partition: int) -> None:
        self._orders_table, self._meta_table = orders, meta
        self.partition = partition
        #: the stored value of each order the overlay loaded since the last flush (their
        #: undo records need no second read)
        self._loaded: dict[bytes, bytes | None] = {}
        self._orders: Any = core.new_overlay(self._load)
        #: the overlay, if native: the native engine reads and writes it directly
        self.native_orders: Any = core.native_orders(self._orders)
        self._dues: Any = due_index.new_buffer(self._scan_index)
        #: the due buffer, if native: the native engine adds and pops without a Python call
        self.native_dues: Any = due_index.native_buffer(self._dues)
        self._meta: PartitionMeta | None = None
        self._meta_dirty = False
        self._blobs: dict[bytes, bytes | None] = {}

    def _load(self, order_id: str) -> bytes | None:
        key = order_id.encode()
        raw = self._db(self._orders_table).get(key)
        self._loaded[key] = raw
        return raw  # type: ignore[no-any-return]

    def _db(self, table: TableLike) -> Any:
        return table.data._db_for_partition(self.partition)

    # -- orders ---------------------------------------------------------------------------

    def get_order(self, order_id: str) -> Any:
        return self._orders.get(order_id)

    def put_order(self, order_id: str, state: Any) -> None:
        self._orders.put(order_id, state)

    def delete_order(self, order_id: str) -> None:
        self._orders.delete(order_id)

    # -- due index ------------------------------------------------------------------------

    def add_due(self, due: int, order_id: str) -> None:
        self._dues.add(due, order_id)

    def pop_due(self, up_to: int) -> list[tuple[int, str]]:
        return self._dues.pop(up_to)  # type: ignore[no-any-return]

    def _scan_index(self, start: bytes, limit: bytes) -> tuple[list[bytes], bytes | None]:
        """The due index's keys from ``start`` (b"": the first) up to ``limit``, and the
        first key above it (None: none); see ``due_index.Scan``."""
        it = self._db(self._orders_table).iter()
        it.seek(INDEX_PREFIX + start)
        keys: list[bytes] = []
        cut = len(INDEX_PREFIX)
        while it.valid():
            raw = bytes(it.key())
            if not raw.startswith(INDEX_PREFIX):
                break
            key = raw[cut:]
            if key > limit:
                return keys, key
            keys.append(key)
            it.next()
        return keys, None

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self) -> PartitionMeta | None:
        if self._meta is None:
            raw = self._db(self._meta_table).get(META_KEY)
            self._meta = decode_meta(raw) if raw is not None else None
        return self._meta

    def put_meta(self, meta: PartitionMeta) -> None:
        self._meta = meta
        self._meta_dirty = True

    # -- other per-partition values (in the meta table) -----------------------------------

    def get_blob(self, key: bytes) -> bytes | None:
        """A per-partition value of the meta table (e.g. the metrics windows)."""
        if key in self._blobs:
            return self._blobs[key]
        value = self._db(self._meta_table).get(key)
        return None if value is None else bytes(value)

    def put_blob(self, key: bytes, value: bytes | None) -> None:
        """Set (None: delete) a per-partition value of the meta table (written at flush)."""
        assert key != META_KEY
        self._blobs[key] = value

    def scan_blobs(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Every per-partition value of the meta table whose key starts with ``prefix``
        (unflushed writes included), by key."""
        found: dict[bytes, bytes | None] = {}
        it = self._db(self._meta_table).iter()
        it.seek(prefix)
        while it.valid():
            key = bytes(it.key())
            if not key.startswith(prefix):
                break
            if local_state.is_row(key):
                found[key] = bytes(it.value())
            it.next()
        found.update((k, v) for k, v in self._blobs.items() if k.startswith(prefix))
        return sorted((k, v) for k, v in found.items() if v is not None)

    # -- write-back -----------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Whether flush() has anything to write."""
        return bool(self._orders.changed or self._dues.dirty or self._meta_dirty or self._blobs)

    def flush(self) -> Flushed:
        """Write every dirty key once to RocksDB, with undo records; return the changelog
        records to produce and the staged batch.

        The caller produces the returned records in the transaction of this partition, and
        the staged batch is confirmed once it committed. Clean orders leave the overlay, so
        its size is bounded by one batch.
        """
        gen = next_generation()
        writes: list[ChangelogWrite] = []
        written: list[tuple[Any, str]] = []
        order_rows = [(oid.encode(), value) for oid, value in self._orders.drain()]
        index_rows: dict[bytes, bytes | None] = {}
        if self._dues.dirty:
            puts, deletes = self._dues.flush()
            index_rows.update((INDEX_PREFIX + key, b"") for key in puts)
            index_rows.update((INDEX_PREFIX + key, None) for key in deletes)  # deletes win
            # an entry deleted was there (or, added since the last flush, is put back by a
            # roll-back as a spare entry, which pops harmlessly: the engine skips a due its
            # order does not need); an entry put is read (one already there must stay)
            self._loaded.update((INDEX_PREFIX + key, b"") for key in deletes)
        meta_rows: list[tuple[bytes, bytes | None]] = []
        if self._meta_dirty and self._meta is not None:
            meta_rows.append((META_KEY, encode_meta(self._meta)))
            self._meta_dirty = False
        meta_rows.extend(self._blobs.items())
        self._blobs.clear()
        for table, rows, extra in ((self._orders_table, order_rows, index_rows),
                                   (self._meta_table, meta_rows, {})):
            if not rows and not extra:
                continue
            db = self._db(table)
            known = self._loaded if table is self._orders_table else None
            local_state.stage(db, gen, [*rows, *extra.items()], known)
            topic = table.changelog_topic.get_topic_name()
            written.append((db, topic))
            writes.extend(ChangelogWrite(topic, self.partition, k, v) for k, v in rows)
        self._loaded.clear()
        return Flushed(writes, Staged(gen, self.partition, written) if written else None)

    def close(self) -> None:
        """Drop unflushed changes (after a rebalance took the partition)."""
        self._orders.clear()
        self._loaded.clear()
        self._dues.clear()
        self._meta = None
        self._meta_dirty = False
        self._blobs.clear()

    def prepare(self) -> None:
        """Get the due index ready after the partition's database was opened (and recovered):
        drop the entries at or below the partition's watermark, which were handled (a
        changelog replay lists them again with their orders)."""
        meta = self.get_meta()
        if meta is not None and meta.watermark is not None:
            local_state.drop_handled(self._db(self._orders_table), meta.watermark)
        self._dues.rescan()


class BlobTable:
    """Raw values of one partition of a Faust table, written back once per batch."""

    def __init__(self, table: TableLike, partition: int) -> None:
        self._table = table
        self.partition = partition
        self._dirty: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        """The current value (unflushed writes included)."""
        if key in self._dirty:
            return self._dirty[key]
        value = self._table.data._db_for_partition(self.partition).get(key)
        return None if value is None else bytes(value)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set (or, with None, delete) a value; written at flush."""
        self._dirty[key] = value

    def flush(self) -> Flushed:
        """Write the dirty values to RocksDB with undo records (``TableStore.flush``); return
        the changelog records to produce and the staged batch."""
        if not self._dirty:
            return Flushed([], None)
        gen = next_generation()
        db = self._table.data._db_for_partition(self.partition)
        local_state.stage(db, gen, list(self._dirty.items()))
        topic = self._table.changelog_topic.get_topic_name()
        writes = [ChangelogWrite(topic, self.partition, k, v) for k, v in self._dirty.items()]
        self._dirty.clear()
        return Flushed(writes, Staged(gen, self.partition, [(db, topic)]))
