"""Early decisions: each rule decides at its own watermark, before the partition's.

A decision that would fire is kept in memory by rule (``keep``, from the engine's arming of
an order's pending decisions); after every engine call, each rule's own watermark
(``watermark.rule_candidate``: over the inputs the rule decides on, ``DECIDED_ON``; never
backwards) is computed, and the kept decisions it passes are handed back (``ready``) to be
made at once, before the partition's watermark reaches them. A decision depends only on
the order's events of the inputs its rule reads with event_time <= D, so it is the same made
early or when the partition's watermark passes D; made again then, it is suppressed by the
ledger. The keeping is not part of the state: after a restart, what was kept is decided when
the partition's watermark passes it. (The native engine's ``native/src/early.rs`` is the
same.)
"""

from __future__ import annotations

import heapq

from streams.engine import watermark as wmark
from streams.engine.state import PartitionMeta
from streams.model import Source
from streams.rules.catalog import DECIDED_ON


class EarlyDecisions:
    """The decisions kept for their rules' watermarks, and those watermarks."""

    def __init__(self, decided_on: dict[int, frozenset[Source]] = DECIDED_ON) -> None:
        #: rule -> the inputs its watermark is over (``catalog.decided_on``)
        self._decided_on = decided_on
        #: rule -> a heap of (due, order_id, key); the entries kept, to keep each once
        self._heaps: dict[int, list[tuple[int, str, str]]] = {}
        self._kept: set[tuple[int, int, str, str]] = set()
        #: rule -> its watermark (never backwards)
        self._marks: dict[int, int] = {}

    def __bool__(self) -> bool:
        """Whether a decision was ever kept (else no watermark need be computed)."""
        return bool(self._heaps)

    def keep(self, rule: int, due: int, order_id: str, key: str) -> None:
        """Keep a decision that would fire (once)."""
        entry = (rule, due, order_id, key)
        if entry not in self._kept:
            self._kept.add(entry)
            heapq.heappush(self._heaps.setdefault(rule, []), (due, order_id, key))

    def has(self, rule: int, due: int, order_id: str, key: str) -> bool:
        """Whether this decision is kept."""
        return (rule, due, order_id, key) in self._kept

    def ready(self, meta: PartitionMeta, lateness: int) -> list[tuple[int, int, str, str]]:
        """The kept decisions their rules' watermarks now pass and the partition's has not,
        as (due, rule, order_id, key), sorted; they are no longer kept."""
        wm = meta.watermark
        ready: list[tuple[int, int, str, str]] = []
        candidates: dict[frozenset[Source], int | None] = {}  # (rules share input sets)
        for rule, heap in self._heaps.items():
            if not heap:
                continue
            mark = self._marks.get(rule)
            reads = self._decided_on[rule]
            if reads in candidates:
                new = candidates[reads]
            else:
                new = candidates[reads] = wmark.rule_candidate(meta, reads, lateness)
            if new is not None and (mark is None or new > mark):
                self._marks[rule] = mark = new
            if mark is None:
                continue
            while heap and heap[0][0] <= mark:
                due, order_id, key = heapq.heappop(heap)
                self._kept.discard((rule, due, order_id, key))
                if wm is None or due > wm:  # (else the partition's watermark made it)
                    ready.append((due, rule, order_id, key))
        ready.sort()
        return ready
