"""Building blocks of StateStores: a write-behind cache of order states, an in-memory due index."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator

from streams.engine.state import OrderState, decode_order, encode_order

#: what a deleted order reads as in the overlay until it is drained
_DELETED = object()


class OrderOverlay:
    """Order states read from a backing store and changed in memory until ``drain()``.

    ``load(order_id)`` returns the stored msgpack bytes or None. A deleted order reads as None
    until drained. Objects are handed to the engine as they are (it puts back what it changes).
    """

    def __init__(self, load: Callable[[str], bytes | None]) -> None:
        self._load = load
        self._orders: dict[str, OrderState | object] = {}

    def get(self, order_id: str) -> OrderState | None:
        """The order's current state, or None."""
        cached = self._orders.get(order_id)
        if cached is _DELETED:
            return None
        if cached is not None:
            assert isinstance(cached, OrderState)
            return cached
        raw = self._load(order_id)
        if raw is None:
            return None
        state = decode_order(bytes(raw))
        self._orders[order_id] = state
        return state

    def put(self, order_id: str, state: OrderState) -> None:
        """Change the order (until drained)."""
        self._orders[order_id] = state

    def delete(self, order_id: str) -> None:
        """Delete the order (until drained)."""
        self._orders[order_id] = _DELETED

    def __len__(self) -> int:
        return len(self._orders)

    def drain(self) -> Iterator[tuple[str, bytes | None]]:
        """(order_id, encoded state or None for a deletion) of every cached order; empties."""
        orders, self._orders = self._orders, {}
        for order_id, state in orders.items():
            if state is _DELETED:
                yield order_id, None
            else:
                assert isinstance(state, OrderState)
                yield order_id, encode_order(state)

    def clear(self) -> None:
        """Forget every cached change."""
        self._orders.clear()


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
