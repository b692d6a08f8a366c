"""Faust's fetch loop patched for the batch tap: installed once the guard passes, and one
fetch's records handed to the tap with read offsets, gaps and back-pressure."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from tap_fakes import App, Monitor, RecordingTap

from streams.worker import faust_guard, fetch_loop, tap
from streams.worker.tap_records import TapMessage


def test_install_patches_faust_fetch_loop_once() -> None:
    tap.install()
    tap.install()  # idempotent
    assert FaustConsumer._drain_messages is fetch_loop._drain_messages


def test_install_refuses_a_faust_whose_fetch_loop_changed(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The guard runs before the patch: a changed ``_drain_messages`` stops the worker."""
    changed = dict(faust_guard.FINGERPRINTS)
    changed["faust.transport.consumer:Consumer._drain_messages"] = "0" * 64
    monkeypatch.setattr(faust_guard, "FINGERPRINTS", changed)
    monkeypatch.setattr(faust_guard, "_checked", False)
    monkeypatch.delenv(faust_guard.OVERRIDE_VARIABLE, raising=False)

    async def fausts_loop(self: Any, fetcher: Any) -> None:
        """Stands for Faust's own loop (an earlier test may have patched the class)."""

    monkeypatch.setattr(FaustConsumer, "_drain_messages", fausts_loop)
    with pytest.raises(faust_guard.FaustCouplingError, match=r"Consumer\._drain_messages"):
        fetch_loop.install()
    assert FaustConsumer._drain_messages is fausts_loop  # not patched


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
        await fetch_loop.offer_fetched(consumer, t, records, active, 1)
        return t, consumer, cast(EndMonitor, app.monitor)

    t, consumer, monitor = asyncio.run(scenario())
    got = t.take()
    assert [(m.topic, m.partition, m.offset) for m in got] == [
        ("orders", 0, 5), ("orders", 0, 6), ("orders", 0, 9), ("payments", 1, 0),
        ("payments", 1, 1)]
    assert all(isinstance(m, TapMessage) and m.generation_id == 1 and not m.acked
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
        fetch = asyncio.ensure_future(fetch_loop.offer_fetched(consumer, t, records, None, 1))
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
