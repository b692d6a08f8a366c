"""Validation of input events (JSON or decoded Avro) against the contract, naming the bad field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from schemas.errors import ValidationError
from schemas.limits import (
    CURRENCY_PATTERN,
    MAX_EVENT_TIME,
    MAX_EVENT_TIME_ISO,
    MAX_ORDER_ID_LENGTH,
    ORDER_ID_PATTERN,
    TEXT_PATTERN,
    currency_problem,
    show,
    time_range_problem,
)
from schemas.msgspec_errors import translate
from topology.topics import BY_ID, TopicId

TYPES: dict[TopicId, frozenset[str]] = {
    TopicId.ORDERS: frozenset({"PLACED", "PAID", "CANCELLED"}),
    TopicId.PAYMENTS: frozenset({"SUCCEEDED", "FAILED", "REFUNDED"}),
    TopicId.INVENTORY: frozenset({"RESERVED", "CONFIRMED", "RELEASED"}),
    TopicId.SHIPPING: frozenset({"CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"}),
}

_CURRENCY = re.compile(CURRENCY_PATTERN)
_MAX_LONG = 2**63 - 1
_MAX_INT = 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_event_time(value: object, field: str = "event_time") -> int:
    """ISO-8601 with a zone (e.g. 2026-11-21T10:00:00.000Z) or epoch millis -> epoch millis."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be an ISO-8601 time or epoch milliseconds")
    if isinstance(value, int):
        if value < 0 or value > MAX_EVENT_TIME:
            raise ValidationError(field, time_range_problem(show(value)))
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, f"{show(value)} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            raise ValidationError(field, f"{show(value)} has no time zone (add Z or +00:00)")
        ms = (parsed - _EPOCH) // _MS
        if ms < 0:
            raise ValidationError(field, f"{show(value)} is before 1970-01-01T00:00:00Z")
        if ms > MAX_EVENT_TIME:
            raise ValidationError(field, f"{show(value)} is after {MAX_EVENT_TIME_ISO}")
        return ms
    raise ValidationError(field, "must be an ISO-8601 time or epoch milliseconds")


