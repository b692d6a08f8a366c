"""The batch tap: buffering, generations, revocation, back-pressure and ack-after-judge."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast
from weakref import WeakSet

import pytest
from faust.transport.consumer import Consumer as FaustConsumer

from streams.worker import tap
from streams.worker.tap import BatchTap


@dataclass(eq=False)
class Msg:
    topic: str
    partition: int
    offset: int
    generation_id: int = 1
    tracked: bool = False
    acked: bool = False

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass
class FlowControl:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class Consumer:
    """The parts of faust-streaming 0.15's Consumer that ``Consumer.ack`` works on."""

    app: Any = None
    _unacked_messages: WeakSet[Any] = field(default_factory=WeakSet)
    _acked: defaultdict[Any, list[int]] = field(default_factory=lambda: defaultdict(list))
    _acked_index: defaultdict[Any, set[int]] = field(default_factory=lambda: defaultdict(set))
    _committed_offset: defaultdict[Any, int | None] = field(
        default_factory=lambda: defaultdict(lambda: None))
    _n_acked: int = 0
    _waiting_for_ack: Any = None

    @property
    def acked(self) -> list[Any]:
        """The messages acked so far, in the order they were offered."""
        return [m for m in self.app.offered if m.acked]


@dataclass
class Topics:
    unacked: frozenset[str] = frozenset()

    def acks_enabled_for(self, topic: str) -> bool:
        return topic not in self.unacked


@dataclass
class Monitor:
    stream_inbound_time: dict[Any, float] = field(default_factory=dict)


@dataclass
class App:
    consumer_generation_id: int = 1
    flow_control: FlowControl = field(default_factory=FlowControl)
    consumer: Consumer = field(default_factory=Consumer)
    monitor: Monitor = field(default_factory=Monitor)
    topics: Topics = field(default_factory=Topics)
    #: every record offered to the tap (``RecordingTap``), in order
    offered: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumer.app = self


class RecordingTap(BatchTap):
    """A BatchTap that remembers every record offered to it (in ``app.offered``), and takes
    them one at a time too."""

    def offer(self, message: Any) -> bool:
        """``offer_many`` of one record: whether it was added."""
        return self.offer_many([message]) == 1

    def offer_many(self, messages: list[Any]) -> int:
        self.app.offered.extend(messages)
        return super().offer_many(messages)


def make(batch_max: int = 3, within: float = 0.01) -> tuple[App, BatchTap]:
    app = App()
    return app, RecordingTap(app, ["orders", "payments"], batch_max, within)


def test_records_come_out_in_fetch_order_in_batches_of_at_most_batch_max() -> None:
    app, t = make(batch_max=3)
    msgs = [Msg("orders" if i % 2 else "payments", i % 2, i) for i in range(7)]
    assert all(t.offer(m) for m in msgs)
    assert len(app.consumer._unacked_messages) == 0  # buffered records are not tracked
    batches = [t.take() for _ in range(3)]
    assert batches == [msgs[:3], msgs[3:6], msgs[6:]]
    # each batch taken is tracked by its mark until it is acked
    assert set(app.consumer._unacked_messages) == {b.mark for b in batches}  # type: ignore[attr-defined]
    t.ack(batches[0])
    assert batches[0].mark.acked  # type: ignore[attr-defined]
    assert set(app.consumer._unacked_messages) == {b.mark for b in batches[1:]}  # type: ignore[attr-defined]
    assert t.take() == [] and len(t) == 0
    assert set(app.monitor.stream_inbound_time) == {("orders", 1), ("payments", 0)}


def test_records_of_an_older_generation_or_fetched_while_flow_is_stopped_are_dropped() -> None:
    app, t = make(batch_max=10)
    app.flow_control.active = False
    assert not t.offer(Msg("orders", 0, 1))
    app.flow_control.active = True
    assert not t.offer(Msg("orders", 0, 2, generation_id=0))
    kept = Msg("orders", 0, 3)
    assert t.offer(kept) and t.offer(Msg("orders", 0, 4))
    app.consumer_generation_id = 2  # a rebalance after they were buffered
    late = Msg("orders", 0, 5, generation_id=2)
    assert t.offer(late)
    assert t.take() == [late]  # the two of generation 1 are not judged (nor acked)
    assert t.dropped == 4 and app.consumer.acked == []


