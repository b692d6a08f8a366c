"""Ticks: when an input is quiet or stalled, when a tick is stale, and records on the broker win."""

from __future__ import annotations

from builders import BlobStore

from schemas.codec import Codec
from streams.config import RuleConfig
from streams.worker.idle import IdleTracker
from streams.worker.runtime import Runtime
from streams.worker.runtime_types import Record
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


def _runtime(positions: dict[tuple[str, int], int],
             ends: dict[tuple[str, int], int] | None = None) -> Runtime:
    store = BlobStore()
    ends = ends if ends is not None else {}
    return Runtime(RULES, TOPO, Codec(), lambda p: store, {t: 1 for t in TopicId}, 1, "w1",
                   clock=lambda: 1000, position_of=positions.get, end_of=ends.get)


def _event(rt: Runtime, topic: TopicId, offset: int, t: int) -> None:
    body = {"event_id": f"e{offset}{topic.value}", "order_id": "o1", "event_time": t}
    if topic is TopicId.PAYMENTS:
        body |= {"type": "FAILED", "payment_id": "p", "amount": 1, "currency": "CNY"}
        schema = "PaymentEvent"
    elif topic is TopicId.SHIPPING:
        body |= {"type": "CANCELLED", "shipment_id": "s"}
        schema = "ShippingEvent"
    else:
        body |= {"type": "RELEASED", "reservation_id": "r", "sku": "A", "quantity": 1}
        schema = "InventoryEvent"
    rt.handle(Record(topic.value, 0, offset, b"o1", rt.codec.encode(schema, body)))


def _tick(rt: Runtime, topics: list[str], offsets: list[int], worker: str = "w1",
          released: list[str] | None = None, released_at: list[int] | None = None) -> None:
    value = rt.codec.encode("Tick", {"partition": 0, "idle_topics": topics,
                                     "offsets": offsets, "released_topics": released or [],
                                     "released_offsets": released_at or [],
                                     "sent_at": 2000})
    rt.handle(Record("crosscheck.ticks", 0, 0, f"{worker}/0".encode(), value))


def test_quiet_inputs_hold_the_watermark_until_every_input_is_quiet() -> None:
    positions = {("orders", 0): 0, ("shipping", 0): 0, ("inventory", 0): 1,
                 ("payments", 0): 1}
    rt = _runtime(positions, dict(positions))
    _event(rt, TopicId.PAYMENTS, 0, 50_000)
    _event(rt, TopicId.INVENTORY, 0, 40_000)
    _tick(rt, ["orders", "shipping"], [0, 0])
    assert rt.watermarks()[0] is None  # quiet is not a licence to overtake
    _tick(rt, ["payments", "inventory"], [1, 1])
    assert rt.watermarks()[0] == 50_000 - 1000  # all quiet: the end of the traffic
    states = rt.input_states()[0]
    groups = {"+".join(g["inputs"]): g["watermark"]  # type: ignore[index]
              for g in states["rule_watermarks"]}  # type: ignore[attr-defined]
    assert groups == {"inventory": 49_000, "inventory+orders+payments": 49_000,
                      "inventory+orders+payments+shipping": 49_000, "orders+payments": 49_000}
    assert states["all_quiet"] is True
    assert states["inputs"]["payments"] == {"progress": 50_000, "state": "quiet", "lag": 0}  # type: ignore[index]


def test_the_end_of_the_traffic_waits_for_records_on_the_broker() -> None:
    """A quiet input whose end offset moved past its position has records waiting: it is
    active again, and every input quiet is not reached while its lag is not zero."""
    positions = {("orders", 0): 0, ("shipping", 0): 0, ("inventory", 0): 1,
                 ("payments", 0): 1}
    ends = dict(positions)
    rt = _runtime(positions, ends)
    _event(rt, TopicId.PAYMENTS, 0, 50_000)
    _event(rt, TopicId.INVENTORY, 0, 40_000)
    _tick(rt, ["orders", "shipping", "inventory"], [0, 0, 1])
    ends[("inventory", 0)] = 7  # the inventory service publishes its backlog
    _tick(rt, ["payments"], [1])
    assert rt.watermarks()[0] is None
    assert rt.input_states()[0]["inputs"]["inventory"]["state"] == "active"  # type: ignore[index]
    assert rt.counters.reactivated == 1
    ends[("inventory", 0)] = 1
    _tick(rt, ["inventory"], [1])  # its lag known zero again: now the end is decided
    assert rt.watermarks()[0] == 50_000 - 1000