def format_time(ms: int) -> str:
    """Epoch millis -> ISO-8601 UTC with milliseconds and Z."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# --- typed shapes of the input events (msgspec checks types and bounds in one pass) ---------

_Id = Annotated[str, Meta(min_length=1, pattern=TEXT_PATTERN)]
_OrderId = Annotated[str, Meta(min_length=1, max_length=MAX_ORDER_ID_LENGTH,
                               pattern=ORDER_ID_PATTERN)]
_Text = Annotated[str, Meta(pattern=TEXT_PATTERN)]
_Amount = Annotated[int, Meta(ge=0, le=_MAX_LONG)]
_Quantity = Annotated[int, Meta(ge=1, le=_MAX_INT)]
_Currency = Annotated[str, Meta(pattern=CURRENCY_PATTERN)]
_EventTime = Annotated[int, Meta(ge=0, le=MAX_EVENT_TIME)] | str


class _OrderItem(msgspec.Struct):
    sku: _Id
    quantity: _Quantity
    unit_price: _Amount


class _ShipmentItem(msgspec.Struct):
    sku: _Id
    quantity: _Quantity


class _OrderIn(msgspec.Struct):
    event_id: _Id
    order_id: _OrderId
    type: Literal["PLACED", "PAID", "CANCELLED"]
    event_time: _EventTime
    # required on PLACED only: checked after decoding
    user_id: _Text | None = None
    items: list[_OrderItem] | None = None
    total_amount: _Amount | None = None
    currency: _Text | None = None
    #: on PAID: the payment the order service applied (optional)
    payment_id: _Text | None = None


class _PaymentIn(msgspec.Struct):
    event_id: _Id
    order_id: _OrderId
    type: Literal["SUCCEEDED", "FAILED", "REFUNDED"]
    event_time: _EventTime
    payment_id: _Id
    amount: _Amount
    currency: _Currency
    channel: _Text | None = None


class _InventoryIn(msgspec.Struct):
    event_id: _Id
    order_id: _OrderId
    type: Literal["RESERVED", "CONFIRMED", "RELEASED"]
    event_time: _EventTime
    reservation_id: _Id
    sku: _Id
    quantity: _Quantity


class _ShippingIn(msgspec.Struct):
    event_id: _Id
    order_id: _OrderId
    type: Literal["CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"]
    event_time: _EventTime
    shipment_id: _Id
    # required (non-empty) on CREATED: checked after decoding
    items: list[_ShipmentItem] | None = None


def _time(value: int | str) -> int:
    return value if type(value) is int else parse_event_time(value)


def _order_record(e: _OrderIn) -> dict[str, Any]:
    event_time = _time(e.event_time)
    placed = e.type == "PLACED"
    user_id = e.user_id
    if user_id is None:
        if placed:
            raise ValidationError("user_id", "is missing")
        user_id = ""
    elif placed and not user_id:
        raise ValidationError("user_id", "must not be empty")
    if e.items:
        items = [{"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price}
                 for i in e.items]
    elif placed:
        raise ValidationError("items", "is missing or empty")
    else:
        items = []
    total = e.total_amount
    if total is None:
        if placed:
            raise ValidationError("total_amount", "is missing")
        total = 0
    currency = e.currency
    if currency is None:
        if placed:
            raise ValidationError("currency", "is missing")
        currency = ""
    elif (currency or placed) and not _CURRENCY.match(currency):
        raise ValidationError("currency", currency_problem(currency))
    return {
        "event_id": e.event_id,
        "order_id": e.order_id,
        "type": e.type,
        "event_time": event_time,
        "user_id": user_id,
        "items": items,
        "total_amount": total,
        "currency": currency,
        "payment_id": e.payment_id or "",
    }


def _payment_record(e: _PaymentIn) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "order_id": e.order_id,
        "type": e.type,
        "event_time": _time(e.event_time),
        "payment_id": e.payment_id,
        "amount": e.amount,
        "currency": e.currency,
        "channel": e.channel or "",
    }


def _inventory_record(e: _InventoryIn) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "order_id": e.order_id,
        "type": e.type,
        "event_time": _time(e.event_time),
        "reservation_id": e.reservation_id,
        "sku": e.sku,
        "quantity": e.quantity,
    }


def _shipping_record(e: _ShippingIn) -> dict[str, Any]:
    event_time = _time(e.event_time)
    if e.items:
        items = [{"sku": i.sku, "quantity": i.quantity} for i in e.items]
    elif e.type == "CREATED":
        raise ValidationError("items", "is missing or empty (required on CREATED)")
    else:
        items = []
    return {
        "event_id": e.event_id,
        "order_id": e.order_id,
        "type": e.type,
        "event_time": event_time,
        "shipment_id": e.shipment_id,
        "items": items,
    }


#: topic -> (typed shape, JSON decoder of that shape, shape -> Avro record)
_SHAPES: dict[TopicId, tuple[type[Any], msgspec.json.Decoder[Any], Callable[[Any], dict[str, Any]]]]
_SHAPES = {
    TopicId.ORDERS: (_OrderIn, msgspec.json.Decoder(_OrderIn), _order_record),
    TopicId.PAYMENTS: (_PaymentIn, msgspec.json.Decoder(_PaymentIn), _payment_record),
    TopicId.INVENTORY: (_InventoryIn, msgspec.json.Decoder(_InventoryIn), _inventory_record),
    TopicId.SHIPPING: (_ShippingIn, msgspec.json.Decoder(_ShippingIn), _shipping_record),
}


def _not_input(topic: TopicId) -> ValidationError:
    inputs = ", ".join(t.value for t in TYPES)
    return ValidationError("topic", f"{topic.value!r} is not an input topic ({inputs})")


def parse_event_json(topic: TopicId, raw: bytes | str) -> dict[str, Any]:
    """Decode and check the JSON text of one event in one pass; return it as an Avro record.

    The fast path of `produce`: equivalent to `validate_event(topic, json.loads(raw))`,
    raising ValidationError naming the first bad field (or `event` for broken JSON).
    """
    shape = _SHAPES.get(topic)
    if shape is None:
        raise _not_input(topic)
    try:
        return shape[2](shape[1].decode(raw))
    except msgspec.ValidationError as exc:
        raise translate(str(exc), topic, TYPES[topic], lambda: msgspec.json.decode(raw)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        try:  # JSON that msgspec refuses but Python reads ("\ud800"): the field and why
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            raise ValidationError("event", f"not valid JSON: {exc}") from None
        return validate_event(topic, parsed)


def validate_event(topic: TopicId, event: Mapping[str, Any]) -> dict[str, Any]:
    """Check an input event and return it as an Avro record of the topic's schema.

    Raises ValidationError naming the first bad field. Accepts JSON-shaped events (times as
    ISO strings or ints) and decoded Avro records (times as ints).
    """
    shape = _SHAPES.get(topic)
    if shape is None:
        raise _not_input(topic)
    if not isinstance(event, Mapping):
        raise ValidationError("event", "must be a JSON object")
    try:
        source = event if type(event) is dict else _plain(event)
    except RecursionError:
        raise ValidationError("event", "is nested too deeply") from None
    try:
        return shape[2](msgspec.convert(source, shape[0]))
    except msgspec.ValidationError as exc:
        raise translate(str(exc), topic, TYPES[topic], lambda: source) from None
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no UTF-8 text for it
        raise ValidationError(_unencodable(source) or "event",
                              "is not valid Unicode text (a lone surrogate)") from None


def _unencodable(value: Any, path: str = "") -> str | None:
    """The path of the first string (value or key) in ``value`` with no UTF-8 form."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path or "event"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _unencodable(key) is not None:
                return path or "event"
            found = _unencodable(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _unencodable(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _plain(value: Any) -> Any:
    """Mappings and sequences of a non-dict event as dicts and lists, for msgspec.convert."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def value_schema(topic: TopicId) -> str:
    """The record schema name of a topic."""
    return BY_ID[topic].value_schema
