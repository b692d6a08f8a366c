"""Property: the streaming PartitionEngine and the batch evaluator give the same outputs."""

from __future__ import annotations

from collections import Counter
from random import Random

from builders import CLOCK_MS, canonical, commands, mismatches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.batch import evaluate
from streams.config import RuleConfig
from streams.engine import MemoryStore, Output, PartitionEngine
from streams.engine.confirming import Confirming
from streams.model import Command, Event, Item, Source, Status
from topology.partitioner import partition_for

LATENESS = 100
RULES = RuleConfig(
    allowed_lateness=LATENESS,
    payment_timeout=40,
    reservation_timeout=20,
    shipment_timeout=60,
    payment_grace=10,
    release_timeout=30,
    tcc_grace=5,
)
TYPES = {
    Source.ORDERS: ["PLACED", "PLACED", "CANCELLED"],
    Source.PAYMENTS: ["SUCCEEDED", "SUCCEEDED", "FAILED", "REFUNDED"],
    Source.INVENTORY: ["RESERVED", "CONFIRMED", "RELEASED"],
    Source.SHIPPING: ["CREATED", "CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"],
}
PREFIX = {Source.ORDERS: "o", Source.PAYMENTS: "p", Source.INVENTORY: "r", Source.SHIPPING: "s"}


