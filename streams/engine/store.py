"""Where a PartitionEngine keeps its state: the StateStore protocol and an in-memory store."""

from __future__ import annotations

from typing import Any, Protocol

from streams.engine.orders import dump_order, load_order
from streams.engine.overlay import HeapIndex
from streams.engine.state import (
    OrderState,
    PartitionMeta,
    decode_meta,
    decode_order,
    encode_meta,
)


class StateStore(Protocol):
    """State of one partition: orders by order_id, a due-time index, and the partition meta.

    Orders are the running engine's objects (``streams.engine.core``: ``OrderState`` for the
    Python engine, ``NativeOrder`` for the native one); stores keep them encoded.

    The index holds (due, order_id) entries; ``pop_due(up_to)`` removes and returns every
    entry with due <= up_to, sorted by (due, order_id). The engine adds at most one entry
    per (due, order_id). Objects handed to ``put_*`` must not be mutated by the store, and
    the engine does not keep objects it got from ``get_*`` after putting them back.
    """

    def get_order(self, order_id: str) -> Any:
        """The order's state, or None."""
        ...

    def put_order(self, order_id: str, state: Any) -> None:
        """Store the order's state."""
        ...

    def delete_order(self, order_id: str) -> None:
        """Forget the order."""
        ...

    def add_due(self, due: int, order_id: str) -> None:
        """Add the index entry (due, order_id)."""
        ...

    def pop_due(self, up_to: int) -> list[tuple[int, str]]:
        """Remove and return the index entries with due <= up_to, by (due, order_id)."""
        ...

    def get_meta(self) -> PartitionMeta | None:
        """The partition's watermark state, or None."""
        ...

    def put_meta(self, meta: PartitionMeta) -> None:
        """Store the partition's watermark state."""
        ...


class MemoryStore:
    """A StateStore in dicts and a heap, for tests, batch-like replays and benchmarks.

    Orders and meta are kept as msgpack bytes (like the Faust table), so every access goes
    through the running engine's decoding and encoding (``streams.engine.orders``) and nothing
    is shared with the engine. ``state`` reads an order as a Python ``OrderState`` whatever
    the engine (for tests and tools).
    """

    def __init__(self) -> None:
        self._load, self._dump = load_order, dump_order
        self._orders: dict[str, bytes] = {}
        self._index = HeapIndex()
        self._meta: bytes | None = None
        #: per-partition values by key (held commands, metrics windows; tests read it)
        self.blobs: dict[bytes, bytes] = {}

    def get_order(self, order_id: str) -> Any:
        """The order's state, or None."""
        data = self._orders.get(order_id)
        return self._load(data) if data is not None else None

    def put_order(self, order_id: str, state: Any) -> None:
        """Store the order's state."""
        self._orders[order_id] = self._dump(state)

    def state(self, order_id: str) -> OrderState | None:
        """The order's state as a Python ``OrderState``, or None (for tests and tools)."""
        data = self._orders.get(order_id)
        return decode_order(data) if data is not None else None

    def delete_order(self, order_id: str) -> None:
        """Forget the order."""
        self._orders.pop(order_id, None)

    def add_due(self, due: int, order_id: str) -> None:
        """Add the index entry (due, order_id) (a repeated entry is kept once)."""
        self._index.add(due, order_id)

    def pop_due(self, up_to: int) -> list[tuple[int, str]]:
        """Remove and return the index entries with due <= up_to, by (due, order_id)."""
        return self._index.pop(up_to)

    def get_meta(self) -> PartitionMeta | None:
        """The partition's watermark state, or None."""
        return decode_meta(self._meta) if self._meta is not None else None

    def put_meta(self, meta: PartitionMeta) -> None:
        """Store the partition's watermark state."""
        self._meta = encode_meta(meta)

    def get_blob(self, key: bytes) -> bytes | None:
        """A per-partition value (held commands, metrics windows)."""
        return self.blobs.get(key)

    def put_blob(self, key: bytes, value: bytes | None) -> None:
        """Set (None: delete) a per-partition value."""
        if value is None:
            self.blobs.pop(key, None)
        else:
            self.blobs[key] = bytes(value)

    def scan_blobs(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Every per-partition value whose key starts with ``prefix``, by key."""
        return sorted((k, v) for k, v in self.blobs.items() if k.startswith(prefix))

    # -- dumps and inspection (tests, bench) -----------------------------------------------

    @classmethod
    def restore(cls, orders: dict[str, bytes], index: list[tuple[int, str]],
                meta: bytes | None) -> MemoryStore:
        """A store holding a dump as it is: encoded orders (any state format), index entries
        and encoded meta."""
        store = cls()
        store._orders = dict(orders)
        for due, order_id in index:
            store.add_due(due, order_id)
        store._meta = meta
        return store

    def raw_order(self, order_id: str) -> bytes | None:
        """The order's state as stored (encoded), or None."""
        return self._orders.get(order_id)

    # -- inspection (tests, bench) ---------------------------------------------------------

    def order_ids(self) -> list[str]:
        """The ids of every stored order, sorted."""
        return sorted(self._orders)

    def index_size(self) -> int:
        """Number of index entries."""
        return len(self._index)

    def size_bytes(self) -> int:
        """Total encoded size of the stored orders."""
        return sum(len(v) for v in self._orders.values())
