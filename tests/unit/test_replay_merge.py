"""The replay's per-partition merge, and replay == live engine over simulated traffic."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest
from builders import RULES, inv, pay, placed
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.config import RuleConfig
from streams.engine import MemoryStore, PartitionEngine
from streams.engine.state import PartitionMeta
from streams.model import Command, Event, Mismatch, Source
from streams.records import command_record, event_from_record, mismatch_record, source_of
from streams.replay import ReplayWindow, default_warmup, select_records
from streams.replay.merge import Feed, Lane
from streams.simulate import FAULTS, SimConfig, simulate
from topology.partitioner import partition_for

Output = Mismatch | Command


class Recorder:
    """Stands in for a PartitionEngine: records what the lane feeds it."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.fed: list[str] = []
        self.idle: list[str] = []
        self.advanced: list[int] = []

    @property
    def watermark(self) -> int | None:
        return None

    def on_event(self, event: Event) -> list[Output]:
        self.fed.append(event.event_id)
        return []

    def set_idle(self, source: Source, idle: bool) -> list[Output]:
        self.idle.append(source.value)
        return []

    def advance_to(self, watermark: int) -> list[Output]:
        self.advanced.append(watermark)
        return []


WINDOW = ReplayWindow(100_000, 200_000, warmup=50_000, lateness=1_000)


def lane_of(engine: Any, ends: dict[Source, int], window: ReplayWindow = WINDOW,
            starts: dict[Source, int] | None = None) -> Lane:
    feeds = {s: Feed(s, (starts or {}).get(s, 0), end) for s, end in ends.items()}
    return Lane(0, engine, window, feeds)


def test_feeds_in_event_time_order_and_waits_for_every_unfinished_source() -> None:
    rec = Recorder()
    lane = lane_of(rec, {Source.PAYMENTS: 3, Source.INVENTORY: 2})
    lane.offer(Source.PAYMENTS, 0, pay("SUCCEEDED", 100_010, eid="p0"))
    lane.offer(Source.PAYMENTS, 1, pay("SUCCEEDED", 100_030, eid="p1"))
    lane.pump()
    assert rec.fed == []  # inventory may still hold an earlier event
    lane.offer(Source.INVENTORY, 0, inv("RESERVED", 100_020, eid="i0"))
    lane.pump()
    assert rec.fed == ["p0", "i0"]  # p1 waits for inventory's next event
    lane.offer(Source.INVENTORY, 1, inv("RESERVED", 100_040, eid="i1"))
    lane.pump()
    assert rec.fed == ["p0", "i0", "p1"]  # inventory is finished now, payments is not
    assert rec.idle == []
    lane.offer(Source.PAYMENTS, 2, pay("SUCCEEDED", 100_050, eid="p2"))
    lane.pump()
    assert rec.fed == ["p0", "i0", "p1", "i1", "p2"]
    assert sorted(rec.idle) == ["inventory", "payments"]
    assert lane.drained
    lane.finish()
    assert rec.advanced == [WINDOW.end]


def test_what_is_fed_and_where_a_resume_starts() -> None:
    rec = Recorder()
    lane = lane_of(rec, {Source.PAYMENTS: 10})
    assert lane.offer(Source.PAYMENTS, 0, pay("SUCCEEDED", WINDOW.read_from - 1, eid="old"))
    assert lane.offer(Source.PAYMENTS, 1, None)  # undecodable: skipped, position moves
    assert lane.offer(Source.PAYMENTS, 2, pay("SUCCEEDED", WINDOW.read_from, eid="first"))
    assert lane.offer(Source.PAYMENTS, 3, pay("SUCCEEDED", WINDOW.end + 1, eid="after"))
    assert not lane.offer(Source.PAYMENTS, 2, pay("SUCCEEDED", WINDOW.read_from, eid="again"))
    assert lane.positions() == {Source.PAYMENTS: 2}  # the head of the buffer
    assert not lane.offer(Source.PAYMENTS, 4, pay("SUCCEEDED", WINDOW.stop_after + 1))
    assert lane.feeds[Source.PAYMENTS].finished
    assert not lane.offer(Source.PAYMENTS, 5, pay("SUCCEEDED", WINDOW.start))
    lane.pump()
    assert rec.fed == ["first"]
    assert lane.positions() == {Source.PAYMENTS: 4}  # the stop record is read again
    assert lane.drained


def test_a_source_with_nothing_to_read_is_idle_at_once() -> None:
    rec = Recorder()
    lane = lane_of(rec, {Source.ORDERS: 5, Source.PAYMENTS: 1}, starts={Source.ORDERS: 5})
    lane.offer(Source.PAYMENTS, 0, pay("SUCCEEDED", 100_000, eid="p"))
    lane.pump()
    assert rec.fed == ["p"] and sorted(rec.idle) == ["orders", "payments"]


