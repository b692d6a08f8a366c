"""Sending a partition's records as few record batches, in order."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.worker.outputs import send_batches


class Batch:
    """A record batch that holds ``capacity`` bytes; the first record always fits."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.records, self.size = capacity, [], 0

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: Any) -> Any:
        size = len(key or b"") + len(value or b"")
        if self.records and self.size + size > self.capacity:
            return None
        self.records.append((key, value))
        self.size += size
        return object()


class Producer:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, list[Any]]] = []

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> str:
        self.sent.append((topic, partition, batch.records))
        return f"future {len(self.sent)}"


def test_records_go_in_order_in_as_few_batches_as_fit() -> None:
    producer = Producer(capacity=10)
    records = [(b"k", b"1234"), (b"k", b"5678"), (b"k", b"9" * 30), (b"k", b"ab"), (None, b"c")]
    futures = asyncio.run(send_batches(producer, "mismatches", 3, records))
    assert [r for _, _, batch in producer.sent for r in batch] == records
    assert [len(batch) for _, _, batch in producer.sent] == [2, 1, 2]  # the big one alone
    assert {(t, p) for t, p, _ in producer.sent} == {("mismatches", 3)}
    assert futures == ["future 1", "future 2", "future 3"]


def test_no_records_no_batch() -> None:
    producer = Producer(capacity=10)
    assert asyncio.run(send_batches(producer, "t", 0, [])) == [] and producer.sent == []