@st.composite
def order_events(draw: st.DrawFn, order_id: str) -> list[Event]:
    """Events of one order, all within ``LATENESS`` of each other (so no eviction matters)."""
    base = draw(st.integers(0, 60)) * 5
    result: list[Event] = []
    for n in range(draw(st.integers(1, 9))):
        source = draw(st.sampled_from(list(Source)))
        kind = draw(st.sampled_from(TYPES[source]))
        t = base + draw(st.integers(0, LATENESS // 5)) * 5
        # entity ids are globally unique, like real payment/reservation/shipment ids
        entity = f"{order_id}-{PREFIX[source]}{draw(st.sampled_from('12'))}"
        entity = order_id if source is Source.ORDERS else entity
        eid = f"{order_id}-{n}"
        amount = draw(st.sampled_from([100, 200]))
        currency = draw(st.sampled_from(["CNY", "USD"]))
        if source is Source.ORDERS:
            event = Event(
                source,
                eid,
                order_id,
                kind,
                t,
                entity,
                currency=currency,
                items=(Item("A", 1, amount),),
                user_id="u",
                total_amount=amount,
            )
        elif source is Source.PAYMENTS:
            event = Event(source, eid, order_id, kind, t, entity, amount=amount, currency=currency)
        elif source is Source.INVENTORY:
            event = Event(
                source,
                eid,
                order_id,
                kind,
                t,
                entity,
                sku=draw(st.sampled_from("AB")),
                quantity=draw(st.integers(1, 2)),
            )
        else:
            lines = draw(
                st.lists(
                    st.tuples(st.sampled_from("AB"), st.integers(1, 2)), min_size=1, max_size=2
                )
            )
            items = tuple(Item(s, q) for s, q in lines) if kind == "CREATED" else ()
            event = Event(source, eid, order_id, kind, t, entity, items=items)
        result.append(event)
    return result


def fillers(until: int) -> list[Event]:
    """One-event orders on every source every 40 ms, so that the watermark moves while the
    real orders are still arriving (mostly types that trigger no rule)."""
    kinds = {
        Source.ORDERS: "CANCELLED",
        Source.PAYMENTS: "FAILED",
        Source.INVENTORY: "RELEASED",
        Source.SHIPPING: "CANCELLED",
    }
    result: list[Event] = []
    for k, t in enumerate(range(0, until + 2 * LATENESS, 40)):
        for source, kind in kinds.items():
            order = f"f{k}{source.value[0]}"
            entity = order if source is Source.ORDERS else f"{order}-x"
            result.append(
                Event(
                    source,
                    f"{order}-0",
                    order,
                    kind,
                    t,
                    entity,
                    amount=1,
                    currency="CNY",
                    sku="A",
                    quantity=1,
                )
            )
    return result


@st.composite
def streams_of_events(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """(distinct events, arrival sequence): per-source order by event_time plus a jitter
    below the allowed lateness, redeliveries, and a random interleaving of the sources."""
    events: list[Event] = []
    for n in range(draw(st.integers(1, 5))):
        events += draw(order_events(f"o{n}"))
    if draw(st.booleans()) or draw(st.booleans()):
        events += fillers(max(e.event_time for e in events))
    per_source: dict[Source, list[Event]] = {}
    for source in Source:
        own = [e for e in events if e.source is source]
        delay = st.one_of(
            st.just(0), st.integers(0, LATENESS - 1), st.integers(LATENESS - 25, LATENESS - 1)
        )
        jitter = draw(st.lists(delay, min_size=len(own), max_size=len(own)))
        keyed = sorted(
            (e.event_time + j, n, e) for n, (e, j) in enumerate(zip(own, jitter, strict=True))
        )
        ordered = [e for _, _, e in keyed]
        with_redelivery: list[Event] = []
        for event in ordered:
            with_redelivery.append(event)
            if draw(st.integers(0, 9)) == 0:
                with_redelivery.append(event)
        per_source[source] = with_redelivery
    arrival: list[Event] = []
    remaining = [s for s in Source if per_source[s]]
    while remaining:
        source = draw(st.sampled_from(remaining))
        arrival.append(per_source[source].pop(0))
        remaining = [s for s in Source if per_source[s]]
    return events, arrival


def stream(arrival: list[Event], partitions: int) -> list[Output]:
    """Feed the arrival sequence to one engine per partition (commands held until
    confirmed), then idle every source."""
    stores = [MemoryStore() for _ in range(partitions)]
    engines = [Confirming(PartitionEngine(RULES, store, lambda: CLOCK_MS), RULES, store,
                          lambda: CLOCK_MS) for store in stores]
    out: list[Output] = []
    for event in arrival:
        c = engines[partition_for(event.order_id, partitions)]
        out += c.settle(c.engine.on_event(event))
    for c in engines:
        for source in Source:
            out += c.settle(c.engine.set_idle(source, True))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams_of_events(), st.sampled_from([1, 1, 3]))
def test_streaming_equals_batch(data: tuple[list[Event], list[Event]], partitions: int) -> None:
    _, arrival = data
    streamed = stream(arrival, partitions)
    batched = evaluate(arrival, RULES, partitions=partitions, clock=lambda: CLOCK_MS)
    assert canonical(streamed) == canonical(batched)
    opened = Counter(m.mismatch_id for m in mismatches(streamed, Status.OPEN))
    assert all(n == 1 for n in opened.values())
    issued = Counter(c.command_id for c in commands(streamed))
    assert all(n == 1 for n in issued.values())
    resolved = [m for m in mismatches(streamed, Status.RESOLVED)]
    assert all(m.mismatch_id in opened and m.resolved_at is not None for m in resolved)
    assert all(m.decided_at < (m.resolved_at or 0) for m in resolved)


@settings(max_examples=100, deadline=None)
@given(streams_of_events())
def test_arrival_order_does_not_matter(data: tuple[list[Event], list[Event]]) -> None:
    events, arrival = data
    in_time_order = sorted(events, key=lambda e: (e.event_time, e.event_id))
    assert canonical(stream(arrival, 1)) == canonical(stream(in_time_order, 1))


@settings(max_examples=100, deadline=None)
@given(streams_of_events(), st.randoms(use_true_random=False))
def test_any_arrival_order_emits_each_mismatch_and_command_once(
    data: tuple[list[Event], list[Event]], rnd: Random
) -> None:
    """With arbitrary lateness (any shuffle, redeliveries) there is no batch oracle, but
    OPEN, RESOLVED and commands still come at most once each, RESOLVED after OPEN."""
    _, arrival = data
    arrival = list(arrival)
    rnd.shuffle(arrival)
    engine = PartitionEngine(RULES, MemoryStore(), lambda: CLOCK_MS)
    out: list[Output] = []
    for event in arrival:
        out += engine.on_event(event)
    for source in Source:
        out += engine.set_idle(source, True)
    out += engine.advance_to(10**9)
    opened: set[str] = set()
    resolved: set[str] = set()
    issued: set[str] = set()
    for record in out:
        if isinstance(record, Command):
            assert record.command_id not in issued and record.mismatch_id in opened
            issued.add(record.command_id)
        elif record.status is Status.OPEN:
            assert record.mismatch_id not in opened
            opened.add(record.mismatch_id)
        else:
            assert record.mismatch_id in opened and record.mismatch_id not in resolved
            resolved.add(record.mismatch_id)
