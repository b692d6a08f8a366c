"""Bounded state on a long stream: what the engine keeps follows the open orders, not history."""

from __future__ import annotations

from dataclasses import replace

from builders import RULES, T0, inv, pay, ship

from streams.engine import MemoryStore, PartitionEngine
from streams.model import Source

HOUR = 3_600_000


def test_state_stays_flat_while_history_grows() -> None:
    """40 hours of traffic, 100 healthy orders an hour, a 2 h retention: the stored state
    (orders and index entries) reaches a plateau instead of growing with the stream."""
    rules = replace(RULES, state_retention=2 * HOUR)
    store = MemoryStore()
    engine = PartitionEngine(rules, store, lambda: 0)
    engine.set_released(Source.ORDERS, True)  # no order service here: as the ticker would
    samples: dict[int, tuple[int, int, int]] = {}
    for hour in range(40):
        for n in range(100):
            t = T0 + hour * HOUR + n * 36_000
            order = f"o{hour}-{n}"
            engine.on_event(inv("RESERVED", t, order=order))
            engine.on_event(pay("SUCCEEDED", t + 10, order=order))
            engine.on_event(inv("CONFIRMED", t + 20, order=order))
            engine.on_event(ship("CREATED", t + 30, order=order))
        samples[hour] = (len(store.order_ids()), store.index_size(), store.size_bytes())
    plateau = samples[10]
    for hour in range(10, 40):
        orders, index, size = samples[hour]
        assert orders <= plateau[0] * 1.1 + 5, (hour, samples[hour], plateau)
        assert index <= plateau[1] * 1.1 + 5, (hour, samples[hour], plateau)
        assert size <= plateau[2] * 1.1 + 1000, (hour, samples[hour], plateau)
    # and the plateau is the retention window's worth of orders, not the 4000 seen
    assert 150 <= samples[39][0] <= 400
