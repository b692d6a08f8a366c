"""Validation limits: event times end with 8999, order ids, lone surrogates, bounded reasons."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_validation import _both, _with

from schemas.errors import ValidationError
from schemas.limits import MAX_EVENT_TIME, MAX_ORDER_ID_LENGTH
from schemas.validation import TYPES, parse_event_json, parse_event_time, validate_event
from topology.topics import TopicId


def test_event_times_end_with_the_year_8999() -> None:
    # an event at 2**63 - 1 passed and its decision time (plus a timeout) could not be
    # encoded or shown; year 9999 plus a day cannot be shown by format_time either
    assert parse_event_time(MAX_EVENT_TIME) == MAX_EVENT_TIME
    with pytest.raises(ValidationError, match=r"^event_time: epoch milliseconds out of range: "
                       r"221845392000000 \(0 to 221845391999999, that is up to 8999-12-31"):
        parse_event_time(MAX_EVENT_TIME + 1)
    with pytest.raises(ValidationError, match=r"is after 8999-12-31T23:59:59.999Z"):
        parse_event_time("9000-01-01T00:00:00Z")
    for event_time in (MAX_EVENT_TIME + 1, 2**63 - 1, "9999-12-31T23:59:59.999Z"):
        event = _with(TopicId.PAYMENTS, "event_time", event_time)
        mapping, text = _both(TopicId.PAYMENTS, event)
        assert mapping == text and mapping.startswith("event_time: ")


def test_order_ids_at_the_limits_are_accepted() -> None:
    for order_id in ("o" * MAX_ORDER_ID_LENGTH, "订单-1 ü", " o ", "a/b?c#d%20"):
        event = _with(TopicId.PAYMENTS, "order_id", order_id)
        assert validate_event(TopicId.PAYMENTS, event)["order_id"] == order_id
        assert parse_event_json(TopicId.PAYMENTS, json.dumps(event))["order_id"] == order_id


def test_lone_surrogates_are_rejected_on_the_mapping_path() -> None:
    # JSON text cannot carry them (msgspec refuses), a Python mapping can; Avro cannot encode
    # them, so a validated record must not contain one
    for path in ("event_id", "order_id", "payment_id", "channel"):
        event = _with(TopicId.PAYMENTS, path, "a\ud800")
        with pytest.raises(ValidationError, match=rf"^{path}: contains a lone surrogate "
                           r"\(U\+D800 at position 1\)"):
            validate_event(TopicId.PAYMENTS, event)
    with pytest.raises(ValidationError, match=r"^user_id: contains a lone surrogate"):
        validate_event(TopicId.ORDERS, _with(TopicId.ORDERS, "user_id", "\udfff"))
    with pytest.raises(ValidationError, match=r"^currency: '\\udc80' is not an ISO-4217"):
        validate_event(TopicId.ORDERS, _with(TopicId.ORDERS, "currency", "\udc80"))


def test_reasons_show_at_most_a_bounded_part_of_the_value() -> None:
    huge = "X" * 1_000_000
    for path in ("currency", "type", "event_time"):
        mapping, text = _both(TopicId.PAYMENTS, _with(TopicId.PAYMENTS, path, huge))
        assert mapping == text and len(mapping) < 200, mapping[:300]
        assert "(1000000 characters)" in mapping
    with pytest.raises(ValidationError) as info:  # str() of it would raise ValueError
        validate_event(TopicId.PAYMENTS, _with(TopicId.PAYMENTS, "amount", 2**20000))
    assert str(info.value) == "amount: is too large: a 20001-bit integer"
    text = json.dumps(_with(TopicId.PAYMENTS, "amount", 1)).replace('"amount": 1',
                                                                  '"amount": ' + "9" * 5000)
    with pytest.raises(ValidationError) as info:
        parse_event_json(TopicId.PAYMENTS, text)
    assert str(info.value).startswith("amount: ") and len(str(info.value)) < 200


def test_deeply_nested_mappings_are_a_validation_error() -> None:
    from types import MappingProxyType

    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValidationError, match=r"^event: is nested too deeply$"):
        validate_event(TopicId.PAYMENTS, MappingProxyType(_with(TopicId.PAYMENTS, "amount", 1)
                                                          | {"items": deep}))
    with pytest.raises(ValidationError, match=r"^order_id: must be a string, got array$"):
        validate_event(TopicId.PAYMENTS, _with(TopicId.PAYMENTS, "order_id", deep))


@pytest.mark.parametrize("topic", sorted(TYPES))
@pytest.mark.parametrize(("order_id", "expected"), [
    ("o" * (MAX_ORDER_ID_LENGTH + 1),
     f"order_id: is too long: 257 characters (at most {MAX_ORDER_ID_LENGTH})"),
    ("o\n1", "order_id: contains a control character (U+000A at position 1)"),
    ("o\x00", "order_id: contains a control character (U+0000 at position 1)"),
    ("\x85", "order_id: contains a control character (U+0085 at position 0)"),
    ("   ", "order_id: must not be blank (only whitespace)"),
])
def test_the_order_id_rule(topic: TopicId, order_id: str, expected: str) -> None:
    # the rule of schemas.limits, which /orders/{order_id} checks too
    assert _both(topic, _with(topic, "order_id", order_id)) == (expected, expected)
