"""Stage 1 of the metrics: per-partition window counts (WindowTracker, and through Runtime)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from builders import BlobStore, inv, pay, placed, ship
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import Codec
from schemas.registry import LocalRegistry
from schemas.validation import parse_event_json
from streams.config import RuleConfig
from streams.metrics.aggregate import decode_partial
from streams.metrics.tracker import WindowTracker
from streams.metrics.windows import Partial, PartitionWindows, WindowCounts
from streams.model import (
    Command,
    CommandType,
    Mismatch,
    MismatchType,
    Severity,
    Status,
)
from streams.worker.runtime import Runtime
from streams.worker.runtime_types import Emit, Record
from streams.worker.windows_store import window_key
from topology.partitioner import partition_for
from topology.topics import BY_ID, TopicId, Topology

MIN = 60_000


def tracker(limit: int = 10) -> WindowTracker:
    return WindowTracker(MIN, limit)


def mismatch(kind: MismatchType, decided_at: int, *, order: str = "o1", subject: str = "s",
             severity: Severity = Severity.HIGH, status: Status = Status.OPEN,
             resolved_at: int | None = None, command_id: str | None = None) -> Mismatch:
    return Mismatch(f"{kind.value}-{order}-{subject}", kind, status, order, subject, severity,
                    decided_at, 0, ("e1",), command_id, {}, resolved_at,
                    "e2" if resolved_at is not None else None)


def command(kind: CommandType, m: Mismatch) -> Command:
    return Command(f"c-{m.mismatch_id}", kind, m.order_id, m.subject_id, m.mismatch_id, 0)


# -- window assignment --------------------------------------------------------------------


def test_events_count_in_the_window_of_their_event_time() -> None:
    t, state = tracker(), PartitionWindows()
    for event in [placed(0), placed(MIN - 1, order="o2"), placed(MIN, order="o3"),
                  pay("SUCCEEDED", 10, amount=100, currency="CNY"),
                  pay("SUCCEEDED", 20, "p2", amount=250, currency="CNY"),
                  pay("SUCCEEDED", MIN + 5, "p3", amount=7, currency="USD"),
                  pay("FAILED", 30, "p4"), pay("REFUNDED", 40), ship("CREATED", 50),
                  # not counted in any figure
                  inv("RESERVED", 1), inv("CONFIRMED", 2), ship("DISPATCHED", 3),
                  placed(4, kind="CANCELLED")]:
        t.on_event(state, event)
    assert sorted(state.open) == [0, MIN]
    first, second = state.open[0], state.open[MIN]
    assert (first.orders_placed, first.payments_succeeded, first.payments_failed,
            first.refunds, first.shipments_created) == (2, 2, 1, 1, 1)
    assert first.gmv == {"CNY": 350}
    assert (second.orders_placed, second.payments_succeeded, second.gmv) == (1, 1, {"USD": 7})
    assert first.late_events == second.late_events == 0


def test_window_start_is_aligned_to_the_epoch() -> None:
    t = tracker()
    assert t.start_of(0) == 0
    assert t.start_of(MIN - 1) == 0
    assert t.start_of(MIN) == MIN
    assert t.start_of(1_795_255_237_123) == 1_795_255_200_000


# -- closing --------------------------------------------------------------------------------


def test_a_window_closes_exactly_when_the_watermark_reaches_its_end() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_event(state, placed(10))
    t.on_event(state, placed(MIN + 10, order="o2"))
    assert t.close(state, None) == {}
    assert t.close(state, MIN - 1) == {}
    assert state.closed_until == 0
    closed = t.close(state, MIN)
    assert list(closed) == [0]
    assert closed[0].orders_placed == 1
    assert state.closed_until == MIN
    assert list(state.open) == [MIN]
    assert t.close(state, MIN) == {}  # once only
    assert t.close(state, 2 * MIN - 1) == {}
    assert list(t.close(state, 5 * MIN)) == [MIN]
    assert state.open == {}
    assert state.closed_until == 5 * MIN


def test_an_event_at_the_watermark_is_not_late_one_before_the_window_end_is() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_event(state, placed(5))
    t.close(state, MIN)
    t.on_event(state, placed(MIN, order="o2"))  # the next window's first millisecond
    t.on_event(state, placed(MIN - 1, order="o3"))  # in the closed window
    window = state.open[MIN]
    assert (window.orders_placed, window.late_events) == (1, 1)


def test_late_events_count_in_late_events_not_in_the_figures() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_event(state, pay("SUCCEEDED", 10, amount=100))
    assert list(t.close(state, 2 * MIN)) == [0]
    for event in [pay("SUCCEEDED", 20, "p2", amount=999), pay("FAILED", MIN + 1, "p3"),
                  placed(30), ship("CREATED", 40)]:
        t.on_event(state, event)
    # counted in the oldest open window, as late only
    assert list(state.open) == [2 * MIN]
    late = state.open[2 * MIN]
    assert late.late_events == 4
    assert (late.orders_placed, late.payments_succeeded, late.payments_failed, late.gmv,
            late.shipments_created) == (0, 0, 0, {}, 0)
    closed = t.close(state, 3 * MIN)
    assert closed[2 * MIN].late_events == 4


# -- outputs --------------------------------------------------------------------------------


def test_outputs_count_by_decided_at_and_resolved_at() -> None:
    t, state = tracker(), PartitionWindows()
    opened = mismatch(MismatchType.PAYMENT_WITHOUT_RESERVATION, MIN + 5, command_id="c")
    other = mismatch(MismatchType.OVERSHIPMENT, 10, order="o2")
    resolved = msgspec.structs.replace(opened, status=Status.RESOLVED,
                                       resolved_at=3 * MIN + 1, resolved_by="e9")
    t.on_outputs(state, [opened, command(CommandType.REFUND_PAYMENT, opened), other])
    t.on_outputs(state, [resolved])
    assert sorted(state.open) == [0, MIN, 3 * MIN]
    assert state.open[MIN].mismatches_opened == {"PAYMENT_WITHOUT_RESERVATION": 1}
    assert state.open[MIN].commands_issued == {"REFUND_PAYMENT": 1}
    assert state.open[0].mismatches_opened == {"OVERSHIPMENT": 1}
    assert state.open[0].commands_issued == {}
    assert state.open[3 * MIN].mismatches_resolved == 1
    assert state.open[3 * MIN].mismatches_opened == {}


def test_a_command_counts_in_the_window_of_its_mismatch_decision() -> None:
    t, state = tracker(), PartitionWindows()
    first = mismatch(MismatchType.TCC_HANGING, 2 * MIN + 1, severity=Severity.MEDIUM)
    second = mismatch(MismatchType.RESERVATION_WITHOUT_PAYMENT, MIN, severity=Severity.LOW,
                      subject="r")
    t.on_outputs(state, [second, first, command(CommandType.RELEASE_STOCK, first)])
    assert state.open[2 * MIN].commands_issued == {"RELEASE_STOCK": 1}
    assert state.open[MIN].commands_issued == {}


def test_outputs_decided_in_a_closed_window_count_in_the_oldest_open_one() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_event(state, placed(5))
    t.close(state, 2 * MIN)
    late = mismatch(MismatchType.DUPLICATE_PAYMENT, 30, severity=Severity.CRITICAL)
    resolved = msgspec.structs.replace(late, status=Status.RESOLVED, resolved_at=MIN + 3)
    t.on_outputs(state, [late, command(CommandType.REFUND_PAYMENT, late), resolved])
    window = state.open[2 * MIN]
    assert window.mismatches_opened == {"DUPLICATE_PAYMENT": 1}
    assert window.commands_issued == {"REFUND_PAYMENT": 1}
    assert window.mismatches_resolved == 1
    assert window.late_events == 0  # outputs are not events


def test_only_high_and_critical_mismatches_are_sampled_and_samples_are_bounded() -> None:
    t, state = tracker(limit=3), PartitionWindows()
    outputs: list[Mismatch | Command] = []
    for n in range(5):
        outputs.append(mismatch(MismatchType.AMOUNT_MISMATCH, 10 + n, order=f"a{n}"))
        outputs.append(mismatch(MismatchType.SHIPPED_WITHOUT_PAYMENT, 10 + n, order=f"s{n}",
                                severity=Severity.CRITICAL))
        outputs.append(mismatch(MismatchType.PAID_NOT_SHIPPED, 10 + n, order=f"m{n}",
                                severity=Severity.MEDIUM))
        outputs.append(mismatch(MismatchType.TCC_EMPTY_ROLLBACK, 10 + n, order=f"l{n}",
                                severity=Severity.LOW))
    t.on_outputs(state, outputs)
    window = state.open[0]
    assert window.mismatches_opened == {"AMOUNT_MISMATCH": 5, "SHIPPED_WITHOUT_PAYMENT": 5,
                                        "PAID_NOT_SHIPPED": 5, "TCC_EMPTY_ROLLBACK": 5}
    assert sorted(window.samples) == ["AMOUNT_MISMATCH", "SHIPPED_WITHOUT_PAYMENT"]
    assert [s.order_id for s in window.samples["AMOUNT_MISMATCH"]] == ["a0", "a1", "a2"]
    assert {s.severity for s in window.samples["SHIPPED_WITHOUT_PAYMENT"]} == {"CRITICAL"}


# -- dead letters ---------------------------------------------------------------------------


def test_dead_letters_before_any_window_join_the_first_closed_window() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_dead_letter(state)
    t.on_dead_letter(state)
    assert list(state.open) == [-1]
    assert t.close(state, 10) == {}  # nothing closed yet: kept
    assert list(state.open) == [-1]
    t.on_event(state, placed(MIN + 5))
    closed = t.close(state, 3 * MIN)
    assert list(closed) == [MIN]
    assert closed[MIN].dead_letters == 2
    assert state.open == {}


def test_dead_letters_count_in_the_oldest_open_window() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_event(state, placed(MIN + 5))
    t.on_event(state, placed(3 * MIN + 5, order="o2"))
    t.close(state, MIN)
    t.on_dead_letter(state)
    assert state.open[MIN].dead_letters == 1
    assert state.open[3 * MIN].dead_letters == 0
    t.close(state, 5 * MIN)
    t.on_dead_letter(state)  # nothing open: the first window not closed yet
    assert state.open == {5 * MIN: WindowCounts(dead_letters=1)}


def test_partition_windows_survive_a_msgpack_round_trip() -> None:
    t, state = tracker(), PartitionWindows()
    t.on_event(state, pay("SUCCEEDED", 10, amount=100, currency="EUR"))
    t.on_outputs(state, [mismatch(MismatchType.AMOUNT_MISMATCH, 12)])
    t.close(state, 5)
    data = msgspec.msgpack.encode(state)
    assert msgspec.msgpack.decode(data, type=PartitionWindows) == state



def _close_by_definition(t: WindowTracker, state: PartitionWindows,
                         watermark: int) -> dict[int, WindowCounts]:
    """close() without its shortcut: pop and sort every window, every time."""
    until = t.start_of(watermark)
    carry = state.open.pop(-1, None)
    closed = {start: state.open.pop(start) for start in sorted(state.open) if start < until}
    if carry is not None:
        if closed:
            closed[min(closed)].add(carry, t.sample_limit)
        else:
            state.open[-1] = carry
    if state.closed_until is None or until > state.closed_until:
        state.closed_until = until
    return closed


_step = st.one_of(
    st.tuples(st.just("event"), st.integers(0, 8 * MIN)),
    st.tuples(st.just("dead"), st.just(0)),
    st.tuples(st.just("close"), st.integers(-MIN, 9 * MIN)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=40))
def test_close_is_the_same_as_closing_by_definition(steps: list[tuple[str, int]]) -> None:
    t, mine, reference = tracker(), PartitionWindows(), PartitionWindows()
    for i, (kind, value) in enumerate(steps):
        for state in (mine, reference):
            if kind == "event":
                t.on_event(state, placed(value, order=f"o{i}"))
            elif kind == "dead":
                t.on_dead_letter(state)
        if kind == "close":
            quiet = t.closes_nothing(mine, value)
            before = msgspec.msgpack.encode((mine.open, mine.closed_until)), set(mine.dirty)
            closed = t.close(mine, value)
            assert closed == _close_by_definition(t, reference, value)
            if quiet:  # the runtime's shortcut: skipping this close changes nothing
                assert closed == {}
                assert (msgspec.msgpack.encode((mine.open, mine.closed_until)),
                        set(mine.dirty)) == before
        # the stored part of the state, in the same order (``dirty`` only says what to store)
        assert msgspec.msgpack.encode((mine.open, mine.closed_until)) == \
            msgspec.msgpack.encode((reference.open, reference.closed_until))

def test_closes_nothing_until_the_watermark_reaches_the_next_window() -> None:
    t, state = tracker(), PartitionWindows()
    assert t.closes_nothing(state, None)
    t.on_event(state, placed(5 * MIN + 1))
    assert not t.closes_nothing(state, 5 * MIN)  # nothing closed yet: close sets closed_until
    assert t.close(state, 5 * MIN) == {} and state.closed_until == 5 * MIN
    assert t.closes_nothing(state, 5 * MIN) and t.closes_nothing(state, 6 * MIN - 1)
    assert not t.closes_nothing(state, 6 * MIN)
    empty = PartitionWindows(closed_until=5 * MIN)
    t.on_dead_letter(empty)  # no window open: the dead letter opens one at closed_until
    assert t.closes_nothing(empty, 5 * MIN)
    carry = PartitionWindows()
    t.on_dead_letter(carry)  # before any window: -1, which a close moves
    carry.closed_until = 5 * MIN
    assert not t.closes_nothing(carry, 5 * MIN)


# -- through the Runtime: redeliveries, dead letters, partials ------------------------------

RULES = RuleConfig(allowed_lateness=1_000, payment_timeout=10_000, reservation_timeout=5_000,
                   shipment_timeout=20_000, payment_grace=2_000, release_timeout=8_000,
                   tcc_grace=3_000, metrics_window=MIN)
PARTITIONS = 4
P = 1


def orders_on(partition: int, count: int) -> list[str]:
    found: list[str] = []
    n = 0
    while len(found) < count:
        order_id = f"order-{n}"
        if partition_for(order_id, PARTITIONS) == partition:
            found.append(order_id)
        n += 1
    return found


class Harness:
    def __init__(self, stores: dict[int, BlobStore] | None = None) -> None:
        self.codec = Codec(LocalRegistry())
        self.topology = Topology(PARTITIONS, "", {})
        self.stores = stores if stores is not None else {}
        self.runtime = Runtime(RULES, self.topology, self.codec, self._store,
                               {t: PARTITIONS for t in TopicId}, PARTITIONS, "w1",
                               clock=lambda: 42, position_of=lambda tp: 0,
                               end_of=lambda tp: 0)
        self.offset = 0

    def _store(self, partition: int) -> BlobStore:
        return self.stores.setdefault(partition, BlobStore())

    def record(self, topic: TopicId, partition: int, value: bytes, key: bytes = b"k") -> list[Emit]:
        self.offset += 1
        return self.runtime.handle(Record(self.topology.name(topic), partition, self.offset,
                                          key, value))

    def event(self, topic: TopicId, body: dict[str, Any]) -> list[Emit]:
        record = parse_event_json(topic, orjson.dumps(body))
        value = self.codec.encode(BY_ID[topic].value_schema, record,
                                  self.topology.name(topic))
        order = body["order_id"]
        return self.record(topic, partition_for(order, PARTITIONS), value, order.encode())

    def tick(self, partition: int, topics: list[TopicId], release: bool = True
             ) -> list[Emit]:
        """A tick marking ``topics`` quiet, and (``release``) released: stalled past
        source_hold, so they no longer hold the watermark."""
        names = [t.value for t in topics]
        value = self.codec.encode("Tick", {"partition": partition, "idle_topics": names,
                                           "offsets": [0 for _ in topics],
                                           "released_topics": names if release else [],
                                           "released_offsets": [0 for _ in topics]
                                           if release else [],
                                           "sent_at": 100}, self.topology.name(TopicId.TICKS))
        return self.record(TopicId.TICKS, partition, value, f"w1/{partition}".encode())


def payment(order: str, eid: str, kind: str, t: int, amount: int = 3000,
            currency: str = "CNY") -> dict[str, Any]:
    return {"event_id": eid, "order_id": order, "type": kind, "payment_id": f"{order}-p",
            "amount": amount, "currency": currency, "event_time": t}


def partials(emits: list[Emit]) -> list[Partial]:
    found = [decode_partial(e.value) for e in emits if e.topic is TopicId.METRICS_PARTIALS]
    assert all(e.key == str(e.output.partition).encode() for e in emits  # type: ignore[union-attr]
               if e.topic is TopicId.METRICS_PARTIALS)
    return found


def test_runtime_counts_a_redelivered_event_once_and_sends_closed_windows() -> None:
    h = Harness()
    o1, o2, o3 = orders_on(P, 3)
    # only payments speak on this partition: the other inputs are idle
    [released] = partials(h.tick(P, [TopicId.ORDERS, TopicId.INVENTORY, TopicId.SHIPPING]))
    assert (released.watermark, released.windows, released.sent_at) == (None, {}, 42)
    assert sorted(s.topic for s in released.stalled) == ["inventory", "orders", "shipping"]
    first = payment(o1, "e1", "SUCCEEDED", 10_000, 3000, "CNY")
    [moved] = partials(h.event(TopicId.PAYMENTS, first))
    assert (moved.partition, moved.watermark, moved.all_idle, moved.windows) == \
        (P, 9_000, False, {})
    h.event(TopicId.PAYMENTS, first)  # redelivered: same event_id
    failed = payment(o2, "e2", "FAILED", MIN - 500)
    h.event(TopicId.PAYMENTS, failed)
    assert h.runtime.counters.duplicates_ignored == 1
    sent = partials(h.event(TopicId.PAYMENTS, payment(o3, "e3", "SUCCEEDED", MIN + 1_000,
                                                      500, "USD")))
    assert len(sent) == 1
    assert (sent[0].partition, sent[0].watermark, sent[0].all_idle) == (P, MIN, False)
    window = sent[0].windows[0]
    assert (window.payments_succeeded, window.payments_failed, window.gmv) == \
        (1, 1, {"CNY": 3000})
    # o1's payment had no reservation: PAYMENT_WITHOUT_RESERVATION decided at 15 s in
    # window 0, without inventory (released): its REFUND_PAYMENT is held, not issued
    assert window.mismatches_opened == {"PAYMENT_WITHOUT_RESERVATION": 1}
    assert window.commands_issued == {}
    assert h.runtime.held_count() == 1
    # decided without inventory: counted, no alert sample (SOURCE_STALLED says it once)
    assert window.mismatches_without == {"PAYMENT_WITHOUT_RESERVATION": 1}
    assert "PAYMENT_WITHOUT_RESERVATION" not in window.samples
    # a redelivery of an event of the closed window (its order still in the store) is
    # neither counted nor late
    h.event(TopicId.PAYMENTS, failed)
    assert h.runtime.counters.duplicates_ignored == 2
    assert h.runtime.part(P).windows.open[MIN].late_events == 0
    assert h.runtime.part(P).windows.open[MIN].payments_succeeded == 1


def test_runtime_counts_late_events_and_dead_letters_in_the_oldest_open_window() -> None:
    h = Harness()
    o1, o2, o3 = orders_on(P, 3)
    h.tick(P, [TopicId.ORDERS, TopicId.INVENTORY, TopicId.SHIPPING])
    h.event(TopicId.PAYMENTS, payment(o1, "e1", "FAILED", 5_000))
    h.event(TopicId.PAYMENTS, payment(o2, "e2", "FAILED", 2 * MIN + 1_000))  # closes 0, 1
    h.event(TopicId.PAYMENTS, payment(o3, "e3", "FAILED", 30_000))  # late
    bad = h.record(TopicId.PAYMENTS, P, b"\x00garbage")
    assert [e.topic for e in bad] == [TopicId.DLQ]
    assert h.runtime.counters.dead_letters == 1
    windows = h.runtime.part(P).windows
    assert windows.closed_until == 2 * MIN
    assert windows.open[2 * MIN].payments_failed == 1  # e2 only
    assert windows.open[2 * MIN].late_events == 1
    assert windows.open[2 * MIN].dead_letters == 1
    sent = partials(h.event(TopicId.PAYMENTS, payment(o1, "e4", "FAILED", 3 * MIN + 1_000)))
    assert list(sent[0].windows) == [2 * MIN]
    counts = sent[0].windows[2 * MIN]
    assert (counts.payments_failed, counts.late_events, counts.dead_letters) == (1, 1, 1)


def test_runtime_reports_a_partition_whose_inputs_all_went_idle() -> None:
    h = Harness()
    (o1,) = orders_on(P, 1)
    h.tick(P, [TopicId.ORDERS, TopicId.INVENTORY, TopicId.SHIPPING], release=False)
    h.event(TopicId.PAYMENTS, payment(o1, "e1", "FAILED", 5_000))
    sent = partials(h.tick(P, [TopicId.PAYMENTS], release=False))
    assert sent == [Partial(P, 4_000, True, {})]
    # an empty partition whose inputs are all idle reports too (no watermark)
    empty = partials(h.tick(2, list(TopicId)[:4], release=False))
    assert empty == [Partial(2, None, True, {})]


def test_runtime_windows_survive_a_restart_through_the_store() -> None:
    stores: dict[int, BlobStore] = {}
    h = Harness(stores)
    o1, o2 = orders_on(P, 2)
    h.tick(P, [TopicId.ORDERS, TopicId.INVENTORY, TopicId.SHIPPING])
    h.event(TopicId.PAYMENTS, payment(o1, "e1", "SUCCEEDED", 5_000, 100, "JPY"))
    h.runtime.persist(P)
    assert window_key(0) in stores[P].blobs
    again = Harness(stores)  # a new process over the same (changelog-backed) store
    again.event(TopicId.PAYMENTS, payment(o1, "e1", "SUCCEEDED", 5_000, 100, "JPY"))
    sent = partials(again.event(TopicId.PAYMENTS, payment(o2, "e2", "FAILED", MIN + 1_000)))
    window = sent[0].windows[0]
    assert (window.payments_succeeded, window.payments_failed, window.gmv) == \
        (1, 0, {"JPY": 100})
