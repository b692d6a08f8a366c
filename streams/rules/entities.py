"""The state of an order's entities (payments, reservations, shipments) as of an event time."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from streams.model import LIFECYCLE, Event, Source, Step, step_of

#: Ranks (``streams.model.LIFECYCLE``) of the event types the rules look at.
PLACED, ORDER_CANCELLED, ORDER_PAID = 0, 1, 2
SUCCEEDED, FAILED, REFUNDED = 0, 1, 2
RESERVED, CONFIRMED, RELEASED = 0, 1, 2
CREATED, DISPATCHED, DELIVERED, SHIPMENT_CANCELLED = 0, 1, 2, 3

#: The states the rules name, as sets of ranks.
ACTIVE_PAYMENT = frozenset({SUCCEEDED})
ACTIVE_RESERVATION = frozenset({RESERVED, CONFIRMED})
LIVE_SHIPMENT = frozenset({CREATED, DISPATCHED, DELIVERED})
SHIPPED = frozenset({DISPATCHED, DELIVERED})
_PLACED = frozenset({PLACED})
_CANCELLED = frozenset({ORDER_CANCELLED})
_PAID = frozenset({ORDER_PAID})
#: the entity states a parcel on its way has (CANCELLED_BUT_SHIPPED)
ON_ITS_WAY = frozenset({CREATED, DISPATCHED})

#: one entity's steps in lifecycle order (see ``lifecycle_key``)
Log = list[Step]
_NO_STEPS: list[Step] = []


def lifecycle_key(step: Step) -> tuple[int, int, str]:
    """Order of an entity's log: (event_time, lifecycle rank, event_id)."""
    return (step.event_time, step.rank, step.event_id)


def trigger_key(step: Step) -> tuple[int, str]:
    """Order of triggers when a rule wants the *first* event: (event_time, event_id)."""
    return (step.event_time, step.event_id)


#: trigger_key as a C-level key function (what min() here uses)
_by_trigger: Any = attrgetter("event_time", "event_id")


def dedup(events: Iterable[Event]) -> list[Event]:
    """The events with duplicate event_ids removed (the first occurrence is kept)."""
    result = list(events)
    if len({event.event_id for event in result}) == len(result):
        return result
    seen: set[str] = set()
    unique: list[Event] = []
    for event in result:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


def insert_step(log: Log, step: Step) -> None:
    """Put ``step`` into an entity's log at its place in lifecycle order."""
    key = lifecycle_key(step)
    at = len(log)
    while at > 0 and lifecycle_key(log[at - 1]) > key:  # mostly in order: scan from the end
        at -= 1
    log.insert(at, step)


#: an order's logs: its own, then payment, reservation and shipment id -> log
Logs = tuple[Log, dict[str, Log], dict[str, Log], dict[str, Log]]


def place(logs: Logs, event: Event) -> None:
    """Put an event, as a Step, into its entity's log (created if new) of an order's logs."""
    step = step_of(event)
    source = event.source
    if source is Source.ORDERS:  # its entity is the order itself
        insert_step(logs[0], step)
        return
    entities = logs[1] if source is Source.PAYMENTS else (
        logs[2] if source is Source.INVENTORY else logs[3])
    log = entities.get(event.entity_id)
    if log is None:
        entities[event.entity_id] = [step]
    else:
        insert_step(log, step)


