"""Plain data the engine works on: input events, mismatches and commands (times in epoch ms)."""

from __future__ import annotations

import enum

import msgspec


class Source(enum.StrEnum):
    """The input stream an event came from (a topic id of the topology)."""

    ORDERS = "orders"
    PAYMENTS = "payments"
    INVENTORY = "inventory"
    SHIPPING = "shipping"


class Item(msgspec.Struct, frozen=True, array_like=True):
    """One line of an order or a shipment (unit_price only on orders)."""

    sku: str
    quantity: int
    unit_price: int | None = None


class Event(msgspec.Struct, frozen=True, array_like=True):
    """One validated input event, flattened.

    ``entity_id`` is the id of the thing the event is about: payment_id, reservation_id or
    shipment_id, and the order_id for order events. Fields a source does not have are None.
    ``payment_id`` is an order event's own (on PAID: the payment the order service applied);
    a payments event's payment_id is its ``entity_id``.
    """

    source: Source
    event_id: str
    order_id: str
    type: str
    event_time: int
    entity_id: str
    amount: int | None = None  # payments
    currency: str | None = None  # payments, orders
    channel: str | None = None  # payments
    sku: str | None = None  # inventory
    quantity: int | None = None  # inventory
    items: tuple[Item, ...] = ()  # orders, shipping
    user_id: str | None = None  # orders
    total_amount: int | None = None  # orders
    payment_id: str | None = None  # orders (PAID, optional)


#: Each source's event types in lifecycle order. A type's index is its *rank*: at equal
#: event_time the later lifecycle step wins (see ``streams.rules.entities``), and the engine's
#: state stores an event's type as its rank, so a type added later takes the next rank (an
#: order's PAID is 2: CANCELLED keeps the rank 1 stored states have for it).
LIFECYCLE: dict[Source, tuple[str, ...]] = {
    Source.ORDERS: ("PLACED", "CANCELLED", "PAID"),
    Source.PAYMENTS: ("SUCCEEDED", "FAILED", "REFUNDED"),
    Source.INVENTORY: ("RESERVED", "CONFIRMED", "RELEASED"),
    Source.SHIPPING: ("CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"),
}
#: source -> event type -> rank (its index in ``LIFECYCLE``)
RANK: dict[Source, dict[str, int]] = {
    source: {kind: rank for rank, kind in enumerate(kinds)} for source, kinds in LIFECYCLE.items()
}


class Step(msgspec.Struct, frozen=True, array_like=True):
    """One event as an order's state keeps it, in the log of its entity.

    The log gives what an Event repeats in every event (its source, entity_id and order_id),
    and ``rank`` is its type's index in ``LIFECYCLE[source]``; the other fields are the
    Event's. Encoded as a msgpack array (an empty field is one byte).
    """

    event_time: int
    rank: int
    event_id: str
    sku: str | None = None  # inventory
    quantity: int | None = None  # inventory
    amount: int | None = None  # payments
    currency: str | None = None  # payments, orders
    items: tuple[Item, ...] = ()  # shipping, orders
    total_amount: int | None = None  # orders
    channel: str | None = None  # payments
    user_id: str | None = None  # orders


def step_of(event: Event) -> Step:
    """The Step an event is kept as (ValueError for a type its source does not have). An
    order event's payment_id is not kept: no rule reads it."""
    rank = RANK[event.source].get(event.type)
    if rank is None:
        raise ValueError(f"{event.source.value} event {event.event_id!r} has an unknown type "
                         f"{event.type!r}")
    return Step(event.event_time, rank, event.event_id, event.sku, event.quantity,
                event.amount, event.currency, event.items, event.total_amount, event.channel,
                event.user_id)


def event_of(step: Step, source: Source, entity_id: str, order_id: str) -> Event:
    """The Event a Step of ``source``'s entity ``entity_id`` of order ``order_id`` was."""
    return Event(source, step.event_id, order_id, LIFECYCLE[source][step.rank], step.event_time,
                 entity_id, amount=step.amount, currency=step.currency, channel=step.channel,
                 sku=step.sku, quantity=step.quantity, items=step.items, user_id=step.user_id,
                 total_amount=step.total_amount)


class MismatchType(enum.StrEnum):
    """The fifteen rules of the contract."""

    RESERVATION_WITHOUT_PAYMENT = "RESERVATION_WITHOUT_PAYMENT"
    PAYMENT_WITHOUT_RESERVATION = "PAYMENT_WITHOUT_RESERVATION"
    PAID_NOT_SHIPPED = "PAID_NOT_SHIPPED"
    SHIPPED_WITHOUT_PAYMENT = "SHIPPED_WITHOUT_PAYMENT"
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    OVERSHIPMENT = "OVERSHIPMENT"
    REFUND_WITHOUT_RELEASE = "REFUND_WITHOUT_RELEASE"
    TCC_EMPTY_ROLLBACK = "TCC_EMPTY_ROLLBACK"
    TCC_HANGING = "TCC_HANGING"
    PAYMENT_NOT_APPLIED = "PAYMENT_NOT_APPLIED"
    CANCELLED_BUT_CHARGED = "CANCELLED_BUT_CHARGED"
    CANCELLED_BUT_RESERVED = "CANCELLED_BUT_RESERVED"
    CANCELLED_BUT_SHIPPED = "CANCELLED_BUT_SHIPPED"
    PAID_WITHOUT_PAYMENT = "PAID_WITHOUT_PAYMENT"


class CommandType(enum.StrEnum):
    """Compensating actions."""

    RELEASE_STOCK = "RELEASE_STOCK"
    REFUND_PAYMENT = "REFUND_PAYMENT"
    HOLD_SHIPMENT = "HOLD_SHIPMENT"
    EXPEDITE_SHIPMENT = "EXPEDITE_SHIPMENT"
    MARK_ORDER_PAID = "MARK_ORDER_PAID"


class Severity(enum.StrEnum):
    """How urgent a mismatch is."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Status(enum.StrEnum):
    """Lifecycle of a mismatch."""

    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class Mismatch(msgspec.Struct, frozen=True):
    """The contract's Mismatch record (section 5). detected_at is wall-clock ms."""

    mismatch_id: str
    type: MismatchType
    status: Status
    order_id: str
    subject_id: str
    severity: Severity
    decided_at: int
    detected_at: int
    evidence: tuple[str, ...]
    command_id: str | None
    details: dict[str, str]
    resolved_at: int | None = None
    resolved_by: str | None = None


class Command(msgspec.Struct, frozen=True):
    """The contract's Command record (section 5). issued_at is wall-clock ms; payment_id is
    the payment a MARK_ORDER_PAID applies (None where not relevant).

    ``shadow`` is not part of the record: it says the command was decided while its rule's
    commands were in shadow mode, so it goes to the shadow topic (or file), never to the
    command topic (``topology.topics.command_topic``).
    """

    command_id: str
    type: CommandType
    order_id: str
    target_id: str
    mismatch_id: str
    issued_at: int
    amount: int | None = None
    currency: str | None = None
    sku: str | None = None
    quantity: int | None = None
    payment_id: str | None = None
    shadow: bool = False


class DeadLetter(msgspec.Struct, frozen=True):
    """An input record that could not be decoded or validated, and why."""

    source_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    failed_at: int
