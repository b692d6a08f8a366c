"""The state of an order's entities (payments, reservations, shipments) as of an event time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter

from streams.model import Event, Source

#: Lifecycle rank of each event type: at equal event_time the later lifecycle step wins.
RANK: dict[Source, dict[str, int]] = {
    Source.ORDERS: {"PLACED": 0, "CANCELLED": 1},
    Source.PAYMENTS: {"SUCCEEDED": 0, "FAILED": 1, "REFUNDED": 2},
    Source.INVENTORY: {"RESERVED": 0, "CONFIRMED": 1, "RELEASED": 2},
    Source.SHIPPING: {"CREATED": 0, "DISPATCHED": 1, "DELIVERED": 2, "CANCELLED": 3},
}

ACTIVE_PAYMENT = frozenset({"SUCCEEDED"})
ACTIVE_RESERVATION = frozenset({"RESERVED", "CONFIRMED"})
LIVE_SHIPMENT = frozenset({"CREATED", "DISPATCHED", "DELIVERED"})
SHIPPED = frozenset({"DISPATCHED", "DELIVERED"})
_PLACED = frozenset({"PLACED"})

_UNKNOWN_RANK = 99


def lifecycle_key(event: Event) -> tuple[int, int, str]:
    """Sort key of an entity's events: (event_time, lifecycle rank, event_id)."""
    rank = RANK[event.source].get(event.type, _UNKNOWN_RANK)
    return (event.event_time, rank, event.event_id)


#: trigger_key as a C-level key function (what the sorts and min() here use)
_by_trigger: Callable[[Event], tuple[int, str]] = attrgetter("event_time", "event_id")


def trigger_key(event: Event) -> tuple[int, str]:
    """Order of triggers when a rule wants the *first* event: (event_time, event_id)."""
    return (event.event_time, event.event_id)


def dedup(events: Iterable[Event]) -> list[Event]:
    """The events with duplicate event_ids removed (the first occurrence is kept)."""
    result = list(events)
    if len({event.event_id for event in result}) == len(result):
        return result  # the usual case: an order's stored history has no duplicates
    seen: set[str] = set()
    unique: list[Event] = []
    for event in result:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


class OrderView:
    """Read-only queries over one order's (deduplicated) events.

    Every query takes ``at``: only events with ``event_time <= at`` count. The state of an
    entity at ``at`` is the type of its latest such event, ties at the same event_time broken
    by lifecycle rank and then by event_id (see ``lifecycle_key``).
    """

    def __init__(self, order_id: str, events: Iterable[Event], unique: bool = False) -> None:
        """``unique``: the caller knows no two events share an event_id (the engine's
        stored history), so the duplicate check is skipped."""
        self.order_id = order_id
        self.events: list[Event] = sorted(events if unique else dedup(events), key=_by_trigger)
        entities: dict[tuple[Source, str], list[Event]] = {}
        for event in self.events:
            key = (event.source, event.entity_id)
            same = entities.get(key)
            if same is None:
                entities[key] = [event]
            else:
                same.append(event)
        for key, evs in entities.items():
            # each list is in (event_time, event_id) order already, which is lifecycle
            # order unless two of its events share an event_time
            if len(evs) > 1 and len({e.event_time for e in evs}) < len(evs):
                entities[key] = sorted(evs, key=lifecycle_key)
        self._entities = entities
        self._ids: dict[Source, list[str]] = {}

    # -- single entities -------------------------------------------------------------------

    def history(self, source: Source, entity_id: str, at: int) -> list[Event]:
        """The entity's events with event_time <= at, in lifecycle order (do not modify)."""
        events = self._entities.get((source, entity_id))
        if not events:
            return []
        if events[-1].event_time <= at:  # lifecycle order is by event_time first
            return events
        return [e for e in events if e.event_time <= at]

    def latest(self, source: Source, entity_id: str, at: int) -> Event | None:
        """The event that defines the entity's state at ``at`` (None: not yet seen)."""
        events = self.history(source, entity_id, at)
        return events[-1] if events else None

    def state(self, source: Source, entity_id: str, at: int) -> str | None:
        """The entity's state (an event type) at ``at``; None when it has no event yet."""
        event = self.latest(source, entity_id, at)
        return event.type if event else None

    def first(self, source: Source, entity_id: str, types: frozenset[str], at: int) -> Event | None:
        """The entity's first event of one of ``types`` by (event_time, event_id), up to ``at``."""
        found = [e for e in self.history(source, entity_id, at) if e.type in types]
        return min(found, key=_by_trigger) if found else None

    def entity_ids(self, source: Source) -> list[str]:
        """Every entity of a source the order has seen, sorted (do not modify)."""
        ids = self._ids.get(source)
        if ids is None:
            ids = self._ids[source] = sorted(
                entity for (src, entity) in self._entities if src == source)
        return ids

    # -- the order's entities in a state ---------------------------------------------------

    def _in_state(self, source: Source, states: frozenset[str], at: int) -> list[str]:
        return [e for e in self.entity_ids(source) if self.state(source, e, at) in states]

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

    def succeeded_payment_events(self, at: int) -> list[Event]:
        """Every SUCCEEDED payment event with event_time <= at, by (event_time, event_id)."""
        return [
            e
            for e in self.events
            if e.source is Source.PAYMENTS and e.type == "SUCCEEDED" and e.event_time <= at
        ]

    def placed(self, at: int) -> Event | None:
        """The order's first PLACED event by (event_time, event_id), up to ``at``."""
        return self.first(Source.ORDERS, self.order_id, _PLACED, at)

    # -- quantities ------------------------------------------------------------------------

    def reservation_line(self, reservation_id: str, at: int) -> tuple[str, int] | None:
        """(sku, quantity) of a reservation: those of its latest event as of ``at``."""
        event = self.latest(Source.INVENTORY, reservation_id, at)
        if event is None or event.sku is None:
            return None
        return (event.sku, event.quantity or 0)

    def shipment_items(self, shipment_id: str, at: int) -> dict[str, int]:
        """sku -> quantity of a shipment: the items of its latest CREATED event as of ``at``."""
        created = [e for e in self.history(Source.SHIPPING, shipment_id, at) if e.type == "CREATED"]
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

    # -- times -----------------------------------------------------------------------------

    def event_times(self) -> list[int]:
        """The distinct event times of the order, ascending."""
        return sorted({e.event_time for e in self.events})

    def first_event_at(self, at: int) -> Event | None:
        """The event with the smallest event_id among those with event_time == at."""
        found = [e for e in self.events if e.event_time == at]
        return min(found, key=lambda e: e.event_id) if found else None
