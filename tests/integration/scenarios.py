"""Scenario builders for the worker tests: every rule's fault, healthy traffic and clock orders.

A Scenario is a list of input events (Avro records, built through the same JSON validation
as `crosscheck produce`) with an arrival key per event: its event_time plus a small jitter
(below the allowed lateness), so each topic is read slightly out of event-time order. Events
of one order stay close together in event time (well inside the engine's eviction horizon:
every follow-up comes within a few seconds of a due decision), which keeps the streaming
result equal to the batch evaluator's.

Healthy "clock" orders run on every partition from the start to past the last fault's last
decision, so every partition's final watermark (max event time - allowed_lateness) is late
enough for every fault to come due, and every input topic-partition gets records all along
(no input goes idle while the scenario is being produced live).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.validation import parse_event_json
from streams.batch import evaluate
from streams.config import RULE_ENV, RuleConfig
from streams.durations import format_duration_ms
from streams.model import Event, Source
from streams.records import event_from_record
from streams.verify import expected_records
from topology.partitioner import partition_for
from topology.topics import INPUTS, TopicId

SECOND = 1_000
MINUTE = 60 * SECOND
T0 = 1_795_255_200_000  # 2026-11-21T06:00:00Z
PARTITIONS = 4
JITTER = 3 * SECOND

#: Short thresholds so that a scenario spans minutes of event time, not days.
RULES = RuleConfig(
    allowed_lateness=20 * SECOND,
    idle_timeout=2 * SECOND,
    payment_timeout=2 * MINUTE,
    reservation_timeout=1 * MINUTE,
    shipment_timeout=5 * MINUTE,
    payment_grace=1 * MINUTE,
    release_timeout=2 * MINUTE,
    tcc_grace=30 * SECOND,
    callback_timeout=90 * SECOND,
)


def worker_rule_args(rules: RuleConfig = RULES) -> list[str]:
    """`crosscheck worker` options that set exactly these thresholds."""
    args: list[str] = []
    for attr in RULE_ENV:
        args += [f"--{attr.replace('_', '-')}", format_duration_ms(getattr(rules, attr))]
    return args


@dataclass(frozen=True)
class Line:
    """One input event: its topic, its Avro record, and when it arrives (sort key)."""

    topic: TopicId
    record: dict[str, Any]
    arrival: int
    seq: int

    @property
    def order_id(self) -> str:
        """The event's order (its Kafka key)."""
        return str(self.record["order_id"])

    def event(self) -> Event:
        """The engine's view of the event (what the worker decodes)."""
        return event_from_record(Source(self.topic.value), self.record)


