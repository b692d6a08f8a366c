"""The layout of a worker's local table state in RocksDB, and its atomic writes.

Each partition of each worker table (orders, meta, metrics) is one RocksDB database (Faust's
store, ``streams/worker/rocks_store.py``). Besides the table's rows it holds, under keys no
row can have (they start with 0xff, which no UTF-8 order id and no meta key does):

* ``INDEX_PREFIX + due_key``: the due index (orders databases only), so that it changes in
  the same WriteBatch as the orders it indexes and survives a restart;
* ``UNDO_PREFIX + generation``: the keys a batch wrote and the values they had before it,
  for a batch that is written but whose Kafka transaction has not committed yet;
* ``OFFSET_KEY`` (Faust's): the changelog offset up to which the rows are committed state;
* ``FORMAT_KEY``: the state format of this layout (``STATE_FORMAT``).

What is written when (``docs/architecture.md``, "Local state across a crash"):

1. a batch's changes are written at once, in one WriteBatch with their undo records
   (``stage``), so the engine reads them back from RocksDB as before;
2. after the partition's Kafka transaction committed, one more WriteBatch drops the batch's
   undo records and sets ``OFFSET_KEY`` to the offset of its last changelog record
   (``confirm``);
3. when a database is opened, every undo record still there belongs to a batch that may not
   have committed: the values are put back, newest batch first (``roll_back``). The store then
   holds committed state only, as of ``OFFSET_KEY`` or later, and a restart reads the
   changelogs only after it (read_committed), applying them with their index changes in one
   WriteBatch per chunk (``apply_changelog``): nothing is wiped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from rocksdict import WriteBatch

from streams.worker.due_index import due_key

#: Faust's key of the last applied changelog offset (faust.stores.rocksdb.Store.offset_key)
OFFSET_KEY = b"__faust\0offset__"
#: every key of this layout that is not a row starts with this byte
RESERVED = 0xFF
INDEX_PREFIX = b"\xffi"
UNDO_PREFIX = b"\xffu"
FORMAT_KEY = b"\xfff"
#: the layout above (absent: the earlier one, whose due index was a separate, wiped RocksDB)
STATE_FORMAT = b"3"

#: an undo record: (keys, the value each had before the batch or None)
_undo = msgspec.msgpack.Encoder()
_undo_decoder = msgspec.msgpack.Decoder(tuple[list[bytes], list[bytes | None]])

#: one change: (key, new value or None to delete)
Change = tuple[bytes, bytes | None]


def is_row(key: bytes) -> bool:
    """Whether a key of a table's database is one of the table's rows."""
    return not key or (key[0] != RESERVED and key != OFFSET_KEY)


def _generation(gen: int) -> bytes:
    return gen.to_bytes(8, "big")


def stage(db: Any, gen: int, changes: Sequence[Change],
          known: Mapping[bytes, bytes | None] | None = None) -> None:
    """Write a batch's changes (keys distinct) with its undo record, atomically.

    The undo record is one value for the whole batch (``UNDO_PREFIX + generation``): the
    keys and the value each had before (None: absent), msgpack-encoded. ``known`` holds the
    current value of some keys (what the caller read from this database since it last wrote
    them: it spares a read); the others are read in one multi-get."""
    if not changes:
        return
    keys = [key for key, _ in changes]
    if known is None:
        before = db.get(keys)
    else:
        unknown = [key for key in keys if key not in known]
        read = dict(zip(unknown, db.get(unknown), strict=True)) if unknown else {}
        before = [known[key] if key in known else read[key] for key in keys]
    batch = WriteBatch(raw_mode=True)
    batch.put(UNDO_PREFIX + _generation(gen), _undo.encode((keys, before)))
    for key, value in changes:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    db.write(batch)


def confirm(db: Any, gens: Iterable[int], offset: int | None) -> None:
    """The batches ``gens`` committed: drop their undo records and, if they wrote changelog
    records, record the last one's ``offset``; atomically."""
    batch = WriteBatch(raw_mode=True)
    for gen in gens:
        batch.delete(UNDO_PREFIX + _generation(gen))
    if offset is not None:
        batch.put(OFFSET_KEY, str(offset).encode())
    db.write(batch)