def test_end_of_partition_finishes_a_feed_with_a_gap_at_its_end() -> None:
    lane = lane_of(Recorder(), {Source.PAYMENTS: 10})
    lane.offer(Source.PAYMENTS, 7, pay("SUCCEEDED", 100_000))
    lane.feeds[Source.PAYMENTS].reached(9)
    assert not lane.feeds[Source.PAYMENTS].finished
    lane.feeds[Source.PAYMENTS].reached(10)  # e.g. a transaction marker at offset 9
    assert lane.feeds[Source.PAYMENTS].finished


def test_an_input_that_ends_before_the_range_does_is_noticed() -> None:
    lane = lane_of(Recorder(), {Source.PAYMENTS: 2, Source.ORDERS: 1})
    assert lane.short_of_end() is None  # nothing read
    lane.offer(Source.PAYMENTS, 0, pay("SUCCEEDED", WINDOW.end - 5))
    lane.offer(Source.ORDERS, 0, placed(WINDOW.end + 5))
    assert lane.short_of_end() == WINDOW.end + 5
    lane.offer(Source.PAYMENTS, 1, pay("SUCCEEDED", WINDOW.stop_after + 1))
    assert lane.short_of_end() is None


def test_idle_flags_survive_a_resume() -> None:
    rec = Recorder()
    rec.store.put_meta(PartitionMeta(idle=["orders"]))
    lane = lane_of(rec, {Source.ORDERS: 5, Source.PAYMENTS: 1}, starts={Source.ORDERS: 5})
    lane.offer(Source.PAYMENTS, 0, pay("SUCCEEDED", 100_000, eid="p"))
    lane.pump()
    assert rec.idle == ["payments"]


def _offer_all(lane: Lane, per_source: dict[Source, list[Event]], chunks: Iterable[int],
               rng: random.Random) -> list[Output]:
    """Offer each source's events in random chunks, sources in random order, pumping."""
    out: list[Output] = []
    at = dict.fromkeys(per_source, 0)
    sizes = iter(chunks)
    while any(at[s] < len(evs) for s, evs in per_source.items()):
        source = rng.choice([s for s in per_source if at[s] < len(per_source[s])])
        n = next(sizes, 7)
        for offset in range(at[source], min(at[source] + n, len(per_source[source]))):
            lane.offer(source, offset, per_source[source][offset])
        at[source] = min(at[source] + n, len(per_source[source]))
        out.extend(lane.pump())
    out.extend(lane.finish())
    return out


def _order_events(n: int, t0: int) -> list[Event]:
    events: list[Event] = []
    for i in range(n):
        o, t = f"o{i}", t0 + 700 * i
        events += [placed(t, order=o), inv("RESERVED", t + 10, f"r{i}", order=o)]
        if i % 3:
            events.append(pay("SUCCEEDED", t + 20, f"p{i}", order=o))
        if i % 4 == 0:
            events.append(pay("SUCCEEDED", t + 30, f"q{i}", order=o))
    return events


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=50), st.integers(0, 10_000))
def test_outputs_do_not_depend_on_how_records_arrive(chunks: list[int], seed: int) -> None:
    """However the consumer interleaves the topic-partitions, the engine gets the same
    sequence and so gives the same outputs."""
    events = _order_events(60, 100_000)
    per_source: dict[Source, list[Event]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.event_time):
        per_source[e.source].append(e)
    window = ReplayWindow(105_000, 140_000, default_warmup(RULES), RULES.allowed_lateness)

    def run(chunk_sizes: Sequence[int], rng: random.Random) -> list[bytes]:
        engine = PartitionEngine(RULES, MemoryStore(), lambda: 0)
        ends = {s: len(evs) for s, evs in per_source.items()}
        out = _offer_all(lane_of(engine, ends, window), per_source, chunk_sizes, rng)
        return [orjson.dumps(mismatch_record(o) if isinstance(o, Mismatch)
                             else command_record(o)) for o in window.select(out)]

    reference = run([10_000], random.Random(0))
    assert reference
    assert run(chunks, random.Random(seed)) == reference


# -- replay == live engine, in memory --------------------------------------------------------

HOUR = 3_600_000
LONG = RuleConfig(allowed_lateness=12 * HOUR)


def _traffic(seed: int) -> list[Event]:
    """Simulated traffic over 96 h, each order cut to its first 20 h (see the module
    docstring of tests/integration/test_replay.py for why)."""
    traffic = simulate(SimConfig(orders=700, seed=seed, span=96 * HOUR, rules=LONG,
                                 faults=dict.fromkeys(FAULTS, 0.03)))
    first: dict[str, int] = {}
    for _, r in traffic.events:
        first[r["order_id"]] = min(first.get(r["order_id"], r["event_time"]), r["event_time"])
    return [event_from_record(source_of(t), r) for t, r in traffic.events
            if r["event_time"] - first[r["order_id"]] <= 20 * HOUR]


