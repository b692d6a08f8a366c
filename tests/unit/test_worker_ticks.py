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


def test_a_quiet_partition_below_its_end_is_offered_for_a_probe_once() -> None:
    """A transactional producer's partition ends with a commit marker: the processed
    position stays one below the end offset. Such a partition is offered for a probe of
    the tail once it has been quiet for the idle timeout, once per (position, end)."""
    tracker = IdleTracker(idle_timeout_ms=2000, started_at=0)
    tp = ("payments", 0)
    tracker.saw(tp, 41, now=1000)  # position 42; the end offset is 43 (a marker at 42)
    ends = {tp: 43}
    assert tracker.quiet_behind([tp], ends, {}, now=2999) == []  # not quiet yet
    assert tracker.quiet_behind([tp], ends, {}, now=3000) == [(tp, 42, 43)]
    assert tracker.quiet_behind([tp], ends, {}, now=3500) == []  # probed already
    assert tracker.quiet_behind([tp], {tp: 44}, {}, now=3600) == [(tp, 42, 44)]  # end moved
    assert tracker.quiet_behind([tp], {tp: 44}, {}, now=5600) == [(tp, 42, 44)]  # re-probe
    # the probe found only markers: caught up at the end, then idle like any other input
    assert tracker.candidates([tp], {tp: 44}, {}, now=5600) == []
    tracker.caught_up_at(tp, 44)
    assert tracker.position(tp) == 44
    assert tracker.candidates([tp], {tp: 44}, {}, now=5600) == [(tp, 44)]
    assert tracker.stalled([tp], {tp: 44}, {}, now=70_000, limit_ms=60_000) == []
    assert tracker.quiet_behind([tp], {tp: 44}, {}, now=9000) == []  # at the end


def test_a_partition_never_read_is_probed_from_its_committed_offset() -> None:
    tracker = IdleTracker(idle_timeout_ms=2000, started_at=0)
    tp = ("orders", 3)
    assert tracker.quiet_behind([tp], {tp: 10}, {tp: 9}, now=2000) == [(tp, 9, 10)]
    tracker.caught_up_at(tp, 10)
    tracker.caught_up_at(tp, 8)  # never backwards
    assert tracker.position(tp) == 10
    tracker.forget([tp])
    assert tracker.position(tp) is None
    assert tracker.quiet_behind([tp], {tp: 10}, {tp: 9}, now=2100) == [(tp, 9, 10)]