def roll_back(db: Any) -> int:
    """Put back what every unconfirmed batch changed (newest first); how many there were."""
    undone: list[tuple[bytes, bytes]] = []
    it = db.iter()
    it.seek(UNDO_PREFIX)
    while it.valid():
        raw = bytes(it.key())
        if not raw.startswith(UNDO_PREFIX):
            break
        undone.append((raw, bytes(it.value())))
        it.next()
    if not undone:
        return 0
    batch = WriteBatch(raw_mode=True)
    # within one WriteBatch the last write of a key wins: the oldest batch's before-image
    for key, value in sorted(undone, reverse=True):
        keys, before = _undo_decoder.decode(value)
        for k, old in zip(keys, before, strict=True):
            if old is None:
                batch.delete(k)
            else:
                batch.put(k, old)
        batch.delete(key)
    db.write(batch)
    return len(undone)


class _Dues(msgspec.Struct, array_like=True, tag=2):
    """The head of an order state (format 2) up to its due times; the rest is skipped."""

    order_id: str
    orders: msgspec.Raw
    payments: msgspec.Raw
    reservations: msgspec.Raw
    shipments: msgspec.Raw
    dues: list[int]


_dues_decoder = msgspec.msgpack.Decoder(_Dues)


def index_keys(key: bytes, value: bytes) -> list[bytes]:
    """The due index keys an order's stored state lists (its ``dues``)."""
    try:
        dues = _dues_decoder.decode(value).dues
    except msgspec.ValidationError:  # an earlier state format: decode it whole
        from streams.engine.state import decode_order

        dues = decode_order(value).dues
    order_id = key.decode()
    return [INDEX_PREFIX + due_key(due, order_id) for due in dues]


def apply_changelog(db: Any, records: Iterable[Change], offset: int,
                    indexed: bool) -> int:
    """Apply changelog records (in offset order, up to ``offset``) to a table's database in
    one WriteBatch, with ``OFFSET_KEY``; for the orders table (``indexed``) each order's due
    index entries follow its new value. How many distinct keys were written."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    batch = WriteBatch(raw_mode=True)
    if indexed and latest:
        keys = list(latest)
        for key, old in zip(keys, db.get(keys), strict=True):
            new = latest[key]
            old_entries = index_keys(key, bytes(old)) if old is not None else []
            new_entries = index_keys(key, new) if new is not None else []
            for entry in old_entries:
                if entry not in new_entries:
                    batch.delete(entry)
            for entry in new_entries:
                batch.put(entry, b"")
    for key, value in latest.items():
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    batch.put(OFFSET_KEY, str(offset).encode())
    db.write(batch)
    return len(latest)


def drop_handled(db: Any, floor: int) -> None:
    """Delete the index entries due at or before ``floor`` (the partition's watermark: they
    were handled; a changelog replay may list them again)."""
    db.delete_range(INDEX_PREFIX, INDEX_PREFIX + due_key(floor + 1, ""))


def on_open(db: Any, indexed: bool) -> tuple[int, int | None]:
    """Make a just-opened database hold committed state in this layout: roll back the
    unconfirmed batches, and upgrade a database of the earlier layout (its due index built
    from its orders, if ``indexed``). How many batches were rolled back, and how many index
    entries were built (None: it was in this layout already)."""
    undone = roll_back(db)
    built: int | None = None
    if db.get(FORMAT_KEY) is None:
        built = index_from_rows(db) if indexed else 0
        db.put(FORMAT_KEY, STATE_FORMAT)
    return undone, built


def index_from_rows(db: Any) -> int:
    """Build the due index from the orders' rows (a database of the earlier format, whose
    index was not stored); how many entries."""
    batch = WriteBatch(raw_mode=True)
    count = 0
    it = db.iter()
    it.seek_to_first()
    while it.valid():
        key = bytes(it.key())
        if is_row(key):
            for entry in index_keys(key, bytes(it.value())):
                batch.put(entry, b"")
                count += 1
        it.next()
    db.write(batch)
    return count