def test_revoked_partitions_lose_their_buffered_records_only() -> None:
    _, t = make(batch_max=10)
    a, b, c = Msg("orders", 0, 1), Msg("orders", 1, 1), Msg("payments", 0, 2)
    for m in (a, b, c):
        t.offer(m)
    assert t.drop([("orders", 0), ("payments", 0)]) == 2
    assert t.take() == [b]


def test_the_fetch_loop_is_held_back_at_twice_batch_max_and_let_go_when_a_batch_is_taken(
        ) -> None:
    _, t = make(batch_max=2)
    for i in range(4):
        assert t.room() > 0
        t.offer(Msg("orders", 0, i))
    assert t.room() == 0 and not t._room.is_set()
    t.take()
    assert t.room() == 2 and t._room.is_set()


def test_batches_yields_a_partial_batch_after_within_and_a_whole_one_at_once() -> None:
    async def scenario() -> list[list[int]]:
        _, t = make(batch_max=3, within=0.05)
        got: list[list[int]] = []

        async def consume() -> None:
            async for batch in t.batches():
                got.append([m.offset for m in batch])
                if len(got) == 2:
                    return

        task = asyncio.ensure_future(consume())
        t.offer(Msg("orders", 0, 1))
        await asyncio.sleep(0.2)  # only one record: it comes alone once `within` has passed
        for i in (2, 3, 4):
            t.offer(Msg("orders", 0, i))
        await asyncio.wait_for(task, 2.0)
        return got

    assert asyncio.run(scenario()) == [[1], [2, 3, 4]]


def test_run_acks_a_batch_only_after_it_was_judged() -> None:
    async def scenario() -> tuple[list[Any], list[list[Any]]]:
        app, t = make(batch_max=2)
        judged: list[list[Any]] = []
        acked_when_judged: list[Any] = []

        async def judge(batch: list[Any]) -> None:
            acked_when_judged.extend(m for m in batch if m in app.consumer.acked)
            await asyncio.sleep(0)
            judged.append(batch)

        msgs = [Msg("orders", 0, i) for i in range(4)]
        for m in msgs:
            t.offer(m)
        runner = asyncio.ensure_future(tap.run(t, judge))
        while len(app.consumer.acked) < 4:
            await asyncio.sleep(0.01)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        assert app.consumer.acked == msgs
        return acked_when_judged, judged

    before, judged = asyncio.run(scenario())
    assert before == [] and [len(b) for b in judged] == [2, 2]


def test_a_batch_under_way_when_the_loop_is_cancelled_finishes_and_is_then_acked() -> None:
    async def scenario() -> tuple[bool, list[Any]]:
        app, t = make(batch_max=2)
        started, finish = asyncio.Event(), asyncio.Event()
        done: list[bool] = []

        async def judge(batch: list[Any]) -> None:
            started.set()
            await finish.wait()
            done.append(True)

        msgs = [Msg("orders", 0, 1), Msg("orders", 0, 2)]
        for m in msgs:
            t.offer(m)
        runner = asyncio.ensure_future(tap.run(t, judge))
        await started.wait()
        runner.cancel()
        await asyncio.sleep(0.05)
        assert not runner.done() and app.consumer.acked == []  # waits for the batch
        finish.set()
        with pytest.raises(asyncio.CancelledError):
            await runner
        return bool(done), app.consumer.acked

    finished, acked = asyncio.run(scenario())
    assert finished and len(acked) == 2


def test_a_failed_batch_is_never_acked() -> None:
    async def scenario() -> list[Any]:
        app, t = make(batch_max=1)

        async def judge(batch: list[Any]) -> None:
            raise RuntimeError("engine failed")

        t.offer(Msg("orders", 0, 1))
        with pytest.raises(RuntimeError):
            await tap.run(t, judge)
        return app.consumer.acked

    assert asyncio.run(scenario()) == []