class OrderView:
    """Read-only queries over one order's events, kept as one log per entity.

    Every query takes ``at``: only events with ``event_time <= at`` count. The state of an
    entity at ``at`` is the type of its latest such event, ties at the same event_time broken
    by lifecycle rank and then by event_id (see ``lifecycle_key``).

    Built from events (deduplicated by event_id, first occurrence kept), or over the logs of
    an engine state as they are (``logs``: the order's own log, then payment, reservation and
    shipment id -> log; each log in lifecycle order, no event_id twice): nothing is copied
    or sorted, so the view must not outlive a change of those logs.
    """

    def __init__(self, order_id: str, events: Iterable[Event] = (), unique: bool = False,
                 logs: Logs | None = None) -> None:
        """``unique``: the caller knows no two events share an event_id (no dedup pass)."""
        self.order_id = order_id
        if logs is None:
            logs = ([], {}, {}, {})
            for event in (events if unique else dedup(events)):
                place(logs, event)
        self.orders, self.payments, self.reservations, self.shipments = logs
        self._ids: dict[Source, list[str]] = {}

    def entities(self, source: Source) -> dict[str, Log]:
        """Entity id -> log of one source (the order's own log under its order_id)."""
        if source is Source.PAYMENTS:
            return self.payments
        if source is Source.INVENTORY:
            return self.reservations
        if source is Source.SHIPPING:
            return self.shipments
        return {self.order_id: self.orders} if self.orders else {}

    def log(self, source: Source, entity_id: str) -> Log:
        """The entity's whole log, in lifecycle order (do not modify)."""
        if source is Source.ORDERS:
            return self.orders if entity_id == self.order_id else _NO_STEPS
        return self.entities(source).get(entity_id, _NO_STEPS)

    # -- single entities -------------------------------------------------------------------

    def history(self, source: Source, entity_id: str, at: int) -> Log:
        """The entity's steps with event_time <= at, in lifecycle order (do not modify)."""
        steps = self.log(source, entity_id)
        if not steps or steps[-1].event_time <= at:  # lifecycle order is by event_time first
            return steps
        return [s for s in steps if s.event_time <= at]

    def latest(self, source: Source, entity_id: str, at: int) -> Step | None:
        """The step that defines the entity's state at ``at`` (None: not yet seen)."""
        steps = self.log(source, entity_id)
        i = len(steps) - 1
        while i >= 0 and steps[i].event_time > at:
            i -= 1
        return steps[i] if i >= 0 else None

    def rank(self, source: Source, entity_id: str, at: int) -> int:
        """The rank of the entity's state at ``at``; -1 when it has no event yet."""
        step = self.latest(source, entity_id, at)
        return step.rank if step is not None else -1

    def state(self, source: Source, entity_id: str, at: int) -> str | None:
        """The entity's state (an event type) at ``at``; None when it has no event yet."""
        step = self.latest(source, entity_id, at)
        if step is None:
            return None
        return LIFECYCLE[source][step.rank]

    def first(self, source: Source, entity_id: str, ranks: frozenset[int], at: int
              ) -> Step | None:
        """The entity's first step of one of ``ranks`` by (event_time, event_id), up to
        ``at``."""
        found = [s for s in self.history(source, entity_id, at) if s.rank in ranks]
        if not found:
            return None
        return found[0] if len(found) == 1 else min(found, key=_by_trigger)

    def entity_ids(self, source: Source) -> list[str]:
        """Every entity of a source the order has seen, sorted (do not modify)."""
        ids = self._ids.get(source)
        if ids is None:
            ids = self._ids[source] = sorted(self.entities(source))
        return ids

    # -- the order's entities in a state ---------------------------------------------------

    def _in_state(self, source: Source, ranks: frozenset[int], at: int) -> list[str]:
        return [e for e in self.entity_ids(source) if self.rank(source, e, at) in ranks]

    def active_payments(self, at: int) -> list[str]:
        """Payments whose state at ``at`` is SUCCEEDED, sorted by payment_id."""
        return self._in_state(Source.PAYMENTS, ACTIVE_PAYMENT, at)

    def active_reservations(self, at: int) -> list[str]:
        """Reservations whose state at ``at`` is RESERVED or CONFIRMED, sorted."""
        return self._in_state(Source.INVENTORY, ACTIVE_RESERVATION, at)

    def live_shipments(self, at: int) -> list[str]:
        """Shipments whose state at ``at`` is CREATED, DISPATCHED or DELIVERED, sorted."""
        return self._in_state(Source.SHIPPING, LIVE_SHIPMENT, at)

    def shipped(self, at: int) -> list[str]:
        """Shipments whose state at ``at`` is DISPATCHED or DELIVERED, sorted."""
        return self._in_state(Source.SHIPPING, SHIPPED, at)

    def any_succeeded(self, at: int) -> bool:
        """Whether some payment has a SUCCEEDED event with event_time <= at."""
        for steps in self.payments.values():
            for step in steps:
                if step.event_time > at:
                    break
                if step.rank == SUCCEEDED:
                    return True
        return False

    def placed(self, at: int) -> Step | None:
        """The order's first PLACED event by (event_time, event_id), up to ``at``."""
        return self.first(Source.ORDERS, self.order_id, _PLACED, at)

    def cancelled(self, at: int) -> Step | None:
        """The order's first CANCELLED event, up to ``at`` (a cancellation is for good)."""
        return self.first(Source.ORDERS, self.order_id, _CANCELLED, at)

    def paid(self, at: int) -> Step | None:
        """The order's first PAID event (the order service applied a payment), up to ``at``."""
        return self.first(Source.ORDERS, self.order_id, _PAID, at)

    # -- quantities ------------------------------------------------------------------------

    def reservation_line(self, reservation_id: str, at: int) -> tuple[str, int] | None:
        """(sku, quantity) of a reservation: those of its latest event as of ``at``."""
        step = self.latest(Source.INVENTORY, reservation_id, at)
        if step is None or step.sku is None:
            return None
        return (step.sku, step.quantity or 0)

    def shipment_items(self, shipment_id: str, at: int) -> dict[str, int]:
        """sku -> quantity of a shipment: the items of its latest CREATED event as of ``at``."""
        created = [s for s in self.history(Source.SHIPPING, shipment_id, at) if s.rank == CREATED]
        items: dict[str, int] = {}
        if created:
            for item in created[-1].items:
                items[item.sku] = items.get(item.sku, 0) + item.quantity
        return items

    def reserved_by_sku(self, at: int) -> dict[str, int]:
        """sku -> total quantity over the reservations active at ``at``."""
        totals: dict[str, int] = {}
        for reservation in self.active_reservations(at):
            line = self.reservation_line(reservation, at)
            if line is not None:
                totals[line[0]] = totals.get(line[0], 0) + line[1]
        return totals

    def shipped_by_sku(self, at: int) -> dict[str, int]:
        """sku -> total quantity over the shipments live at ``at``."""
        totals: dict[str, int] = {}
        for shipment in self.live_shipments(at):
            for sku, quantity in self.shipment_items(shipment, at).items():
                totals[sku] = totals.get(sku, 0) + quantity
        return totals

    def overshipped(self, at: int) -> tuple[str, int, int] | None:
        """(sku, shipped, reserved) of the first sku (sorted) whose quantity over the live
        shipments exceeds its quantity over the active reservations at ``at``."""
        reserved = self.reserved_by_sku(at)
        for sku, shipped in sorted(self.shipped_by_sku(at).items()):
            if shipped > reserved.get(sku, 0):
                return (sku, shipped, reserved.get(sku, 0))
        return None

    def earlier_payment(self, payment: str, since: int, at: int) -> str | None:
        """Another payment active at ``at`` whose first SUCCEEDED is before ``since``, or at
        ``since`` with a smaller payment_id; the earliest such (by time, then id)."""
        best: tuple[int, str] | None = None
        for other in self.active_payments(at):
            first = self.first(Source.PAYMENTS, other, ACTIVE_PAYMENT, at)
            if other == payment or first is None:
                continue
            key = (first.event_time, other)
            if key < (since, payment) and (best is None or key < best):
                best = key
        return best[1] if best else None

    # -- the order's events ----------------------------------------------------------------

    def logs(self) -> list[Log]:
        """Every entity's log (the order's own first)."""
        return [self.orders, *self.payments.values(), *self.reservations.values(),
                *self.shipments.values()]

    def has_event(self, event_id: str) -> bool:
        """Whether the order has an event with this event_id."""
        for steps in self.logs():
            for step in steps:
                if step.event_id == event_id:
                    return True
        return False

    def event_times(self) -> list[int]:
        """The distinct event times of the order, ascending."""
        return sorted({s.event_time for steps in self.logs() for s in steps})

    def event_times_between(self, low: int | None, high: int) -> list[int]:
        """The distinct event times T of the order with low < T <= high, ascending (low None:
        no lower bound)."""
        floor = -(2**62) if low is None else low
        return sorted({s.event_time for steps in self.logs() for s in steps
                       if floor < s.event_time <= high})

    def first_event_at(self, at: int) -> Step | None:
        """The step with the smallest event_id among those with event_time == at."""
        best: Step | None = None
        for steps in self.logs():
            for step in steps:
                if step.event_time == at and (best is None or step.event_id < best.event_id):
                    best = step
        return best

