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
    """mismatch_id -> the latest emitted record, most recently updated last."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, m: Mismatch) -> None:
        """Record an emitted mismatch (OPEN or RESOLVED); the newest status wins."""
        self._items[m.mismatch_id] = mismatch_json(m)
        self._items.move_to_end(m.mismatch_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, mismatch_id: str) -> dict[str, Any] | None:
        """The latest record of a mismatch, if remembered."""
        return self._items.get(mismatch_id)

    def query(self, status: str | None = None, mtype: str | None = None,
              order_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recently updated first, filtered by status, type and order."""
        found: list[dict[str, Any]] = []
        for record in reversed(self._items.values()):
            if len(found) >= limit:
                break
            if status is not None and record["status"] != status:
                continue
            if mtype is not None and record["type"] != mtype:
                continue
            if order_id is not None and record["order_id"] != order_id:
                continue
            found.append(record)
        return found

    def counts(self) -> dict[str, dict[str, int]]:
        """status -> type -> how many remembered mismatches have it."""
        result: dict[str, dict[str, int]] = {}
        for record in self._items.values():
            by_type = result.setdefault(record["status"], {})
            by_type[record["type"]] = by_type.get(record["type"], 0) + 1
        return result
