"""The in-memory side of the worker's due index: entries added or popped since the last flush.

The index itself is a local RocksDB per partition (``streams/worker/store.py``), its keys
``due_key(due, order_id)`` (fixed-width hex of the due time, so byte order is time order).
``DueBuffer`` holds what changed since the last flush and answers ``pop`` from both: the
entries added in memory, and the live keys of RocksDB, read through ``scan(start, limit)``
(the keys from ``start`` up to ``limit``, and the first key above it, or None). ``flush``
hands over the keys to put and to delete. While the watermark stays below the next due time
it knows of, ``pop`` answers without reading RocksDB (after most events).

Made with no ``scan`` (None), a ``DueBuffer`` is an index held in memory alone: nothing
below it to read, and popped entries are forgotten at once (the replay's, whose state is
rebuilt from its stored orders).

``streams._native.DueBuffer`` is the same class in Rust (``native/src/due.rs``): when the
native engine runs, the store uses it and the engine calls it without a Python call.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from streams import native

#: above every index key (they start with hex digits)
NO_KEY = b"\xff"
#: later than any due time
FOREVER = 2**62

#: scan(start, limit): the keys from ``start`` (b"": the first) up to ``limit``, in order,
#: and the first key above ``limit`` (None: there is none)
Scan = Callable[[bytes, bytes], tuple[list[bytes], bytes | None]]


def due_key(due: int, order_id: str) -> bytes:
    """Index key: fixed-width hex of the due time, so byte order is time order."""
    return b"%016x" % (due + (1 << 62)) + order_id.encode()


def parse_due_key(key: bytes) -> tuple[int, str]:
    """Inverse of due_key."""
    return int(key[:16], 16) - (1 << 62), key[16:].decode()


class DueBuffer:
    """Index entries added and popped since the last flush, over the RocksDB index."""

    def __init__(self, scan: Scan | None) -> None:
        self._scan = scan
        self._added: set[bytes] = set()
        self._added_heap: list[bytes] = []  # the keys of _added, as a heap
        self._removed: set[bytes] = set()
        #: no key of the RocksDB index below this one is live (None: not known)
        self._db_floor: bytes | None = None if scan is not None else NO_KEY
        #: every index entry below this key has been popped (speeds up the scan start)
        self._scan_from = b""
        #: no live index entry is due before this (None: not known): pop answers at once
        #: while the watermark is below it, as it is after most events
        self._next_due: int | None = None

    def add(self, due: int, order_id: str) -> None:
        """Add the entry (a repeated entry is kept once)."""
        key = due_key(due, order_id)
        self._removed.discard(key)
        if key not in self._added:
            self._added.add(key)
            heapq.heappush(self._added_heap, key)
        if key < self._scan_from:
            self._scan_from = key
        if self._next_due is not None and due < self._next_due:
            self._next_due = due

    def pop(self, up_to: int) -> list[tuple[int, str]]:
        """Remove and return the entries with due <= up_to, by (due, order_id)."""
        if self._next_due is not None and up_to < self._next_due:
            return []
        limit = due_key(up_to, "\U0010ffff")
        found: set[bytes] = set()
        heap = self._added_heap
        while heap and heap[0] <= limit:
            found.add(heapq.heappop(heap))
        if self._scan is not None and (self._db_floor is None or self._db_floor <= limit):
            # RocksDB may hold a live entry <= limit (most calls skip this scan: the
            # watermark moved, but not past the next due time)
            keys, above = self._scan(self._scan_from, limit)
            found.update(k for k in keys if k not in self._removed)
            self._db_floor = NO_KEY if above is None else above
        # deleted at flush (whether or not RocksDB has them yet: an entry added again after
        # a flush is in both)
        self._added -= found
        if self._scan is not None:
            self._removed |= found
        # every entry <= limit is gone now (from memory and, at flush, from RocksDB): the
        # next scan starts here instead of walking the deleted keys again
        self._scan_from = max(self._scan_from, limit)
        floor = self._db_floor if self._db_floor != NO_KEY else None
        if heap and (floor is None or heap[0] < floor):
            floor = heap[0]
        self._next_due = FOREVER if floor is None else parse_due_key(floor)[0]
        return sorted(parse_due_key(k) for k in found)

    @property
    def dirty(self) -> bool:
        """Whether ``flush`` has anything to write."""
        return bool(self._added or self._removed)

    def flush(self) -> tuple[list[bytes], list[bytes]]:
        """The keys to put into RocksDB and the keys to delete from it; then nothing is
        pending (the caller writes them before the next ``pop``)."""
        puts, deletes = list(self._added), list(self._removed)
        if self._added_heap and self._db_floor is not None:
            self._db_floor = min(self._db_floor, self._added_heap[0])
        self._added.clear()
        self._added_heap.clear()
        self._removed.clear()
        return puts, deletes

    def rescan(self) -> None:
        """Forget what is known of RocksDB's keys (after the index was rebuilt)."""
        self._scan_from = b""
        self._db_floor = None
        self._next_due = None

    def clear(self) -> None:
        """Drop every pending change (the partition was taken away)."""
        self._added.clear()
        self._added_heap.clear()
        self._removed.clear()


def new_buffer(scan: Scan | None) -> Any:
    """A DueBuffer over ``scan`` (None: in memory alone): the native one when the native
    engine runs."""
    module = native.load()
    return module.DueBuffer(scan) if module is not None else DueBuffer(scan)


def native_buffer(buffer: Any) -> Any:
    """The buffer if it is the native one (a store's ``native_dues``), else None."""
    return None if isinstance(buffer, DueBuffer) else buffer
