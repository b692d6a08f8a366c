"""Validation of input events (JSON or decoded Avro) against the contract, naming the bad field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.errors import ValidationError
from topology.topics import BY_ID, TopicId

TYPES: dict[TopicId, frozenset[str]] = {
    TopicId.ORDERS: frozenset({"PLACED", "CANCELLED"}),
    TopicId.PAYMENTS: frozenset({"SUCCEEDED", "FAILED", "REFUNDED"}),
    TopicId.INVENTORY: frozenset({"RESERVED", "CONFIRMED", "RELEASED"}),
    TopicId.SHIPPING: frozenset({"CREATED", "DISPATCHED", "DELIVERED", "CANCELLED"}),
}

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MAX_LONG = 2**63 - 1
_MAX_INT = 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_event_time(value: object, field: str = "event_time") -> int:
    """ISO-8601 with a zone (e.g. 2026-11-21T10:00:00.000Z) or epoch millis -> epoch millis."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be an ISO-8601 time or epoch milliseconds")
    if isinstance(value, int):
        if value < 0 or value > _MAX_LONG:
            raise ValidationError(field, f"epoch milliseconds out of range: {value}")
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, f"{value!r} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            raise ValidationError(field, f"{value!r} has no time zone (add Z or +00:00)")
        return (parsed - _EPOCH) // _MS
    raise ValidationError(field, "must be an ISO-8601 time or epoch milliseconds")


def format_time(ms: int) -> str:
    """Epoch millis -> ISO-8601 UTC with milliseconds and Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _str(event: Mapping[str, Any], field: str, *, required: bool = True, default: str = "") -> str:
    if field not in event or event[field] is None:
        if required:
            raise ValidationError(field, "is missing")
        return default
    value = event[field]
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if required and not value:
        raise ValidationError(field, "must not be empty")
    return value


def _int(event: Mapping[str, Any], field: str, *, minimum: int, maximum: int = _MAX_LONG,
         required: bool = True, default: int = 0) -> int:
    if field not in event or event[field] is None:
        if required:
            raise ValidationError(field, "is missing")
        return default
    value = event[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if value < minimum:
        what = "negative" if minimum == 0 else f"less than {minimum}"
        raise ValidationError(field, f"must not be {what}: {value}")
    if value > maximum:
        raise ValidationError(field, f"is too large: {value}")
    return value


def _currency(event: Mapping[str, Any], field: str = "currency") -> str:
    value = _str(event, field)
    if not _CURRENCY.match(value):
        raise ValidationError(field, f"{value!r} is not an ISO-4217 code (three capital letters)")
    return value


def _items(event: Mapping[str, Any], *, priced: bool, required: bool) -> list[dict[str, Any]]:
    raw = event.get("items")
    if raw is None or raw == []:
        if required:
            raise ValidationError("items", "is missing or empty")
        return []
    if not isinstance(raw, list):
        raise ValidationError("items", f"must be a list, got {type(raw).__name__}")
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValidationError(f"items[{i}]", "must be an object")
        try:
            line: dict[str, Any] = {
                "sku": _str(item, "sku"),
                "quantity": _int(item, "quantity", minimum=1, maximum=_MAX_INT),
            }
            if priced:
                line["unit_price"] = _int(item, "unit_price", minimum=0)
        except ValidationError as exc:
            raise ValidationError(f"items[{i}].{exc.field}", exc.reason) from None
        items.append(line)
    return items


def validate_event(topic: TopicId, event: Mapping[str, Any]) -> dict[str, Any]:
    """Check an input event and return it as an Avro record of the topic's schema.

    Raises ValidationError naming the first bad field. Accepts JSON-shaped events (times as
    ISO strings or ints) and decoded Avro records (times as ints).
    """
    if topic not in TYPES:
        raise ValidationError("topic", f"{topic.value!r} is not an input topic")
    if not isinstance(event, Mapping):
        raise ValidationError("event", "must be a JSON object")
    etype = _str(event, "type")
    if etype not in TYPES[topic]:
        allowed = ", ".join(sorted(TYPES[topic]))
        raise ValidationError("type", f"{etype!r} is not a {topic.value} type ({allowed})")
    record: dict[str, Any] = {
        "event_id": _str(event, "event_id"),
        "order_id": _str(event, "order_id"),
        "type": etype,
        "event_time": parse_event_time(event.get("event_time")) if "event_time" in event
        else _missing("event_time"),
    }
    if topic is TopicId.ORDERS:
        placed = etype == "PLACED"
        record["user_id"] = _str(event, "user_id", required=placed)
        record["items"] = _items(event, priced=True, required=placed)
        record["total_amount"] = _int(event, "total_amount", minimum=0, required=placed)
        record["currency"] = _currency(event) if placed or event.get("currency") else ""
    elif topic is TopicId.PAYMENTS:
        record["payment_id"] = _str(event, "payment_id")
        record["amount"] = _int(event, "amount", minimum=0)
        record["currency"] = _currency(event)
        record["channel"] = _str(event, "channel", required=False)
    elif topic is TopicId.INVENTORY:
        record["reservation_id"] = _str(event, "reservation_id")
        record["sku"] = _str(event, "sku")
        record["quantity"] = _int(event, "quantity", minimum=1, maximum=_MAX_INT)
    else:
        record["shipment_id"] = _str(event, "shipment_id")
        record["items"] = _items(event, priced=False, required=etype == "CREATED")
    return record


def _missing(field: str) -> int:
    raise ValidationError(field, "is missing")


def value_schema(topic: TopicId) -> str:
    """The record schema name of a topic."""
    return BY_ID[topic].value_schema