def test_install_patches_faust_0_15_fetch_loop_once() -> None:
    from faust.transport.consumer import Consumer as FaustConsumer

    assert tap.supported()
    assert tap.install() and tap.install()
    assert FaustConsumer._drain_messages is tap._drain_messages


def test_close_waits_for_the_batch_under_way_acks_it_and_takes_no_other() -> None:
    async def scenario() -> tuple[list[Any], list[int], bool]:
        app, t = make(batch_max=2)
        started, finish = asyncio.Event(), asyncio.Event()
        judged: list[int] = []

        async def judge(batch: list[Any]) -> None:
            started.set()
            await finish.wait()
            judged.extend(m.offset for m in batch)

        for i in range(4):
            t.offer(Msg("orders", 0, i))
        setattr(app, tap.TAP_ATTRIBUTE, t)
        runner = asyncio.ensure_future(tap.run(t, judge))
        await started.wait()
        closing = asyncio.ensure_future(tap.close(app))  # the worker begins to stop
        await asyncio.sleep(0.05)
        assert not closing.done() and app.consumer.acked == []
        finish.set()
        await asyncio.wait_for(closing, 2.0)
        acked_at_close = list(app.consumer.acked)
        await asyncio.wait_for(runner, 2.0)  # the loop ends: no further batch
        return acked_at_close, judged, len(t) == 2

    acked, judged, left = asyncio.run(scenario())
    assert [m.offset for m in acked] == [0, 1] and judged == [0, 1] and left


def test_no_batch_is_taken_while_flow_is_suspended_and_the_buffer_is_dropped() -> None:
    async def scenario() -> tuple[list[list[int]], int]:
        app, t = make(batch_max=2, within=0.01)
        got: list[list[int]] = []

        async def consume() -> None:
            async for batch in t.batches():
                got.append([m.offset for m in batch])
                return

        for i in range(3):
            t.offer(Msg("orders", 0, i))
        app.flow_control.active = False  # a rebalance begins
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.05)
        assert got == [] and len(t) == 0
        app.flow_control.active = True
        t.offer(Msg("orders", 0, 7))
        await asyncio.wait_for(task, 2.0)
        return got, t.dropped

    got, dropped = asyncio.run(scenario())
    assert got == [[7]] and dropped == 3


def test_close_of_an_app_without_a_tap_returns_at_once() -> None:
    asyncio.run(asyncio.wait_for(tap.close(App()), 1.0))


def _acked_state(app: App, msgs: list[Msg]) -> tuple[Any, ...]:
    c = app.consumer
    return (dict(c._acked), dict(c._acked_index), c._n_acked, [m.acked for m in msgs])


def test_a_batch_is_acked_as_faust_acks_each_of_its_records() -> None:
    """BatchTap.ack does for a whole batch what faust-streaming 0.15's Consumer.ack does for
    each record: records acked already, of a topic without acks, below the committed offset
    or at an offset acked before (a redelivery) are skipped the same way."""
    def build() -> tuple[App, BatchTap, list[Msg]]:
        app = App(topics=Topics(unacked=frozenset({"payments"})))
        t = RecordingTap(app, ["orders", "payments"], 100, 0.01)
        app.consumer._committed_offset[("orders", 1)] = 5
        msgs = [Msg("orders", 0, 0), Msg("orders", 0, 1), Msg("payments", 0, 7),
                Msg("orders", 1, 4), Msg("orders", 1, 5), Msg("orders", 0, 1),
                Msg("orders", 0, 2, acked=True), Msg("orders", 2, 9)]
        for m in msgs:
            assert t.offer(m)
        return app, t, msgs

    faust_app, _, faust_msgs = build()
    for m in faust_msgs:
        FaustConsumer.ack(faust_app.consumer, m)  # type: ignore[arg-type]
    app, t, msgs = build()
    batch = t.take()
    assert batch == msgs and len(app.consumer._unacked_messages) == 1
    t.ack(batch)
    assert _acked_state(app, msgs) == _acked_state(faust_app, faust_msgs)
    assert app.consumer._acked == {("orders", 0): [0, 1], ("orders", 1): [5],
                                   ("orders", 2): [9]}
    assert app.consumer._n_acked == 4 and len(app.consumer._unacked_messages) == 0
    t.ack(batch)  # again: nothing changes
    assert _acked_state(app, msgs) == _acked_state(faust_app, faust_msgs)


