"""fill_head_gap: Faust's own offset bookkeeping (its real methods) with and without it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from streams.worker.faust_guard import FaustCouplingError
from streams.worker.offsets import fill_head_gap

PARTIALS = TP("crosscheck.metrics.partials", 0)


class Bookkeeping:
    """The attributes Faust's Consumer keeps offsets in, driven by its real methods."""

    def __init__(self, committed: int | None) -> None:
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        if committed is not None:
            self._committed_offset[PARTIALS] = committed
        self._acked: dict[TP, list[int]] = defaultdict(list)
        self._acked_index: dict[TP, set[int]] = defaultdict(set)
        self._gap: dict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._unacked_messages: set[Any] = set()
        self._commit_fut: asyncio.Future[None] | None = None

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        await Consumer._add_gap(self, tp, offset_from, offset_to)  # type: ignore[arg-type]

    async def maybe_wait_for_commit_to_finish(self) -> bool:
        if self._commit_fut is not None:
            await self._commit_fut
            return True
        return False

    def ack(self, *offsets: int) -> None:
        for offset in offsets:
            if offset in self._acked_index[PARTIALS]:
                continue  # as Faust's ack: once
            self._acked[PARTIALS].append(offset)
            self._acked_index[PARTIALS].add(offset)

    def new_offset(self) -> int | None:
        """What Faust would commit now."""
        return Consumer._new_offset(self, PARTIALS)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Message:
    tp: TP
    offset: int


def message(offset: int) -> Message:
    return Message(PARTIALS, offset)


def fill(consumer: Bookkeeping, offset: int) -> bool:
    return asyncio.run(fill_head_gap(SimpleNamespace(consumer=consumer), message(offset)))


def test_invisible_offsets_at_the_head_stall_faust_and_the_gap_unblocks_it() -> None:
    # committed 12; offsets 12..15 are transaction markers / aborted records
    c = Bookkeeping(committed=12)
    c.ack(16, 17, 18)
    assert c.new_offset() is None  # Faust alone never commits again
    assert fill(c, 19)
    assert c.new_offset() == 19


def test_no_gap_when_the_head_is_contiguous() -> None:
    c = Bookkeeping(committed=12)
    c.ack(12, 13)
    assert not fill(c, 14)
    assert c.new_offset() == 14
    c = Bookkeeping(committed=12)
    assert not fill(c, 13)  # one offset ahead is how Faust counts a contiguous head


def test_no_gap_below_a_record_still_being_processed() -> None:
    c = Bookkeeping(committed=12)
    c._unacked_messages.add(message(14))
    c.ack(16)
    assert not fill(c, 17)
    assert c.new_offset() is None


def test_no_gap_before_the_first_commit_or_when_faust_knows_it() -> None:
    assert not fill(Bookkeeping(committed=None), 40)
    c = Bookkeeping(committed=12)
    asyncio.run(c._add_gap(PARTIALS, 13, 15))
    assert not fill(c, 16)


def test_waits_for_a_running_commit() -> None:
    c = Bookkeeping(committed=12)

    async def main() -> bool:
        c._commit_fut = asyncio.get_running_loop().create_future()

        async def commit() -> None:
            await asyncio.sleep(0.01)
            c._committed_offset[PARTIALS] = 20  # 12..19 acked and committed meanwhile
            fut, c._commit_fut = c._commit_fut, None
            assert fut is not None
            fut.set_result(None)

        task = asyncio.create_task(commit())
        found = await fill_head_gap(SimpleNamespace(consumer=c), message(20))
        await task
        return found

    assert not main_run(main)


def main_run(main: Any) -> bool:
    return bool(asyncio.run(main()))


def test_a_consumer_without_fausts_bookkeeping_stops_the_worker_with_a_reason() -> None:
    """No silent switch-off: another Faust's consumer is an error that names what is missing."""
    with pytest.raises(FaustCouplingError, match=r"_commit_fut.*docs/faust\.md"):
        asyncio.run(fill_head_gap(SimpleNamespace(consumer=object()), message(5)))