class OrderBuilder:
    """Adds the events of one order; times are offsets in seconds from the order's start."""

    def __init__(self, scenario: Scenario, order_id: str, start: int) -> None:
        self.scenario = scenario
        self.order_id = order_id
        self.start = start
        self._n = 0

    def _add(self, topic: TopicId, dt: float, body: dict[str, Any]) -> None:
        self._n += 1
        event = {"event_id": f"{self.order_id}-e{self._n:02d}", "order_id": self.order_id,
                 "event_time": self.start + int(dt * SECOND), **body}
        self.scenario.add(topic, parse_event_json(topic, orjson.dumps(event)))

    def id(self, entity: str) -> str:
        """A globally unique entity id (payment, reservation, shipment) of this order."""
        return f"{self.order_id}-{entity}"

    def placed(self, dt: float, total: int = 3000, currency: str = "CNY", sku: str = "A",
               qty: int = 1) -> OrderBuilder:
        self._add(TopicId.ORDERS, dt, {
            "type": "PLACED", "user_id": "u-1", "currency": currency, "total_amount": total,
            "items": [{"sku": sku, "quantity": qty, "unit_price": total // qty}]})
        return self

    def cancelled(self, dt: float) -> OrderBuilder:
        self._add(TopicId.ORDERS, dt, {"type": "CANCELLED"})
        return self

    def paid(self, dt: float, payment: str = "p1") -> OrderBuilder:
        """The order service applied payment ``payment`` (the order's PAID)."""
        self._add(TopicId.ORDERS, dt, {"type": "PAID", "payment_id": self.id(payment)})
        return self

    def pay(self, kind: str, dt: float, payment: str = "p1", amount: int = 3000,
            currency: str = "CNY") -> OrderBuilder:
        self._add(TopicId.PAYMENTS, dt, {"type": kind, "payment_id": self.id(payment),
                                         "amount": amount, "currency": currency,
                                         "channel": "card"})
        return self

    def inv(self, kind: str, dt: float, reservation: str = "r1", sku: str = "A",
            qty: int = 1) -> OrderBuilder:
        self._add(TopicId.INVENTORY, dt, {"type": kind, "reservation_id": self.id(reservation),
                                          "sku": sku, "quantity": qty})
        return self

    def ship(self, kind: str, dt: float, shipment: str = "s1",
             items: tuple[tuple[str, int], ...] = (("A", 1),)) -> OrderBuilder:
        body: dict[str, Any] = {"type": kind, "shipment_id": self.id(shipment)}
        if kind == "CREATED":
            body["items"] = [{"sku": sku, "quantity": q} for sku, q in items]
        self._add(TopicId.SHIPPING, dt, body)
        return self


Template = Callable[[OrderBuilder], object]


def healthy(b: OrderBuilder) -> None:
    """A complete, consistent order: no rule fires."""
    (b.placed(0).inv("RESERVED", 0.5).pay("SUCCEEDED", 1).paid(1.2).inv("CONFIRMED", 1.5)
     .ship("CREATED", 2).ship("DISPATCHED", 2.5).ship("DELIVERED", 3))


def healthy_without_orders_topic(b: OrderBuilder) -> None:
    """Consistent, and the order service never reports it (AMOUNT_MISMATCH is skipped)."""
    (b.inv("RESERVED", 0).pay("SUCCEEDED", 1, amount=12345).inv("CONFIRMED", 2)
     .ship("CREATED", 3))


def healthy_cancelled(b: OrderBuilder) -> None:
    """Placed, reserved, paid, then cancelled, refunded and released in time."""
    (b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2).paid(2.5).cancelled(10)
     .pay("REFUNDED", 11).inv("RELEASED", 12))


def paid_in(currency: str, amount: int) -> Template:
    """A consistent order in another currency."""
    def template(b: OrderBuilder) -> None:
        (b.placed(0, total=amount, currency=currency).inv("RESERVED", 0.5)
         .pay("SUCCEEDED", 1, amount=amount, currency=currency).paid(1.2)
         .inv("CONFIRMED", 1.5)
         .ship("CREATED", 2))
    return template


def _faults(r: RuleConfig) -> dict[str, Template]:
    """name -> template; follow-ups come 5 s after the decision they resolve."""
    pt, rt, st = r.payment_timeout / SECOND, r.reservation_timeout / SECOND, \
        r.shipment_timeout / SECOND
    pg, rel, tg = r.payment_grace / SECOND, r.release_timeout / SECOND, r.tcc_grace / SECOND
    cb = r.callback_timeout / SECOND
    return {
        # 1 RESERVATION_WITHOUT_PAYMENT
        "rwp-open": lambda b: b.placed(0).inv("RESERVED", 1),
        "rwp-paid-late": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 1 + pt + 5)
        .paid(1 + pt + 5 + 0.2),
        "rwp-released": lambda b: b.placed(0).inv("RESERVED", 1).inv("RELEASED", 1 + pt + 5),
        # 2 PAYMENT_WITHOUT_RESERVATION
        "pwr-open": lambda b: b.placed(0).pay("SUCCEEDED", 1).paid(1 + 0.2),
        "pwr-reserved-late": lambda b: b.placed(0).pay("SUCCEEDED", 1).paid(1 + 0.2)
        .inv("RESERVED", 1 + rt + 5),
        "pwr-refunded": lambda b: b.placed(0).pay("SUCCEEDED", 1)
        .paid(1 + 0.2).pay("REFUNDED", 1 + rt + 5),
        # 3 PAID_NOT_SHIPPED
        "pns-open": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2).paid(2 + 0.2)
        .inv("CONFIRMED", 3),
        "pns-shipped-late": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2)
        .paid(2 + 0.2)
        .inv("CONFIRMED", 3).ship("CREATED", 3 + st + 5),
        # 4 SHIPPED_WITHOUT_PAYMENT
        "swp-open": lambda b: b.placed(0).inv("RESERVED", 1).ship("CREATED", 2),
        "swp-dispatched": lambda b: b.placed(0).inv("RESERVED", 1).ship("DISPATCHED", 2),
        "swp-paid-late": lambda b: b.placed(0).inv("RESERVED", 1).ship("CREATED", 2)
        .pay("SUCCEEDED", 2 + pg + 5).paid(2 + pg + 5 + 0.2),
        "swp-cancelled": lambda b: b.placed(0).inv("RESERVED", 1).ship("CREATED", 2)
        .ship("CANCELLED", 2 + pg + 5),
        # 5 DUPLICATE_PAYMENT
        "dup-open": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2, "p1")
        .paid(2 + 0.2, "p1")
        .pay("SUCCEEDED", 3, "p2").paid(3 + 0.2, "p2"),
        "dup-same-time": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2, "p2")
        .paid(2 + 0.2, "p2")
        .pay("SUCCEEDED", 2, "p1").paid(2 + 0.2, "p1"),
        "dup-refunded": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2, "p1")
        .paid(2 + 0.2, "p1")
        .pay("SUCCEEDED", 3, "p2").paid(3 + 0.2, "p2").pay("REFUNDED", 10, "p2"),
        # 6 AMOUNT_MISMATCH
        "amount": lambda b: b.placed(0, total=3000).inv("RESERVED", 1)
        .pay("SUCCEEDED", 2, amount=2500).paid(2 + 0.2),
        "amount-currency": lambda b: b.placed(0, currency="CNY").inv("RESERVED", 1)
        .pay("SUCCEEDED", 2, currency="USD").paid(2 + 0.2),
        "amount-placed-after": lambda b: b.inv("RESERVED", 0).pay("SUCCEEDED", 1, amount=999)
        .paid(1 + 0.2)
        .placed(4, total=1000),
        # 7 OVERSHIPMENT
        "over-open": lambda b: b.placed(0).inv("RESERVED", 1, qty=1).pay("SUCCEEDED", 2)
        .paid(2 + 0.2)
        .ship("CREATED", 3, items=(("A", 2),)),
        "over-cancelled": lambda b: b.placed(0).inv("RESERVED", 1, qty=1).pay("SUCCEEDED", 2)
        .paid(2 + 0.2)
        .ship("CREATED", 3, items=(("A", 2),)).ship("CANCELLED", 3 + tg + 5),
        "over-restocked": lambda b: b.placed(0).inv("RESERVED", 1, qty=1).pay("SUCCEEDED", 2)
        .paid(2 + 0.2)
        .ship("CREATED", 3, items=(("A", 2),)).inv("RESERVED", 3 + tg + 5, "r2", qty=1),
        # 7 + 4 on one shipment: two mismatches, one HOLD_SHIPMENT command
        "over-unpaid": lambda b: b.placed(0).ship("CREATED", 1, items=(("B", 1),)),
        # 8 REFUND_WITHOUT_RELEASE (refunded within callback_timeout, never marked PAID)
        "rwr-open": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2)
        .pay("REFUNDED", 10),
        "rwr-two": lambda b: b.placed(0).inv("RESERVED", 1, "r1", sku="A")
        .inv("RESERVED", 1, "r2", sku="B").pay("SUCCEEDED", 2).pay("REFUNDED", 10),
        "rwr-released": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2)
        .pay("REFUNDED", 10).inv("RELEASED", 10 + rel + 5),
        # 9 TCC_EMPTY_ROLLBACK
        "empty-rollback": lambda b: b.placed(0).inv("RELEASED", 1),
        # 10 TCC_HANGING (+ 9, + 1: one RELEASE_STOCK command)
        "hanging": lambda b: b.placed(0).inv("RELEASED", 1).inv("RESERVED", 5),
        # 11 PAYMENT_NOT_APPLIED (one MARK_ORDER_PAID)
        "pna-open": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2)
        .inv("CONFIRMED", 3).ship("CREATED", 4),
        "pna-applied-late": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2)
        .inv("CONFIRMED", 3).ship("CREATED", 4).paid(2 + cb + 5),
        # 12 CANCELLED_BUT_CHARGED (+ 2: one refund)
        "cbc-open": lambda b: b.placed(0).inv("RESERVED", 1).cancelled(2).inv("RELEASED", 3)
        .pay("SUCCEEDED", 5),
        # 13 CANCELLED_BUT_RESERVED
        "cbr-open": lambda b: b.placed(0).inv("RESERVED", 1).cancelled(2),
        "cbr-released-late": lambda b: b.placed(0).inv("RESERVED", 1).cancelled(2)
        .inv("RELEASED", 2 + rel + 5),
        # 14 CANCELLED_BUT_SHIPPED
        "cbs-open": lambda b: b.placed(0).inv("RESERVED", 1).pay("SUCCEEDED", 2).paid(2.5)
        .inv("CONFIRMED", 3).ship("CREATED", 4).cancelled(5).pay("REFUNDED", 6)
        .inv("RELEASED", 7),
        # 15 PAID_WITHOUT_PAYMENT
        "pwp-open": lambda b: b.placed(0).inv("RESERVED", 1).pay("FAILED", 2).paid(3),
        "pwp-paid-late": lambda b: b.placed(0).inv("RESERVED", 1).paid(3)
        .pay("SUCCEEDED", 3 + pg + 5).inv("CONFIRMED", 3 + pg + 6),
    }