def _live(events: list[Event], partitions: int, chunk: int) -> list[Output]:
    """What a worker decides: each partition's events in arrival order, read topic by topic
    in chunks of ``chunk`` (0: exactly in arrival order), then every input idle."""
    out: list[Output] = []
    for p in range(partitions):
        engine = PartitionEngine(LONG, MemoryStore(), lambda: 0)
        mine = [e for e in events if partition_for(e.order_id, partitions) == p]
        if chunk == 0:
            for e in mine:
                out.extend(engine.on_event(e))
        else:
            per: dict[Source, list[Event]] = defaultdict(list)
            for e in mine:
                per[e.source].append(e)
            for start in range(0, len(mine), chunk):
                for evs in per.values():
                    for e in evs[start:start + chunk]:
                        out.extend(engine.on_event(e))
        for s in Source:
            out.extend(engine.set_idle(s, True))
    return out


def _replay(events: list[Event], partitions: int, window: ReplayWindow) -> list[Output]:
    out: list[Output] = []
    for p in range(partitions):
        per: dict[Source, list[Event]] = defaultdict(list)
        for e in events:
            if partition_for(e.order_id, partitions) == p:
                per[e.source].append(e)
        engine = PartitionEngine(LONG, MemoryStore(), lambda: 0)
        lane = lane_of(engine, {s: len(per[s]) for s in Source}, window)
        for s in Source:
            for i, e in enumerate(per[s]):
                lane.offer(s, i, e)
        out.extend(window.select(lane.finish()))
    return out


def _canonical(mismatches: list[dict[str, Any]], commands: list[dict[str, Any]]
               ) -> tuple[list[bytes], list[bytes]]:
    return (sorted(orjson.dumps({k: v for k, v in m.items() if k != "detected_at"},
                                option=orjson.OPT_SORT_KEYS) for m in mismatches),
            sorted(orjson.dumps({k: v for k, v in c.items() if k != "issued_at"},
                                option=orjson.OPT_SORT_KEYS) for c in commands))


@pytest.mark.parametrize("seed", [3, 4])
def test_replay_equals_the_live_engine_for_random_ranges(seed: int) -> None:
    events = _traffic(seed)
    start = min(e.event_time for e in events)
    live = _live(events, 4, chunk=0 if seed == 3 else 300)
    live_m = [mismatch_record(o) for o in live if isinstance(o, Mismatch)]
    live_c = [command_record(o) for o in live if isinstance(o, Command)]
    rng = random.Random(seed)
    compared = 0
    for _ in range(5):
        a = start + rng.randrange(20 * HOUR, 80 * HOUR)
        window = ReplayWindow(a, a + rng.randrange(HOUR // 6, 10 * HOUR),
                              default_warmup(LONG), LONG.allowed_lateness)
        got = _replay(events, 4, window)
        want = select_records(window, live_m, live_c)
        assert _canonical([mismatch_record(o) for o in got if isinstance(o, Mismatch)],
                          [command_record(o) for o in got if isinstance(o, Command)]) == \
            _canonical(*want)
        compared += len(want[0])
    assert compared > 50


def _reference_pump(buffers: dict[Source, list[tuple[int, str]]], finished: set[Source],
                    order: list[Source]) -> list[str]:
    """The merge as first written: every event chosen by scanning all buffers' heads, the
    first source (in ``order``) winning a tie."""
    fed: list[str] = []
    while True:
        best: Source | None = None
        best_time = 0
        for source in order:
            if buffers[source]:
                t = buffers[source][0][0]
                if best is None or t < best_time:
                    best, best_time = source, t
            elif source not in finished:
                return fed
        if best is None:
            return fed
        fed.append(buffers[best].pop(0)[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Source.ORDERS, Source.PAYMENTS, Source.INVENTORY]),
                          st.integers(0, 6), st.booleans()), max_size=60))
def test_the_merge_feeds_runs_in_the_order_of_one_event_at_a_time(
        steps: list[tuple[Source, int, bool]]) -> None:
    """Feeding a run of one buffer's events at once gives the same order as choosing every
    event by all the buffers' first events (ties: event times from a small range, and
    buffers not in time order)."""
    sources = [Source.ORDERS, Source.PAYMENTS, Source.INVENTORY]
    ends = {s: sum(1 for step in steps if step[0] is s) for s in sources}
    rec = Recorder()
    lane = lane_of(rec, ends)
    buffers: dict[Source, list[tuple[int, str]]] = {s: [] for s in sources}
    offsets = dict.fromkeys(sources, 0)
    expected: list[str] = []
    for source, step, pump in steps:
        eid = f"{source.value}-{offsets[source]}"
        time = 100_000 + step
        event = (placed(time, eid=eid) if source is Source.ORDERS
                 else pay("SUCCEEDED", time, eid=eid) if source is Source.PAYMENTS
                 else inv("RESERVED", time, eid=eid))
        assert lane.offer(source, offsets[source], event)
        buffers[source].append((time, eid))
        offsets[source] += 1
        if pump:
            lane.pump()
            finished = {s for s in sources if offsets[s] >= ends[s]}
            expected += _reference_pump(buffers, finished, sources)
            assert rec.fed == expected
    lane.pump()
    expected += _reference_pump(buffers, set(sources), sources)
    assert rec.fed == expected and lane.events_fed == len(expected)
