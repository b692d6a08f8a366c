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
    MAX_EVENT_TIME,
    MAX_EVENT_TIME_ISO,
    MAX_ORDER_ID_LENGTH,
    ORDER_ID_PATTERN,
    TEXT_PATTERN,
    order_id_problem,
    show,
    text_problem,
)
from topology.topics import BY_ID, TopicId

TYPES: dict[TopicId, frozenset[str]] = {
    TopicId.ORDERS: frozenset({"PLACED", "PAID", "CANCELLED"}),
    TopicId.PAYMENTS: frozenset({"SUCCEEDED", "FAILED", "REFUNDED"}),
    TopicId.INVENTORY: frozenset({"RESERVED", "CONFIRMED", "RELEASED"}),
    TopicId.SHIPPING: frozenset({"CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"}),
}

_CURRENCY_PATTERN = r"^[A-Z]{3}\Z"
_CURRENCY = re.compile(_CURRENCY_PATTERN)
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
            raise ValidationError(field, _time_range(show(value)))
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


def _time_range(shown: str) -> str:
    return (f"epoch milliseconds out of range: {shown} (0 to {MAX_EVENT_TIME}, "
            f"that is up to {MAX_EVENT_TIME_ISO})")


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
_Currency = Annotated[str, Meta(pattern=_CURRENCY_PATTERN)]
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
        raise ValidationError("currency", _currency_reason(currency))
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
        raise _translate(str(exc), topic, lambda: msgspec.json.decode(raw)) from None
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
        raise _translate(str(exc), topic, lambda: source) from None
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


# --- msgspec's messages ("Expected `int` >= 0 - at `$.amount`") in the contract's form -------

_WHERE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`(?:, got `(?P<got>[^`]+)`)?(?P<rest>.*)$",
                       re.DOTALL)
_BOUND = re.compile(r"^ (?P<op>>=|<=) (?P<n>-?\d+)$")
_NOTHING = object()
_KINDS = {"str": "a string", "int": "an integer", "array": "a list", "object": "an object"}


def _lookup(root: Any, path: str) -> Any:
    value = root
    for name, index, quoted in _STEP.findall(path):
        try:
            value = value[int(index)] if index else value[name or quoted]
        except (KeyError, IndexError, TypeError):
            return _NOTHING
    return value


def _field(path: str) -> str:
    return path[1:] if path.startswith(".") else path


def _currency_reason(value: object) -> str:
    return f"{show(value)} is not an ISO-4217 code (three capital letters)"


def _translate(text: str, topic: TopicId, source: Callable[[], Any]) -> ValidationError:
    """A msgspec ValidationError message -> ValidationError(field path, contract reason)."""
    where = _WHERE.match(text)
    msg, path = (where["msg"], where["path"] or "") if where else (text, "")
    missing = _MISSING.match(msg)
    if missing:
        return ValidationError(_field(f"{path}.{missing['name']}"), "is missing")
    field = _field(path) or "event"
    leaf = field.rsplit(".", 1)[-1]
    try:
        value = _lookup(source(), path)
    except Exception:  # the raw text could not be decoded again: no value to show
        value = _NOTHING
    shown = "" if value is _NOTHING else f": {show(value)}"
    if msg.startswith("Invalid enum value"):
        text = msg.removeprefix("Invalid enum value ")[:60] if value is _NOTHING else show(value)
        if field == "type":
            allowed = ", ".join(sorted(TYPES[topic]))
            return ValidationError(field, f"{text} is not a {topic.value} type ({allowed})")
        return ValidationError(field, f"{text} is not allowed")
    expected = _EXPECTED.match(msg)
    if expected is None:
        return ValidationError(field, msg[:200])
    want, got, rest = expected["want"], expected["got"], expected["rest"]
    if got is not None:
        if got == "null":
            return ValidationError(field, "is missing")
        if field == "event":
            return ValidationError(field, "must be a JSON object")
        if leaf == "event_time":
            return ValidationError(field, "must be an ISO-8601 time or epoch milliseconds")
        kind = _KINDS.get(want.split(" | ")[0], f"of type {want}")
        return ValidationError(field, f"must be {kind}, got {got}")
    bound = _BOUND.match(rest)
    if bound:
        if leaf == "event_time":
            return ValidationError(field, _time_range(show(value)) if shown else
                                   "epoch milliseconds out of range")
        if bound["op"] == "<=":
            return ValidationError(field, f"is too large{shown}")
        what = "negative" if bound["n"] == "0" else f"less than {bound['n']}"
        return ValidationError(field, f"must not be {what}{shown}")
    if rest.startswith(" of length >= 1"):
        return ValidationError(field, "must not be empty")
    if leaf == "order_id" and isinstance(value, str):
        return ValidationError(field, order_id_problem(value) or msg)
    if rest.startswith(" matching regex"):
        if leaf == "currency":
            return ValidationError(field, _currency_reason(None if value is _NOTHING else value))
        problem = text_problem(value) if isinstance(value, str) else None
        return ValidationError(field, problem or "contains a lone surrogate")
    return ValidationError(field, msg[:200])


def value_schema(topic: TopicId) -> str:
    """The record schema name of a topic."""
    return BY_ID[topic].value_schema
