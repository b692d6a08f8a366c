"""The replay's own state: one local RocksDB with every partition's orders, meta and checkpoint.

Engines read and write orders through an in-memory overlay; ``commit()`` writes every dirty
order, every partition's meta and the checkpoint record in one atomic WriteBatch, so the
saved state always matches the saved read positions. The due index is kept in memory (a
``DueBuffer`` with nothing below it, per partition: the native one when the native engine
runs, which reaches it without a Python call) and rebuilt from the stored orders when the
store is opened: every order lists its own index entries (``OrderState.dues``), as in the
worker's TableStore.

Keys: ``o`` + partition (2 bytes) + order_id, ``m`` + partition, ``b`` + partition + key
for the other per-partition values (the held commands), and ``checkpoint``.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict, WriteBatch

from streams.engine import core
from streams.engine.state import (
    PartitionMeta,
    decode_meta,
    decode_order,
    encode_meta,
)
from streams.worker import due_index

_PART = struct.Struct(">H")
CHECKPOINT_KEY = b"checkpoint"


def _meta_key(partition: int) -> bytes:
    return b"m" + _PART.pack(partition)


class PartitionState:
    """The StateStore of one partition number (see the module docstring)."""

    def __init__(self, db: Rdict, partition: int) -> None:
        self._db = db
        self.partition = partition
        self._prefix = b"o" + _PART.pack(partition)
        self._orders: Any = core.new_overlay(lambda oid: db.get(self._prefix + oid.encode()))
        #: the overlay, if native: the native engine reads and writes it directly
        self.native_orders: Any = core.native_orders(self._orders)
        #: the due index, in memory alone: the native engine adds and pops without a Python
        #: call when it is the native buffer
        self._index: Any = due_index.new_buffer(None)
        self.native_dues: Any = due_index.native_buffer(self._index)
        self._blob_prefix = b"b" + _PART.pack(partition)
        #: per-partition values written since the last commit (None: deleted)
        self._blobs: dict[bytes, bytes | None] = {}
        raw = db.get(_meta_key(partition))
        self._meta: PartitionMeta | None = decode_meta(raw) if raw is not None else None
        self._meta_dirty = False
        self.stored_orders = 0
        self._rebuild_index()

    def _rebuild_index(self) -> None:
        wm = self._meta.watermark if self._meta is not None else None
        floor = -(2**62) if wm is None else wm
        it = self._db.iter()
        it.seek(self._prefix)
        while it.valid():
            key = bytes(it.key())
            if not key.startswith(self._prefix):
                break
            state = decode_order(bytes(it.value()))
            self.stored_orders += 1
            for due in state.dues:
                if due > floor:  # those at or below the watermark were handled
                    self.add_due(due, state.order_id)
            it.next()

    # -- StateStore -----------------------------------------------------------------------

    def get_order(self, order_id: str) -> Any:
        """The order's state, or None."""
        return self._orders.get(order_id)

    def put_order(self, order_id: str, state: Any) -> None:
        """Store the order's state (written at the next commit)."""
        self._orders.put(order_id, state)

    def delete_order(self, order_id: str) -> None:
        """Forget the order (at the next commit)."""
        self._orders.delete(order_id)

    def add_due(self, due: int, order_id: str) -> None:
        """Add the index entry (due, order_id) (a repeated entry is kept once)."""
        self._index.add(due, order_id)

    def pop_due(self, up_to: int) -> list[tuple[int, str]]:
        """Remove and return the index entries with due <= up_to, by (due, order_id)."""
        return self._index.pop(up_to)  # type: ignore[no-any-return]

    def get_meta(self) -> PartitionMeta | None:
        """The partition's watermark state, or None."""
        return self._meta

    def put_meta(self, meta: PartitionMeta) -> None:
        """Store the partition's watermark state (written at the next commit)."""
        self._meta = meta
        self._meta_dirty = True

    # -- other per-partition values ---------------------------------------------------------

    def get_blob(self, key: bytes) -> bytes | None:
        """A per-partition value (held commands)."""
        if key in self._blobs:
            return self._blobs[key]
        value = self._db.get(self._blob_prefix + key)
        return None if value is None else bytes(value)

    def put_blob(self, key: bytes, value: bytes | None) -> None:
        """Set (None: delete) a per-partition value (written at the next commit)."""
        self._blobs[key] = value

    def scan_blobs(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Every per-partition value whose key starts with ``prefix``, by key."""
        found: dict[bytes, bytes | None] = {}
        start = self._blob_prefix + prefix
        it = self._db.iter()
        it.seek(start)
        while it.valid():
            key = bytes(it.key())
            if not key.startswith(start):
                break
            found[key[len(self._blob_prefix):]] = bytes(it.value())
            it.next()
        found.update((k, v) for k, v in self._blobs.items() if k.startswith(prefix))
        return sorted((k, v) for k, v in found.items() if v is not None)

    # -- write-back -----------------------------------------------------------------------

    @property
    def held_orders(self) -> int:
        """Orders held in memory since the last commit (read or changed)."""
        return len(self._orders)

    def write_to(self, batch: WriteBatch) -> None:
        """Add the changed orders and meta to ``batch``; the overlay starts empty again."""
        for order_id, value in self._orders.drain():
            key = self._prefix + order_id.encode()
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if self._meta_dirty and self._meta is not None:
            batch.put(_meta_key(self.partition), encode_meta(self._meta))
            self._meta_dirty = False
        for key, blob in self._blobs.items():
            if blob is None:
                batch.delete(self._blob_prefix + key)
            else:
                batch.put(self._blob_prefix + key, blob)
        self._blobs.clear()


class ReplayStore:
    """The replay's RocksDB: partition states plus the checkpoint record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), options=Options(raw_mode=True))
        self._parts: dict[int, PartitionState] = {}

    @staticmethod
    def wipe(path: Path) -> None:
        """Delete a replay's state directory (``--restart``)."""
        if path.exists():
            shutil.rmtree(path)

    def partition(self, partition: int) -> PartitionState:
        """The state of a partition number (opened, and its index rebuilt, on first use)."""
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = PartitionState(self._db, partition)
        return part

    def checkpoint(self) -> bytes | None:
        """The last committed checkpoint record."""
        raw = self._db.get(CHECKPOINT_KEY)
        return None if raw is None else bytes(raw)

    @property
    def held_orders(self) -> int:
        """Orders held in memory since the last commit (read or changed), over all partitions."""
        return sum(p.held_orders for p in self._parts.values())

    def commit(self, checkpoint: bytes, state: bool = True) -> None:
        """Write every partition's changes and the checkpoint record atomically (without
        ``state``, the checkpoint record alone: see ``Replay._checkpoint``)."""
        batch = WriteBatch(raw_mode=True)
        if state:
            for part in self._parts.values():
                part.write_to(batch)
        batch.put(CHECKPOINT_KEY, checkpoint)
        self._db.write(batch)

    def put_checkpoint(self, checkpoint: bytes) -> None:
        """Replace the checkpoint record alone (after its outputs were delivered)."""
        self._db.put(CHECKPOINT_KEY, checkpoint)

    def close(self) -> None:
        """Close the database (unflushed changes are dropped)."""
        self._parts.clear()
        self._db.close()
