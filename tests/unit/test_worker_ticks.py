"""Idle ticks: when an input counts as idle, and when a tick is stale and must be ignored."""

from __future__ import annotations

from builders import BlobStore

from schemas.codec import Codec
from streams.config import RuleConfig
from streams.worker.idle import IdleTracker
from streams.worker.runtime import Record, Runtime
from topology.topics import TopicId, Topology

RULES = RuleConfig(allowed_lateness=1000, idle_timeout=2000)
TOPO = Topology(1, "", {})
TP_PAY = ("payments", 0)


def test_tracker_reports_a_caught_up_quiet_partition_once_with_its_offset() -> None:
    tracker = IdleTracker(idle_timeout_ms=2000, started_at=0)
    tracker.saw(TP_PAY, offset=41, now=1000)
    assert tracker.candidates([TP_PAY], {TP_PAY: 42}, {}, now=2500) == []  # not quiet yet
    assert tracker.candidates([TP_PAY], {TP_PAY: 50}, {}, now=9000) == []  # not caught up
    assert tracker.candidates([TP_PAY], {TP_PAY: 42}, {}, now=9000) == [(TP_PAY, 42)]
    assert tracker.candidates([TP_PAY], {TP_PAY: 42}, {}, now=9500) == []  # once
    tracker.saw(TP_PAY, offset=42, now=9600)
    assert tracker.candidates([TP_PAY], {TP_PAY: 43}, {}, now=20000) == [(TP_PAY, 43)]


def test_tracker_uses_the_committed_offset_of_a_partition_it_never_read() -> None:
    tracker = IdleTracker(idle_timeout_ms=2000, started_at=0)
    tp = ("orders", 0)
    assert tracker.candidates([tp], {tp: 7}, {}, now=5000) == []  # position unknown
    assert tracker.candidates([tp], {tp: 7}, {tp: 7}, now=5000) == [(tp, 7)]
    assert tracker.position(tp) == 7
    tracker.forget([tp])
    assert tracker.position(tp) is None


def _runtime(positions: dict[tuple[str, int], int]) -> Runtime:
    store = BlobStore()
    return Runtime(RULES, TOPO, Codec(), lambda p: store, {t: 1 for t in TopicId}, 1, "w1",
                   clock=lambda: 1000, position_of=positions.get)


def _event(rt: Runtime, topic: TopicId, offset: int, t: int) -> None:
    body = {"event_id": f"e{offset}{topic.value}", "order_id": "o1", "event_time": t}
    if topic is TopicId.PAYMENTS:
        body |= {"type": "FAILED", "payment_id": "p", "amount": 1, "currency": "CNY"}
        schema = "PaymentEvent"
    else:
        body |= {"type": "RELEASED", "reservation_id": "r", "sku": "A", "quantity": 1}
        schema = "InventoryEvent"
    rt.handle(Record(topic.value, 0, offset, b"o1", rt.codec.encode(schema, body)))


def _tick(rt: Runtime, topics: list[str], offsets: list[int], worker: str = "w1") -> None:
    value = rt.codec.encode("Tick", {"partition": 0, "idle_topics": topics,
                                     "offsets": offsets, "sent_at": 2000})
    rt.handle(Record("crosscheck.ticks", 0, 0, f"{worker}/0".encode(), value))


def test_a_tick_at_the_processed_position_makes_inputs_idle() -> None:
    positions = {("orders", 0): 0, ("shipping", 0): 0, ("inventory", 0): 1}
    rt = _runtime(positions)
    _event(rt, TopicId.PAYMENTS, 0, 50_000)
    _event(rt, TopicId.INVENTORY, 0, 40_000)
    assert rt.watermarks()[0] is None  # orders and shipping never read, not idle
    _tick(rt, ["orders", "shipping"], [0, 0])
    assert rt.watermarks()[0] == 40_000 - 1000  # min(payments, inventory) - lateness


def test_a_stale_tick_is_ignored() -> None:
    positions = {("orders", 0): 0, ("shipping", 0): 3}
    rt = _runtime(positions)
    _event(rt, TopicId.PAYMENTS, 0, 50_000)
    _event(rt, TopicId.INVENTORY, 0, 40_000)
    _tick(rt, ["orders", "shipping"], [0, 2])  # shipping moved on since the tick was made
    assert rt.watermarks()[0] is None  # orders went idle, shipping still holds it back
    _tick(rt, ["shipping"], [3], worker="w2")  # another worker's notice
    assert rt.watermarks()[0] is None
    positions.pop(("shipping", 0))  # ownership changed: position forgotten
    _tick(rt, ["shipping"], [3])
    assert rt.watermarks()[0] is None
    positions[("shipping", 0)] = 3
    _tick(rt, ["shipping"], [3])
    assert rt.watermarks()[0] == 40_000 - 1000


def test_a_worker_with_waiting_records_and_no_progress_is_stalled() -> None:
    tracker = IdleTracker(idle_timeout_ms=2000, started_at=0)
    assigned, ends = [TP_PAY], {TP_PAY: 10}
    assert tracker.stalled(assigned, ends, {TP_PAY: 5}, now=30_000, limit_ms=60_000) == []
    assert tracker.stalled(assigned, ends, {TP_PAY: 5}, now=61_000, limit_ms=60_000) == [TP_PAY]
    tracker.saw(TP_PAY, offset=6, now=61_000)  # progress resets the clock
    assert tracker.stalled(assigned, ends, {}, now=100_000, limit_ms=60_000) == []
    tracker.saw(TP_PAY, offset=9, now=100_000)  # caught up: quiet is not stuck
    assert tracker.stalled(assigned, ends, {}, now=900_000, limit_ms=60_000) == []
