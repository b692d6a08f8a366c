"""The most recent mismatches one worker emitted, latest status per mismatch_id (bounded).

This is *per worker*: each worker only sees the mismatches of the partitions it owns (and
only since it started or took them over). The cluster-wide truth is the mismatches topic
(`crosscheck export crosscheck.mismatches`, `crosscheck watch`, `crosscheck status`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from schemas.catalog import schema
from streams.export import to_json_record
from streams.model import Mismatch
from streams.records import mismatch_record

#: how many distinct mismatch_ids a worker remembers (oldest update forgotten first)
DEFAULT_CAPACITY = 5000
_MISMATCH = schema("Mismatch")


def mismatch_json(m: Mismatch) -> dict[str, Any]:
    """A Mismatch as exported JSON (section 5 field names, ISO-8601 times)."""
    return to_json_record(_MISMATCH, mismatch_record(m))


class RecentMismatches:
    """mismatch_id -> the latest emitted Mismatch, most recently updated last. Kept as the
    (immutable) Mismatch and turned into JSON when read: the worker adds every mismatch it
    emits, the web layer reads a few."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Mismatch] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, m: Mismatch) -> None:
        """Record an emitted mismatch (OPEN or RESOLVED); the newest status wins."""
        self._items[m.mismatch_id] = m
        self._items.move_to_end(m.mismatch_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, mismatch_id: str) -> dict[str, Any] | None:
        """The latest record of a mismatch, if remembered."""
        m = self._items.get(mismatch_id)
        return None if m is None else mismatch_json(m)

    def query(self, status: str | None = None, mtype: str | None = None,
              order_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recently updated first, filtered by status, type and order."""
        found: list[dict[str, Any]] = []
        for m in reversed(self._items.values()):
            if len(found) >= limit:
                break
            if status is not None and m.status.value != status:
                continue
            if mtype is not None and m.type.value != mtype:
                continue
            if order_id is not None and m.order_id != order_id:
                continue
            found.append(mismatch_json(m))
        return found

    def counts(self) -> dict[str, dict[str, int]]:
        """status -> type -> how many remembered mismatches have it."""
        result: dict[str, dict[str, int]] = {}
        for m in self._items.values():
            by_type = result.setdefault(m.status.value, {})
            by_type[m.type.value] = by_type.get(m.type.value, 0) + 1
        return result