FAULTS: dict[str, Template] = _faults(RULES)
HEALTHY: dict[str, Template] = {
    "ok": healthy, "ok-no-order": healthy_without_orders_topic, "ok-cancelled": healthy_cancelled,
}


def fault_horizon(r: RuleConfig = RULES) -> int:
    """Event time (ms) after an order's start by which all its decisions are due."""
    return max(r.shipment_timeout, r.callback_timeout) + r.payment_grace + 30 * SECOND


@dataclass
class Scenario:
    """Input events with arrival keys; the reference output comes from batch.evaluate."""

    rules: RuleConfig = RULES
    partitions: int = PARTITIONS
    seed: int = 1
    lines: list[Line] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # order_id -> template name

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def add(self, topic: TopicId, record: dict[str, Any]) -> None:
        arrival = record["event_time"] + self.rng.randrange(JITTER)
        self.lines.append(Line(topic, record, arrival, len(self.lines)))

    def order(self, kind: str, order_id: str, start: int, template: Template) -> None:
        """Add the events of one order built by a template."""
        self.kinds[order_id] = kind
        template(OrderBuilder(self, order_id, start))

    def add_clock(self, start: int, end: int, period: int = 8 * SECOND) -> None:
        """Healthy orders every `period` on every partition from start to end (inclusive)."""
        counter = 0
        for n, t in enumerate(range(start, end + period, period)):
            for p in range(self.partitions):
                while True:
                    order_id = f"clock-{n}-{counter}"
                    counter += 1
                    if partition_for(order_id, self.partitions) == p:
                        break
                self.order("clock", order_id, t + p * 250, healthy)

    def redeliver(self, fraction: float) -> None:
        """Repeat some events (same event_id) right after themselves, as a redelivery."""
        extra = [Line(line.topic, line.record, line.arrival, len(self.lines) + i)
                 for i, line in enumerate(self.lines) if self.rng.random() < fraction]
        self.lines.extend(extra)

    # -- arrival orders ------------------------------------------------------------------

    def in_time_order(self) -> list[Line]:
        """All topics interleaved by arrival (event time plus jitter)."""
        return sorted(self.lines, key=lambda line: (line.arrival, line.seq))

    def topic_after_topic(self) -> list[Line]:
        """All orders events, then all payments, inventory, shipping (each by arrival)."""
        ordered = self.in_time_order()
        return [line for topic in INPUTS for line in ordered if line.topic is topic]

    def chunks(self, window: int) -> Iterator[list[Line]]:
        """The interleaved arrival order cut into windows of `window` ms of arrival time."""
        ordered = self.in_time_order()
        start = 0
        while start < len(ordered):
            limit = ordered[start].arrival + window
            end = start
            while end < len(ordered) and ordered[end].arrival < limit:
                end += 1
            yield ordered[start:end]
            start = end

    # -- the reference --------------------------------------------------------------------

    def events(self) -> list[Event]:
        """The events as the worker sees them, in arrival order (with redeliveries)."""
        return [line.event() for line in self.in_time_order()]

    def expected(self, exclude: set[int] | None = None) -> Outputs:
        """What batch.evaluate says the worker must emit (normalised)."""
        events = [line.event() for line in self.in_time_order()
                  if exclude is None or line.seq not in exclude]
        ref = expected_records(evaluate(events, self.rules, partitions=self.partitions))
        return Outputs(ref.mismatches, ref.commands)


