"""The batch tap: buffering, generations, revocation, back-pressure and ack-after-judge."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from tap_fakes import App, Msg, RecordingTap, Topics, make

from streams.worker import tap
from streams.worker.tap import BatchTap


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


