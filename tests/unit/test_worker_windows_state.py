"""The metrics windows in the meta table: one key per window, and the upgrade from one value."""

from __future__ import annotations

from typing import Any

import msgspec
from builders import BlobStore
from test_metrics_windows import MIN, Harness, P, orders_on, payment

from streams.names import WINDOW_PREFIX, WINDOWS_CLOSED_KEY, WINDOWS_KEY
from streams.worker.runtime_types import Emit
from streams.worker.windows_store import load_windows, window_key
from topology.topics import TopicId

IDLE = [TopicId.ORDERS, TopicId.INVENTORY, TopicId.SHIPPING]


class CountingStore(BlobStore):
    """A BlobStore that records every put_blob."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[bytes] = []

    def put_blob(self, key: bytes, value: bytes | None) -> None:
        self.puts.append(key)
        super().put_blob(key, value)


def traffic(count: int) -> list[dict[str, Any]]:
    """Payments of distinct orders of partition P: one a minute apart in event time, and
    every third one two hours ahead (so that many windows stay open)."""
    orders = orders_on(P, count)
    events = []
    for i, order in enumerate(orders):
        t = i * MIN // 2 + (120 * MIN if i % 3 == 2 else 0)
        kind = "SUCCEEDED" if i % 2 else "FAILED"
        events.append(payment(order, f"e{i}", kind, t + 1_000, 100 + i, "CNY"))
    return events


def emitted(emits: list[Emit]) -> list[tuple[TopicId, bytes | None, bytes]]:
    return [(e.topic, e.key, e.value) for e in emits]


def run(h: Harness, events: list[dict[str, Any]]) -> list[tuple[TopicId, bytes | None, bytes]]:
    out: list[tuple[TopicId, bytes | None, bytes]] = []
    for event in events:
        out += emitted(h.event(TopicId.PAYMENTS, event))
        h.runtime.persist(P)
    return out


def test_a_batch_writes_only_the_windows_it_touched() -> None:
    store = CountingStore()
    h = Harness({P: store})  # no input is idle and only payments speak: no watermark yet
    run(h, traffic(60))
    assert len(h.runtime.part(P).windows.open) > 30  # nothing closes
    store.puts.clear()
    (order,) = orders_on(P, 61)[-1:]
    h.event(TopicId.PAYMENTS, payment(order, "late-ish", "FAILED", 200 * MIN))
    h.runtime.persist(P)
    assert store.puts == [window_key(200 * MIN)]
    stored, upgrade = load_windows(store)
    assert not upgrade and stored.open == h.runtime.part(P).windows.open
    assert stored.closed_until == h.runtime.part(P).windows.closed_until


def test_closed_windows_are_deleted_from_the_store() -> None:
    store = BlobStore()
    h = Harness({P: store})
    h.tick(P, IDLE)
    run(h, traffic(30))
    windows = h.runtime.part(P).windows
    keys = {k for k in store.blobs if k.startswith(WINDOW_PREFIX)}
    assert keys == {window_key(s) for s in windows.open}
    assert msgspec.msgpack.decode(store.blobs[WINDOWS_CLOSED_KEY]) == windows.closed_until


def test_a_worker_on_state_format_1_upgrades_and_emits_the_same() -> None:
    """Half the traffic, then the partition's windows rewritten as format 1 (one value of
    every open window, what earlier workers stored), then a new runtime over that store for
    the other half: every emitted record is byte for byte the one an uninterrupted run
    emits, and after its first write the store holds only the current format."""
    events = traffic(80)
    straight = Harness()
    straight.tick(P, IDLE)
    expected = run(straight, events)

    stores: dict[int, BlobStore] = {}
    first = Harness(stores)
    first.tick(P, IDLE)
    got = run(first, events[:40])
    store = stores[P]
    windows, _ = load_windows(store)
    for key in [k for k in store.blobs if k.startswith(WINDOW_PREFIX)]:
        del store.blobs[key]
    del store.blobs[WINDOWS_CLOSED_KEY]
    store.blobs[WINDOWS_KEY] = msgspec.msgpack.encode(
        {"open": windows.open, "closed_until": windows.closed_until})

    second = Harness(stores)
    second.offset = first.offset
    got += run(second, events[40:])
    assert got == expected
    assert WINDOWS_KEY not in store.blobs
    assert load_windows(store)[0].open == straight.runtime.part(P).windows.open
