"""The simulated world (clocks, catalog, delays) and the builder of one order's events."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.config import RuleConfig
from topology.topics import TopicId

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000

INPUTS: tuple[TopicId, ...] = (
    TopicId.ORDERS, TopicId.PAYMENTS, TopicId.INVENTORY, TopicId.SHIPPING,
)

#: (code, share of the orders, price factor against CNY)
CURRENCIES: tuple[tuple[str, float, float], ...] = (
    ("CNY", 0.7, 1.0),
    ("USD", 0.2, 1 / 7.1),
    ("EUR", 0.1, 1 / 7.7),
)
CHANNELS: dict[str, tuple[str, ...]] = {
    "CNY": ("alipay", "wechat", "unionpay"),
    "USD": ("card", "paypal", "applepay"),
    "EUR": ("card", "paypal", "sepa"),
}


@dataclass(frozen=True)
class Timing:
    """Delay bounds (ms) derived from the rule thresholds, so that healthy traffic stays
    inside every horizon, and the publishing disorder, kept below allowed_lateness."""

    rules: RuleConfig
    max_skew: int  #: largest clock skew of a service (either sign)
    jitter: int  #: largest per-event publish delay on top of the topic's lag
    lag: int  #: largest per-topic publish lag
    redelivery: int  #: largest delay of a redelivery after the original
    quick: int  #: a quarter of the shortest rule horizon
    settle: int  #: gap that orders two services' events despite their skews

    @classmethod
    def of(cls, rules: RuleConfig, max_skew: int) -> Timing:
        """The timing for these thresholds; skew and disorder shrink with small thresholds."""
        lateness = rules.allowed_lateness
        shortest = min(rules.payment_timeout, rules.reservation_timeout, rules.payment_grace,
                       rules.release_timeout, rules.tcc_grace, rules.callback_timeout)
        skew = max(0, min(max_skew, shortest // 20, lateness // 12))
        quick = max(1, shortest // 4)
        return cls(rules, skew, jitter=min(4 * SECOND, lateness // 6),
                   lag=min(3 * SECOND, lateness // 6),
                   redelivery=min(8 * SECOND, lateness // 6), quick=quick,
                   settle=2 * skew + min(SECOND, quick))


@dataclass(frozen=True)
class World:
    """What every order of a run shares: seed, id tag, service clocks, publish lags, catalog."""

    seed: int
    tag: str
    timing: Timing
    skew: dict[TopicId, int]
    lag: dict[TopicId, int]
    catalog: tuple[tuple[str, int], ...]  #: (sku, price in CNY fen)
    users: int

    @classmethod
    def create(cls, seed: int, timing: Timing, orders: int) -> World:
        """A world drawn from the seed."""
        rng = random.Random(f"crosscheck-simulate-world:{seed}")
        tag = hashlib.sha256(str(seed).encode()).hexdigest()[:4].upper()
        skew = {t: rng.randint(-timing.max_skew, timing.max_skew) for t in INPUTS}
        lag = {t: rng.randint(0, timing.lag) for t in INPUTS}
        catalog = tuple(
            (f"SKU-{10_000 + i * 37}", rng.choice((990, 1_990, 2_990, 4_990, 9_900, 19_900,
                                                   39_900, 129_900)) + rng.randrange(0, 900, 100))
            for i in range(60)
        )
        return cls(seed, tag, timing, skew, lag, catalog, max(50, orders // 3))


class Pending(NamedTuple):
    """One generated event before publishing: true time (no skew) and its record.

    ``callback``: an order's PAID, whose publish delays come from the order's callback
    stream (``OrderBuilder.callbacks``), as its time does, not from the order's own stream.
    """

    true_time: int
    topic: TopicId
    record: dict[str, Any]
    callback: bool = False


@dataclass
class Reservation:
    """A reservation the inventory service knows: sku, quantity and its latest state."""

    rid: str
    sku: str
    quantity: int
    state: str = "RESERVED"
    #: the coordinator gave up on it: never confirmed or released by the order's flow
    orphan: bool = False


@dataclass
class OrderBuilder:
    """Appends the events of one order; times passed in are true (unskewed) times.

    The order service's PAID events (``order_paid``, and the one ``checkout`` schedules for
    a successful payment) are appended by ``finish`` once the flow is done: their event ids
    follow the order's other ids, and their delays come from a stream of their own
    (``callbacks``), so an order's other events are the same with or without them.
    """

    world: World
    number: int
    t0: int
    rng: random.Random
    events: list[Pending] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    lines: list[tuple[str, int, int]] = field(default_factory=list)  #: sku, quantity, price
    #: (true time, payment_id) of the PAID events the order service will publish
    applied: list[tuple[int, str]] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        #: the order's stream of payment-callback delays
        self.callbacks = random.Random(
            f"crosscheck-simulate-callback:{self.world.seed}:{self.number}")
        rng = self.rng
        self.order_id = f"ORD-{self.world.tag}-{self.number:06d}"
        u = rng.random()
        self.currency, factor = CURRENCIES[-1][0], CURRENCIES[-1][2]
        for code, share, rate in CURRENCIES:
            if u < share:
                self.currency, factor = code, rate
                break
            u -= share
        count = 1 + sum(rng.random() < p for p in (0.55, 0.3, 0.12))
        for sku, price in rng.sample(self.world.catalog, count):
            quantity = rng.choice((1, 1, 1, 1, 2, 2, 3))
            self.lines.append((sku, quantity, max(1, round(price * factor))))
        self.total = sum(q * p for _, q, p in self.lines)
        self.user_id = f"U-{self.world.tag}-{rng.randrange(self.world.users):05d}"
        self.channel = rng.choice(CHANNELS[self.currency])

    # -- helpers ------------------------------------------------------------------------------

    @property
    def rules(self) -> RuleConfig:
        """The rule thresholds the traffic is shaped for."""
        return self.world.timing.rules

    @property
    def timing(self) -> Timing:
        """Delay bounds of the run."""
        return self.world.timing

    def between(self, low: int, high: int) -> int:
        """A uniformly drawn duration in [low, high] (ms); high below low means low."""
        return low + int(self.rng.random() * max(0, high - low))

    def chance(self, p: float) -> bool:
        """True with probability p."""
        return self.rng.random() < p

    def new_id(self, kind: str) -> str:
        """A fresh id of a kind (PAY, RSV, SHP, EV), unique within the run."""
        n = self._counters.get(kind, 0) + 1
        self._counters[kind] = n
        return f"{kind}-{self.world.tag}-{self.number:06d}-{n:02d}"

    def units(self) -> dict[str, int]:
        """sku -> ordered quantity."""
        return {sku: quantity for sku, quantity, _ in self.lines}

    def last_time(self) -> int:
        """The latest true time of the order so far."""
        return max(p.true_time for p in self.events)

    def emit(self, topic: TopicId, true_time: int, kind: str, *, callback: bool = False,
             **fields: Any) -> str:
        """Append an event stamped by the topic's service clock; returns its event_id."""
        event_id = self.new_id("EV")
        record: dict[str, Any] = {
            "event_id": event_id,
            "order_id": self.order_id,
            "type": kind,
            "event_time": max(0, true_time + self.world.skew[topic]),
        }
        record.update(fields)
        self.events.append(Pending(true_time, topic, record, callback))
        return event_id

    def finish(self) -> None:
        """Append the PAID events the order service publishes (in time order), once."""
        for t, pid in sorted(self.applied):
            self.order_event(t, "PAID", payment_id=pid)
        self.applied = []

    # -- orders -------------------------------------------------------------------------------

    def order_event(self, t: int, kind: str, payment_id: str | None = None) -> None:
        """PLACED, PAID or CANCELLED, with the order's items (the order service's snapshot);
        a PAID carries the payment it applied."""
        items = [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in self.lines]
        self.emit(TopicId.ORDERS, t, kind, callback=kind == "PAID", user_id=self.user_id,
                  items=items, total_amount=self.total, currency=self.currency,
                  payment_id=payment_id or "")

    def order_paid(self, t: int, pid: str) -> None:
        """The order service marks the order PAID at true time t, applying payment pid
        (published by ``finish``)."""
        self.applied.append((t, pid))

    def callback_delay(self) -> int:
        """How long a payment's callback takes to reach the order service: a few hundred ms
        to 3 s (within a quarter of the shortest rule horizon), well inside callback_timeout
        and before any cancellation of a paid order."""
        high = min(3 * SECOND, self.timing.quick)
        low = min(200, high)
        return low + int(self.callbacks.random() * (high - low))

    # -- inventory (TCC) ----------------------------------------------------------------------

    def reserve(self, t: int, sku: str, quantity: int, rid: str | None = None) -> str:
        """Try: RESERVED (a new reservation unless rid is given)."""
        rid = rid or self.new_id("RSV")
        self.reservations.setdefault(rid, Reservation(rid, sku, quantity)).state = "RESERVED"
        self.emit(TopicId.INVENTORY, t, "RESERVED", reservation_id=rid, sku=sku,
                  quantity=quantity)
        return rid

    def inventory(self, t: int, rid: str, kind: str) -> None:
        """CONFIRMED or RELEASED of a reservation (RELEASED of an unknown one: empty Cancel)."""
        r = self.reservations[rid]
        r.state = kind
        self.emit(TopicId.INVENTORY, t, kind, reservation_id=rid, sku=r.sku, quantity=r.quantity)

    def empty_cancel(self, t: int, sku: str, quantity: int) -> str:
        """Cancel of a Try the inventory never saw: RELEASED of a new, orphaned reservation."""
        rid = self.new_id("RSV")
        self.reservations[rid] = Reservation(rid, sku, quantity, "RELEASED", orphan=True)
        self.emit(TopicId.INVENTORY, t, "RELEASED", reservation_id=rid, sku=sku,
                  quantity=quantity)
        return rid

    def reserve_lines(self, t: int) -> int:
        """One Try per order line shortly after t; returns the true time of the last."""
        for sku, quantity, _ in self.lines:
            t += self.between(120, 700)
            self.reserve(t, sku, quantity)
        return t

    def active(self) -> list[str]:
        """Reservations of the order's flow currently RESERVED or CONFIRMED."""
        return [r.rid for r in self.reservations.values()
                if r.state != "RELEASED" and not r.orphan]

    def each_active(self, t: int, kind: str) -> int:
        """CONFIRMED or RELEASED for every active reservation; returns the last true time."""
        for rid in self.active():
            t += self.between(100, min(1_500, self.timing.quick))
            self.inventory(t, rid, kind)
        return t

    # -- payments -----------------------------------------------------------------------------

    def payment(self, t: int, kind: str, pid: str, amount: int | None = None,
                currency: str | None = None) -> None:
        """A payments event of payment pid."""
        self.emit(TopicId.PAYMENTS, t, kind, payment_id=pid,
                  amount=self.total if amount is None else amount,
                  currency=currency or self.currency, channel=self.channel)

    def first_attempt(self) -> int:
        """When the customer first tries to pay (well inside payment_timeout)."""
        pt = self.rules.payment_timeout
        return self.t0 + self.between(min(20 * SECOND, pt // 20), pt * 3 // 10)

    def retry_gap(self) -> int:
        """Time between two payment attempts."""
        pt = self.rules.payment_timeout
        return self.between(min(5 * SECOND, pt // 50), pt * 8 // 100)

    def failures(self) -> int:
        """How many declined attempts precede the successful one."""
        u = self.rng.random()
        return 0 if u < 0.8 else 1 if u < 0.95 else 2

    def checkout(self, t: int, failures: int, amount: int | None = None,
                 currency: str | None = None, *, applied: bool = True) -> tuple[str, int]:
        """Declined attempts (each its own payment_id), then a SUCCEEDED one at the returned
        true time. Its callback reaches the order service, which marks the order PAID
        (unless it already is), unless not ``applied`` (the callback is lost or refused)."""
        for _ in range(failures):
            self.payment(t, "FAILED", self.new_id("PAY"), amount, currency)
            t += self.retry_gap()
        pid = self.new_id("PAY")
        self.payment(t, "SUCCEEDED", pid, amount, currency)
        if applied and not self.applied:
            self.order_paid(t + self.callback_delay(), pid)
        return pid, t

    def refund_then_release(self, t: int, pid: str) -> int:
        """REFUNDED, then (after the services' skew) RELEASED of every active reservation."""
        self.payment(t, "REFUNDED", pid)
        t += self.timing.settle + self.between(0, min(3 * SECOND, self.timing.quick))
        return self.each_active(t, "RELEASED")

    # -- shipping -----------------------------------------------------------------------------

    def create_parcel(self, t: int, items: dict[str, int]) -> str:
        """CREATED of a new shipment with these items."""
        sid = self.new_id("SHP")
        self.emit(TopicId.SHIPPING, t, "CREATED", shipment_id=sid,
                  items=[{"sku": s, "quantity": q} for s, q in sorted(items.items())])
        return sid

    def parcel_event(self, t: int, sid: str, kind: str) -> None:
        """DISPATCHED, DELIVERED or CANCELLED of a shipment."""
        self.emit(TopicId.SHIPPING, t, kind, shipment_id=sid, items=[])

    def split(self, items: dict[str, int], parts: int) -> list[dict[str, int]]:
        """The units of ``items`` spread over ``parts`` non-empty parcels."""
        tokens = [sku for sku, q in sorted(items.items()) for _ in range(q)]
        parts = max(1, min(parts, len(tokens)))
        self.rng.shuffle(tokens)
        cuts = sorted(self.rng.sample(range(1, len(tokens)), parts - 1)) if parts > 1 else []
        parcels: list[dict[str, int]] = []
        for lo, hi in zip([0, *cuts], [*cuts, len(tokens)], strict=True):
            parcel: dict[str, int] = {}
            for sku in tokens[lo:hi]:
                parcel[sku] = parcel.get(sku, 0) + 1
            parcels.append(parcel)
        return parcels
