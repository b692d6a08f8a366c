"""A partition's metrics windows in its store: one value per window, keys, loading."""

from __future__ import annotations

from typing import Protocol

import msgspec

from streams.engine.store import StateStore
from streams.metrics.windows import PartitionWindows, WindowCounts
from streams.names import WINDOW_PREFIX, WINDOWS_CLOSED_KEY, WINDOWS_KEY

_windows_decoder = msgspec.msgpack.Decoder(PartitionWindows)  # state format 1
_counts_decoder = msgspec.msgpack.Decoder(WindowCounts)
_closed_decoder = msgspec.msgpack.Decoder(int | None)


class PartitionStore(StateStore, Protocol):
    """The engine's store plus per-partition values (the metrics windows)."""

    def get_blob(self, key: bytes) -> bytes | None:
        """A per-partition value."""
        ...

    def put_blob(self, key: bytes, value: bytes | None) -> None:
        """Set (None: delete) a per-partition value."""
        ...

    def scan_blobs(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Every per-partition value whose key starts with ``prefix``, by key."""
        ...



def window_key(start: int) -> bytes:
    """The meta-table key of the metrics window starting at ``start``."""
    return WINDOW_PREFIX + str(start).encode()


def load_windows(store: PartitionStore) -> tuple[PartitionWindows, bool]:
    """A partition's metrics windows from its store, and whether they are in state format 1
    (then every window is marked dirty, so the first persist writes them in the current
    format, and that value is deleted)."""
    old = store.get_blob(WINDOWS_KEY)
    if old is not None:
        windows = _windows_decoder.decode(old)
        windows.dirty = set(windows.open)
        return windows, True
    windows = PartitionWindows()
    for key, value in store.scan_blobs(WINDOW_PREFIX):
        windows.open[int(key[len(WINDOW_PREFIX):])] = _counts_decoder.decode(value)
    closed = store.get_blob(WINDOWS_CLOSED_KEY)
    windows.closed_until = _closed_decoder.decode(closed) if closed is not None else None
    return windows, False
