"""The open-orders phase's traffic: distinct orders, all valid, none due within the run."""

from __future__ import annotations

from schemas.validation import validate_event
from streams.bench.openorders import OPEN_SPAN, open_orders
from streams.config import RuleConfig
from streams.engine.partition import PartitionEngine
from streams.engine.store import MemoryStore
from streams.model import Source
from streams.records import event_from_record
from topology.topics import TopicId


def test_open_orders_are_distinct_valid_and_in_event_time_order() -> None:
    records = list(open_orders(5000, 1_700_000_000_000, seed=4))
    assert len({r["order_id"] for _, r in records}) == 5000
    assert len({r["event_id"] for _, r in records}) == 5000
    times = [r["event_time"] for _, r in records]
    assert times == sorted(times) and times[-1] - times[0] < OPEN_SPAN
    for topic, record in records[:500]:
        assert topic is TopicId.ORDERS
        validate_event(topic, record)
    assert records == list(open_orders(5000, 1_700_000_000_000, seed=4))  # seeded


def test_none_of_them_is_decided_while_they_arrive() -> None:
    """The engine, fed every order and then every other source released, holds them all:
    nothing is due before the payment timeout, which is longer than the span."""
    rules = RuleConfig()
    assert rules.payment_timeout > OPEN_SPAN
    engine = PartitionEngine(rules, MemoryStore(), lambda: 0)
    out = []
    for _, record in open_orders(2000, 1_700_000_000_000, seed=5):
        event = event_from_record(Source.ORDERS, validate_event(TopicId.ORDERS, record))
        out += engine.on_event(event)
    for source in (Source.PAYMENTS, Source.INVENTORY, Source.SHIPPING):
        out += engine.set_released(source, True)
    assert out == []
    assert engine.watermark is not None