@dataclass
class Outputs:
    """Normalised mismatches and commands, sorted."""

    mismatches: list[dict[str, Any]]
    commands: list[dict[str, Any]]


def rules_scenario(copies: int = 3, seed: int = 1, step: int = 2 * SECOND) -> Scenario:
    """Every fault template `copies` times, healthy orders in between, clock orders on every
    partition until every fault's decisions are due, and a few redeliveries."""
    s = Scenario(seed=seed)
    t = T0
    healthy_kinds = list(HEALTHY.items())
    for copy in range(copies):
        for n, (name, template) in enumerate(FAULTS.items()):
            s.order(name, f"{name}-{copy}", t, template)
            kind, fine = healthy_kinds[n % len(healthy_kinds)]
            s.order(kind, f"{kind}-{copy}-{n}", t + step // 2, fine)
            t += step
    s.add_clock(T0, t + fault_horizon(s.rules) + 2 * s.rules.allowed_lateness)
    s.redeliver(0.03)
    return s


def mixed_scenario(orders: int, seed: int = 2, step: int = 200) -> Scenario:
    """`orders` orders, about half of them faulty (random templates), `step` ms apart, plus
    clock orders; for the recovery tests."""
    s = Scenario(seed=seed)
    rng = random.Random(seed)
    faults = list(FAULTS.items())
    fine = list(HEALTHY.items())
    t = T0
    for i in range(orders):
        name, template = rng.choice(faults) if rng.random() < 0.5 else rng.choice(fine)
        s.order(name, f"{name}-{i}", t, template)
        t += step
    s.add_clock(T0, t + fault_horizon(s.rules) + 2 * s.rules.allowed_lateness)
    s.redeliver(0.02)
    return s