def test_a_stale_tick_is_ignored() -> None:
    positions = {("orders", 0): 0, ("shipping", 0): 3, ("payments", 0): 1,
                 ("inventory", 0): 1}
    ends = dict(positions)
    rt = _runtime(positions, ends)
    _event(rt, TopicId.PAYMENTS, 0, 50_000)
    _event(rt, TopicId.INVENTORY, 0, 40_000)
    _tick(rt, ["payments", "inventory", "orders"], [1, 1, 0])
    _tick(rt, ["shipping"], [2])  # shipping moved on since the tick was made
    assert rt.watermarks()[0] is None
    _tick(rt, ["shipping"], [3], worker="w2")  # another worker's notice
    assert rt.watermarks()[0] is None
    ends[("shipping", 0)] = 4  # a record arrived on the broker since
    _tick(rt, ["shipping"], [3])
    assert rt.watermarks()[0] is None
    ends[("shipping", 0)] = 3
    positions.pop(("shipping", 0))  # ownership changed: position forgotten
    _tick(rt, ["shipping"], [3])
    assert rt.watermarks()[0] is None
    positions[("shipping", 0)] = 3
    _tick(rt, ["shipping"], [3])
    assert rt.watermarks()[0] == 50_000 - 1000


def test_a_released_input_stops_holding_until_records_wait_for_it() -> None:
    positions = {("orders", 0): 0, ("shipping", 0): 1, ("inventory", 0): 1,
                 ("payments", 0): 1}
    ends = dict(positions)
    rt = _runtime(positions, ends)
    _event(rt, TopicId.PAYMENTS, 0, 50_000)
    _event(rt, TopicId.INVENTORY, 0, 40_000)
    _event(rt, TopicId.SHIPPING, 0, 45_000)
    _tick(rt, ["orders"], [0], released=["orders"], released_at=[0])
    assert rt.watermarks()[0] == 40_000 - 1000  # orders (never read) is released
    groups = {"+".join(g["inputs"]): g["watermark"]  # type: ignore[index]
              for g in rt.input_states()[0]["rule_watermarks"]}  # type: ignore[attr-defined]
    assert groups["inventory+orders+payments"] == 39_000  # each group over its own inputs
    assert groups["orders+payments"] == 49_000
    assert rt.input_states()[0]["inputs"]["orders"]["state"] == "released"  # type: ignore[index]
    assert rt.released_partitions() == [0]
    _tick(rt, ["inventory"], [1], released=["inventory"], released_at=[1])
    assert rt.watermarks()[0] == 45_000 - 1000
    ends[("inventory", 0)] = 5  # inventory's backlog is on the broker
    emits = rt.before_batch(0)
    assert rt.input_states()[0]["inputs"]["inventory"]["state"] == "active"  # type: ignore[index]
    [partial] = [e.output for e in emits if e.topic is TopicId.METRICS_PARTIALS]
    assert [s.topic for s in partial.stalled] == ["orders"]  # type: ignore[union-attr]
    assert rt.before_batch(0) == []  # nothing changes twice


