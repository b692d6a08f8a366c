"""Input records read straight from their Avro body into Events: the fast path of decoding.

The checked path (``streams.worker.runtime.decode_input``) reads a body with fastavro,
encodes the record again to see that it was written canonically (else a strict reader reads
it), validates it with msgspec and converts it to an Event: about 15 µs a record. This
module reads the body of the four input schemas in one pass and checks, as it goes, every
rule the validation applies (``schemas.validation``), building the Event directly.

It only answers for what it can read with certainty: a body written the way Avro encoders
write it (minimal varints, arrays in one block) with every field valid. Anything else, a bad
record or merely an unusual one, returns None, and the checked path decides (and names the
bad field).
So a record read here gives exactly the Event the checked path gives: a unit test compares
the two over the input fuzz corpus and over any field values (tests/unit/test_fastdecode.py).
"""

from __future__ import annotations

from schemas.limits import MAX_EVENT_TIME, MAX_ORDER_ID_LENGTH, order_id_problem
from streams.model import Event, Item, Source

_MAX_INT = 2**31 - 1

#: the Avro enums' symbols, in their schemas' order
_ORDER_TYPES = ("PLACED", "CANCELLED", "PAID")
_PAYMENT_TYPES = ("SUCCEEDED", "FAILED", "REFUNDED")
_INVENTORY_TYPES = ("RESERVED", "CONFIRMED", "RELEASED")
_SHIPPING_TYPES = ("CREATED", "DISPATCHED", "DELIVERED", "CANCELLED")


class _Reader:
    """A position in an Avro body; ``bad`` once something was not read with certainty."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos
        self.bad = False

    def long(self) -> int:
        """A zigzag varint of a signed 64-bit value (at most 10 bytes), minimally encoded."""
        data, pos = self.data, self.pos
        end = len(data)
        acc = 0
        shift = 0
        while True:
            if pos >= end:
                self.bad = True
                return 0
            b = data[pos]
            pos += 1
            acc |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                self.bad = True
                return 0
        if (b == 0 and shift > 0) or (shift == 63 and b > 1):
            # a trailing zero group (not how an encoder writes it), or past 64 bits
            self.bad = True
            return 0
        self.pos = pos
        return (acc >> 1) ^ -(acc & 1)

    def string(self) -> str:
        """A UTF-8 string (a lone surrogate is not valid UTF-8: refused)."""
        size = self.long()
        start = self.pos
        if self.bad or size < 0 or start + size > len(self.data):
            self.bad = True
            return ""
        self.pos = start + size
        try:
            return self.data[start:start + size].decode("utf-8")
        except UnicodeDecodeError:
            self.bad = True
            return ""

    def text(self) -> str:
        """A non-empty string (an id or a sku)."""
        value = self.string()
        if not value:
            self.bad = True
        return value

    def enum(self, symbols: tuple[str, ...]) -> str:
        """An enum symbol."""
        index = self.long()
        if index < 0 or index >= len(symbols):
            self.bad = True
            return ""
        return symbols[index]

    def amount(self) -> int:
        """A long >= 0."""
        value = self.long()
        if value < 0:
            self.bad = True
        return value

    def quantity(self) -> int:
        """An int from 1 to 2**31 - 1."""
        value = self.long()
        if value < 1 or value > _MAX_INT:
            self.bad = True
        return value

    def event_time(self) -> int:
        """Epoch milliseconds from 0 to MAX_EVENT_TIME."""
        value = self.long()
        if value < 0 or value > MAX_EVENT_TIME:
            self.bad = True
        return value

    def order_id(self) -> str:
        """A valid order id (``schemas.limits``): printable ASCII is checked here, anything
        else by ``order_id_problem``."""
        value = self.string()
        if value.isascii() and value.isprintable():  # no control character, no surrogate
            if not value or len(value) > MAX_ORDER_ID_LENGTH or value.isspace():
                self.bad = True
        elif order_id_problem(value) is not None:
            self.bad = True
        return value

    def count(self) -> int:
        """The item count of an array written in one block (0: empty)."""
        count = self.long()
        if count < 0 or count > len(self.data) - self.pos:  # each item takes a byte or more
            self.bad = True
            return 0
        return count

    def end_of_array(self) -> None:
        """The zero block that ends a non-empty array."""
        if self.long() != 0:
            self.bad = True

    def items(self, priced: bool) -> tuple[Item, ...]:
        """An array of items: (sku, quantity) and, when ``priced``, unit_price."""
        count = self.count()
        found: list[Item] = []
        for _ in range(count):
            sku = self.text()
            quantity = self.quantity()
            price = self.amount() if priced else None
            if self.bad:
                return ()
            found.append(Item(sku, quantity, price))
        if count:
            self.end_of_array()
        return tuple(found)


def _is_currency(value: str) -> bool:
    """Three capital letters A-Z (ISO-4217's form)."""
    return len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()


def read_event(source: Source, data: bytes, start: int = 5) -> Event | None:
    """The Event of an input record whose Avro body starts at ``start``; None when it is not
    certainly a valid record written canonically (the checked path then decides)."""
    r = _Reader(data, start)
    event_id = r.text()
    order_id = r.order_id()
    event: Event | None = None
    if source is Source.PAYMENTS:
        kind = r.enum(_PAYMENT_TYPES)
        time = r.event_time()
        payment_id = r.text()
        amount = r.amount()
        currency = r.string()
        channel = r.string()
        if not _is_currency(currency):
            return None
        event = Event(source, event_id, order_id, kind, time, payment_id, amount, currency,
                      channel)
    elif source is Source.INVENTORY:
        kind = r.enum(_INVENTORY_TYPES)
        time = r.event_time()
        reservation_id = r.text()
        sku = r.text()
        quantity = r.quantity()
        event = Event(source, event_id, order_id, kind, time, reservation_id, sku=sku,
                      quantity=quantity)
    elif source is Source.SHIPPING:
        kind = r.enum(_SHIPPING_TYPES)
        time = r.event_time()
        shipment_id = r.text()
        shipped = r.items(priced=False)
        if kind == "CREATED" and not shipped:
            return None
        event = Event(source, event_id, order_id, kind, time, shipment_id, items=shipped)
    elif source is Source.ORDERS:
        kind = r.enum(_ORDER_TYPES)
        time = r.event_time()
        user_id = r.string()
        ordered = r.items(priced=True)
        total = r.amount()
        currency = r.string()
        payment_id = r.string()
        if kind == "PLACED":
            if not user_id or not ordered or not _is_currency(currency):
                return None
        elif currency and not _is_currency(currency):
            return None
        event = Event(source, event_id, order_id, kind, time, order_id,
                      currency=currency or None, items=ordered, user_id=user_id,
                      total_amount=total, payment_id=payment_id or None)
    if r.bad or r.pos != len(data):
        return None
    return event
