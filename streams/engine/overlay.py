"""Building blocks of StateStores: a write-behind cache of order states, an in-memory due index."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class OrderOverlay:
    """Order states read from a backing store and changed in memory until ``drain()``.

    ``load(order_id)`` returns the stored msgpack bytes or None; ``decode`` and ``encode``
    turn them into the running engine's order objects and back (``streams.engine.core``).
    Every order read or written since the last drain is held decoded (a missing or deleted
    one as None), so the engine decodes an order once per drain; only those put or deleted
    are written back. Objects are handed to the engine as they are (it puts back what it
    changes).
    """

    def __init__(self, load: Callable[[str], bytes | None], decode: Callable[[bytes], Any],
                 encode: Callable[[Any], bytes]) -> None:
        self._load = load
        self._decode = decode
        self._encode = encode
        self._held: dict[str, Any] = {}
        self._changed: set[str] = set()

    def get(self, order_id: str) -> Any:
        """The order's current state, or None."""
        if order_id in self._held:
            return self._held[order_id]
        raw = self._load(order_id)
        state = self._decode(bytes(raw)) if raw is not None else None
        self._held[order_id] = state
        return state

    def put(self, order_id: str, state: Any) -> None:
        """Change the order (until drained)."""
        self._held[order_id] = state
        self._changed.add(order_id)

    def delete(self, order_id: str) -> None:
        """Delete the order (until drained)."""
        self._held[order_id] = None
        self._changed.add(order_id)

    def __len__(self) -> int:
        """How many orders are held in memory (read or changed)."""
        return len(self._held)

    @property
    def changed(self) -> int:
        """How many orders ``drain`` would write."""
        return len(self._changed)

    def drain(self) -> list[tuple[str, bytes | None]]:
        """(order_id, encoded state or None for a deletion) of every changed order; then
        nothing is held."""
        held, changed, encode = self._held, self._changed, self._encode
        self._held, self._changed = {}, set()
        rows: list[tuple[str, bytes | None]] = []
        for order_id in changed:
            state = held[order_id]
            rows.append((order_id, None if state is None else encode(state)))
        return rows

    def clear(self) -> None:
        """Forget every held order and change."""
        self._held.clear()
        self._changed.clear()


class HeapIndex:
    """The due index in memory: (due, order_id) entries, each kept once, popped in order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._entries: set[tuple[int, str]] = set()

    def add(self, due: int, order_id: str) -> None:
        """Add the entry (a repeated entry is kept once)."""
        entry = (due, order_id)
        if entry not in self._entries:
            self._entries.add(entry)
            heapq.heappush(self._heap, entry)

    def pop(self, up_to: int) -> list[tuple[int, str]]:
        """Remove and return the entries with due <= up_to, by (due, order_id)."""
        popped: list[tuple[int, str]] = []
        heap = self._heap
        while heap and heap[0][0] <= up_to:
            entry = heapq.heappop(heap)
            self._entries.discard(entry)
            popped.append(entry)
        return popped

    def __len__(self) -> int:
        return len(self._heap)