def test_a_batch_waiting_for_its_deliveries_is_acked_once_they_settle_and_close_waits() -> None:
    """At-least-once: the next batch is judged while the last one's sends are in flight;
    each batch is acked only when its own deliveries have settled, and close waits."""
    async def scenario() -> tuple[list[list[int]], list[int], list[int], list[int]]:
        app, t = make(batch_max=2, within=0.01)
        msgs = [Msg("orders", 0, i) for i in range(4)]
        for m in msgs:
            t.offer(m)
        judged: list[list[int]] = []
        deliveries: list[asyncio.Future[None]] = []

        async def judge(batch: list[Any]) -> None:
            judged.append([m.offset for m in batch])
            deliveries.append(asyncio.get_running_loop().create_future())

        def unsettled() -> Any:
            return deliveries[-1]

        runner = asyncio.ensure_future(tap.run(t, judge, unsettled))
        while len(judged) < 2:
            await asyncio.sleep(0.01)
        acked_before = [m.offset for m in app.consumer.acked]  # both judged, none settled
        deliveries[1].set_result(None)  # the second batch's sends settle first
        await asyncio.sleep(0.01)
        acked_second = [m.offset for m in app.consumer.acked]
        closing = asyncio.ensure_future(t.close())
        await asyncio.sleep(0.05)
        assert not closing.done()  # the first batch's deliveries are still in flight
        deliveries[0].set_result(None)
        await asyncio.wait_for(closing, 1.0)
        await asyncio.wait_for(runner, 1.0)
        return judged, acked_before, acked_second, [m.offset for m in app.consumer.acked]

    judged, before, second, after = asyncio.run(scenario())
    assert judged == [[0, 1], [2, 3]]
    assert before == [] and second == [2, 3] and after == [0, 1, 2, 3]


def test_no_more_than_max_unsettled_batches_wait_for_their_deliveries() -> None:
    async def scenario() -> tuple[int, int]:
        _app, t = make(batch_max=1, within=0.01)
        for i in range(5):
            t.offer(Msg("orders", 0, i))
        deliveries: list[asyncio.Future[None]] = []

        async def judge(batch: list[Any]) -> None:
            deliveries.append(asyncio.get_running_loop().create_future())

        runner = asyncio.ensure_future(tap.run(t, judge, lambda: deliveries[-1]))
        await asyncio.sleep(0.1)
        held = len(deliveries)  # judging stops while MAX_UNSETTLED batches wait
        deliveries[0].set_result(None)
        await asyncio.sleep(0.05)
        after_one = len(deliveries)
        for d in deliveries:
            if not d.done():
                d.set_result(None)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        return held, after_one

    held, after_one = asyncio.run(scenario())
    assert held == tap.MAX_UNSETTLED and after_one == tap.MAX_UNSETTLED + 1


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Fetched:
    """The parts of an aiokafka ConsumerRecord the fetch loop reads."""

    offset: int
    key: bytes | None = b"k"
    value: bytes | None = b"v"