def test_a_decision_without_a_released_input_says_so() -> None:
    """Inventory and orders are released: OVERSHIPMENT (reads shipping and inventory) is
    decided without inventory and says so, and its HOLD_SHIPMENT is held;
    SHIPPED_WITHOUT_PAYMENT (shipping and payments) is not, and its claim on the same
    command is confirmed: the hold goes out once, with it."""
    positions = {("orders", 0): 0, ("shipping", 0): 2, ("inventory", 0): 1,
                 ("payments", 0): 2}
    rt = _runtime(positions, dict(positions))
    body = {"event_id": "e-s", "order_id": "o1", "event_time": 10_000, "type": "CREATED",
            "shipment_id": "s1", "items": [{"sku": "A", "quantity": 1}]}
    rt.handle(Record("shipping", 0, 0, b"o1", rt.codec.encode("ShippingEvent", body)))
    _event(rt, TopicId.INVENTORY, 0, 5_000)
    _event(rt, TopicId.PAYMENTS, 1, 200_000)
    _event(rt, TopicId.SHIPPING, 1, 200_000)
    value = rt.codec.encode("Tick", {"partition": 0, "idle_topics": [], "offsets": [],
                                     "released_topics": ["orders", "inventory"],
                                     "released_offsets": [0, 1], "sent_at": 2000})
    emits = rt.handle(Record("crosscheck.ticks", 0, 0, b"w1/0", value))
    opened = {e.output.type.value: e.output for e in emits  # type: ignore[union-attr]
              if e.topic is TopicId.MISMATCHES}
    # (and TCC_EMPTY_ROLLBACK of the RELEASED without a Try, decided without inventory)
    assert sorted(opened) == ["OVERSHIPMENT", "SHIPPED_WITHOUT_PAYMENT", "TCC_EMPTY_ROLLBACK"]
    assert opened["OVERSHIPMENT"].details["decided_without"] == "inventory"  # type: ignore[union-attr]
    assert "decided_without" not in opened["SHIPPED_WITHOUT_PAYMENT"].details  # type: ignore[union-attr]
    [hold] = [e.output for e in emits if e.topic is TopicId.COMMANDS]
    assert hold.mismatch_id == opened["SHIPPED_WITHOUT_PAYMENT"].mismatch_id  # type: ignore[union-attr]
    assert rt.held_count() == 0
    assert rt.counters.excused == {"OVERSHIPMENT": 1, "TCC_EMPTY_ROLLBACK": 1}
    [partial] = [e.output for e in emits if e.topic is TopicId.METRICS_PARTIALS]
    assert sorted(x.topic for x in partial.stalled) == ["inventory", "orders"]  # type: ignore[union-attr]


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


def test_a_quiet_input_is_stalled_once_another_advances_and_released_after_the_hold() -> None:
    inputs = frozenset({"payments", "inventory"})
    tracker = IdleTracker(idle_timeout_ms=2000, started_at=0, inputs=inputs)
    inv = ("inventory", 0)
    tracker.saw(TP_PAY, offset=9, now=1000)
    tracker.saw(inv, offset=4, now=1000)
    assert tracker.candidates([inv], {inv: 5}, {}, now=4000) == [(inv, 5)]
    assert tracker.stall_states(4000) == {inv: ("quiet", 4000)}
    assert tracker.releases(now=100_000, source_hold_ms=10_000) == []  # quiet, not stalled
    tracker.saw(("crosscheck.ticks", 0), offset=3, now=5000)  # not an input
    assert tracker.stall_states(5000) == {inv: ("quiet", 4000)}
    tracker.saw(TP_PAY, offset=10, now=6000)  # payments advances: inventory is stalled
    tracker.saw(("payments", 1), offset=10, now=6500)  # another partition number: no matter
    assert tracker.stall_states(7000) == {inv: ("stalled", 6000)}
    assert tracker.releases(now=15_999, source_hold_ms=10_000) == []
    assert tracker.releases(now=16_000, source_hold_ms=10_000) == [(inv, 5)]
    assert tracker.releases(now=17_000, source_hold_ms=10_000) == []  # once
    assert tracker.stall_states(17_000) == {inv: ("released", 6000)}
    tracker.saw(inv, offset=5, now=18_000)  # it recovers
    assert tracker.stall_states(18_000) == {}
    tracker.unreport(TP_PAY)
    assert tracker.candidates([inv], {inv: 6}, {}, now=30_000) == [(inv, 6)]
    tracker.unreport(inv)  # records turned out to wait: not quiet
    assert tracker.stall_states(30_000) == {}


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
