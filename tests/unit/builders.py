"""Event factories and runners shared by the rule, engine and batch unit tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import msgspec

from streams.batch import evaluate
from streams.config import RuleConfig
from streams.engine import MemoryStore, Output, PartitionEngine
from streams.engine.confirming import Confirming
from streams.model import Command, Event, Item, Mismatch, Source, Status

#: Round numbers so that decision times are easy to read in tests.
RULES = RuleConfig(
    allowed_lateness=1_000,
    payment_timeout=10_000,
    reservation_timeout=5_000,
    shipment_timeout=20_000,
    payment_grace=2_000,
    release_timeout=8_000,
    tcc_grace=3_000,
    state_retention=0,  # evict once every decision is made (see test_engine_eviction)
)
CLOCK_MS = 42
T0 = 1_000_000
FAR = T0 + 10_000_000  # a final watermark after every decision of a test

_ids = itertools.count()


def _eid(prefix: str) -> str:
    return f"{prefix}{next(_ids):05d}"


def pay(
    kind: str,
    t: int,
    payment: str = "p1",
    *,
    order: str = "o1",
    amount: int = 3000,
    currency: str = "CNY",
    eid: str | None = None,
) -> Event:
    """A payments event."""
    return Event(
        Source.PAYMENTS,
        eid or _eid("pay"),
        order,
        kind,
        t,
        payment,
        amount=amount,
        currency=currency,
    )


def inv(
    kind: str,
    t: int,
    reservation: str = "r1",
    *,
    order: str = "o1",
    sku: str = "A",
    quantity: int = 1,
    eid: str | None = None,
) -> Event:
    """An inventory event."""
    return Event(
        Source.INVENTORY,
        eid or _eid("inv"),
        order,
        kind,
        t,
        reservation,
        sku=sku,
        quantity=quantity,
    )


def ship(
    kind: str,
    t: int,
    shipment: str = "s1",
    *,
    order: str = "o1",
    items: Sequence[tuple[str, int]] = (("A", 1),),
    eid: str | None = None,
) -> Event:
    """A shipping event (items only on CREATED)."""
    lines = tuple(Item(sku, q) for sku, q in items) if kind == "CREATED" else ()
    return Event(Source.SHIPPING, eid or _eid("shp"), order, kind, t, shipment, items=lines)


def placed(
    t: int,
    *,
    order: str = "o1",
    total: int = 3000,
    currency: str = "CNY",
    kind: str = "PLACED",
    eid: str | None = None,
) -> Event:
    """An orders event."""
    return Event(
        Source.ORDERS,
        eid or _eid("ord"),
        order,
        kind,
        t,
        order,
        currency=currency,
        items=(Item("A", 1, total),),
        user_id="u1",
        total_amount=total,
    )


def strip(outputs: Iterable[Output]) -> list[Output]:
    """Outputs with detected_at / issued_at zeroed, in their order."""
    result: list[Output] = []
    for out in outputs:
        if isinstance(out, Mismatch):
            result.append(msgspec.structs.replace(out, detected_at=0))
        else:
            result.append(msgspec.structs.replace(out, issued_at=0))
    return result


def canonical(outputs: Iterable[Output]) -> list[bytes]:
    """Outputs without wall-clock fields, as a sorted list of JSON encodings."""
    return sorted(msgspec.json.encode(o) for o in strip(outputs))


def run_stream(
    events: Iterable[Event],
    rules: RuleConfig = RULES,
    store: MemoryStore | None = None,
    until: int | None = None,
) -> list[Output]:
    """Feed events to a fresh engine (its commands held until confirmed) in the given
    order, mark every source idle, then advance the watermark to ``until`` if given."""
    store = store or MemoryStore()
    engine = PartitionEngine(rules, store, lambda: CLOCK_MS)
    confirming = Confirming(engine, rules, store, lambda: CLOCK_MS)
    out: list[Output] = []
    for event in events:
        out += confirming.settle(engine.on_event(event))
    for source in Source:
        out += confirming.settle(engine.set_idle(source, True))
    if until is not None:
        out += confirming.advance_to(until)
    return out


def by_time(events: Iterable[Event]) -> list[Event]:
    """Events sorted by event_time (stable)."""
    return sorted(events, key=lambda e: e.event_time)


def run_both(
    events: Sequence[Event], rules: RuleConfig = RULES, until: int | None = FAR
) -> list[Output]:
    """Run stream (in event-time order) and batch up to ``until``; assert they agree;
    return the stream's outputs."""
    streamed = run_stream(by_time(events), rules, until=until)
    batched = evaluate(events, rules, until=until, clock=lambda: CLOCK_MS)
    assert canonical(streamed) == canonical(batched)
    return streamed


def mismatches(outputs: Iterable[Output], status: Status | None = None) -> list[Mismatch]:
    """The Mismatch records (optionally of one status)."""
    return [o for o in outputs if isinstance(o, Mismatch) and status in (None, o.status)]


def commands(outputs: Iterable[Output]) -> list[Command]:
    """The Command records."""
    return [o for o in outputs if isinstance(o, Command)]


def types_of(outputs: Iterable[Output], status: Status = Status.OPEN) -> list[str]:
    """Sorted mismatch types of the given status."""
    return sorted(m.type.value for m in mismatches(outputs, status))


def source_blocks(events: Sequence[Event]) -> Iterable[list[Event]]:
    """Arrival orders with each source read completely, one after the other, in every
    order of the sources (every source in event-time order: nothing is late)."""
    ordered = by_time(events)
    for sources in itertools.permutations(list(Source)):
        yield [e for s in sources for e in ordered if e.source is s]


def with_redeliveries(events: Sequence[Event]) -> list[Event]:
    """Every event twice in a row, and every event once more at the end."""
    ordered = by_time(events)
    return [e for e in ordered for _ in range(2)] + ordered


def assert_robust(
    events: Sequence[Event], rules: RuleConfig = RULES, until: int | None = FAR
) -> list[Output]:
    """Stream == batch, and the outputs do not depend on how the topics interleave or on
    redeliveries. Returns the outputs (stream, event-time order)."""
    expected = run_both(events, rules, until)
    for arrival in [*source_blocks(events), with_redeliveries(events)]:
        assert canonical(run_stream(arrival, rules, until=until)) == canonical(expected)
    return expected


def of_type(outputs: Iterable[Output], kind: str) -> list[Mismatch]:
    """The Mismatch records of one type, in output order."""
    return [m for m in mismatches(outputs) if m.type.value == kind]


#: the store the runtime tests use: a MemoryStore keeps the per-partition blobs (``blobs``)
BlobStore = MemoryStore
