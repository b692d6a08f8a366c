"""The Faust patches are installed, and recovery's highwaters come from the broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from streams.worker import faust_patch

CHANGELOG = TP("cc-orders-changelog", 2)


class FakeAIOConsumer:
    """An aiokafka consumer whose cached last stable offset is stale, the broker's is not."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    def last_stable_offset(self, tp: TP) -> int | None:
        return None  # not fetched since it was assigned

    async def end_offsets(self, partitions: Any) -> dict[TP, int]:
        self.asked.append(list(partitions))
        return {tp: 120 for tp in partitions}


def test_apply_installs_both_fixes_once() -> None:
    faust_patch.apply()
    faust_patch.apply()
    assert Recovery.on_recovery_completed is faust_patch._on_recovery_completed
    assert AIOKafkaConsumerThread._highwaters is faust_patch._highwaters


def test_highwaters_under_exactly_once_are_asked_of_the_broker() -> None:
    faust_patch.apply()
    aio = FakeAIOConsumer()
    thread: Any = SimpleNamespace(consumer=SimpleNamespace(in_transaction=True),
                                  _ensure_consumer=lambda: aio)
    found = asyncio.run(AIOKafkaConsumerThread._highwaters(thread, [CHANGELOG]))
    assert found == {CHANGELOG: 120} and aio.asked == [[CHANGELOG]]