@dataclass
class FetchConsumer:
    """The parts of faust-streaming 0.15's Consumer that ``offer_fetched`` works on."""

    app: Any
    flow_active: bool = True
    _commit_every: int | None = None
    _n_acked: int = 0
    _buffered_partitions: set[Any] = field(default_factory=set)
    _read_offset: defaultdict[Any, int | None] = field(
        default_factory=lambda: defaultdict(lambda: None))
    gaps: list[tuple[Any, int, int]] = field(default_factory=list)
    ends: dict[Any, int] = field(default_factory=dict)
    commits: int = 0
    suspend_flow: asyncio.Event = field(default_factory=asyncio.Event)

    class log:  # Faust's logger, as the loop calls it
        @staticmethod
        def dev(*args: Any) -> None:
            pass

    def highwater(self, tp: Any) -> int:
        return 100 + int(tp.partition)

    async def _add_gap(self, tp: Any, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    async def commit(self) -> None:
        self.commits += 1

    async def wait_first(self, *coros: Any) -> None:
        tasks = [asyncio.ensure_future(c) for c in coros]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()


@dataclass
class EndMonitor(Monitor):
    ends: dict[Any, int] = field(default_factory=dict)

    def track_tp_end_offset(self, tp: Any, end: int) -> None:
        self.ends[tp] = end


def test_a_fetch_goes_into_the_tap_a_partition_at_a_time_with_read_offsets_and_gaps() -> None:
    """Each tapped partition's records, in order, as TapMessages of the fetch's generation;
    a record below the read offset is dropped, a jump in the offsets is registered as a gap,
    an inactive partition and an untapped topic are left alone."""
    async def scenario() -> tuple[RecordingTap, FetchConsumer, EndMonitor]:
        app = App(monitor=EndMonitor())
        t = RecordingTap(app, ["orders", "payments"], 100, 0.01)
        consumer = FetchConsumer(app, _commit_every=2, _n_acked=2)
        consumer._read_offset[TP("orders", 0)] = 4
        records = {TP("orders", 0): [Fetched(3), Fetched(5), Fetched(6), Fetched(9)],
                   TP("payments", 1): [Fetched(0), Fetched(1)],
                   TP("orders", 2): [Fetched(7)],  # not an active partition
                   TP("metrics", 0): [Fetched(1)]}  # not a tapped topic
        active = {TP("orders", 0), TP("payments", 1), TP("metrics", 0)}
        await tap.offer_fetched(consumer, t, records, active, 1)
        return t, consumer, cast(EndMonitor, app.monitor)

    t, consumer, monitor = asyncio.run(scenario())
    got = t.take()
    assert [(m.topic, m.partition, m.offset) for m in got] == [
        ("orders", 0, 5), ("orders", 0, 6), ("orders", 0, 9), ("payments", 1, 0),
        ("payments", 1, 1)]
    assert all(isinstance(m, tap.TapMessage) and m.generation_id == 1 and not m.acked
               and m.tp == (m.topic, m.partition) and m.value == b"v" for m in got)
    assert consumer.gaps == [(TP("orders", 0), 7, 9)]
    assert consumer._read_offset == {TP("orders", 0): 9, TP("payments", 1): 1}
    assert monitor.ends == {TP("orders", 0): 100, TP("payments", 1): 101}
    assert consumer.commits == 1 and consumer._n_acked == 0  # commit_every acks were reached


def test_a_fetch_waits_for_room_in_the_tap_and_gives_up_when_flow_is_suspended() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        app = App(monitor=EndMonitor())
        t = RecordingTap(app, ["orders"], 2, 0.01)  # room for 4
        consumer = FetchConsumer(app)
        records = {TP("orders", 0): [Fetched(i) for i in range(10)]}
        fetch = asyncio.ensure_future(tap.offer_fetched(consumer, t, records, None, 1))
        await asyncio.sleep(0.05)
        assert len(t) == 4 and not fetch.done()  # held back at twice batch_max
        taken = [m.offset for m in t.take()]  # room again: the fetch goes on
        await asyncio.sleep(0.05)
        assert len(t) == 4 and not fetch.done()
        consumer.flow_active = False  # a rebalance begins while it waits
        app.flow_control.active = False
        consumer.suspend_flow.set()
        await asyncio.wait_for(fetch, 1.0)
        return taken, [m.offset for m in t._buffer]

    taken, buffered = asyncio.run(scenario())
    assert taken == [0, 1] and buffered == [2, 3, 4, 5]
