"""Input-event validation: every contract violation is caught and names the offending field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import ValidationError
from schemas.limits import MAX_EVENT_TIME
from schemas.validation import (
    TYPES,
    format_time,
    parse_event_json,
    parse_event_time,
    validate_event,
    value_schema,
)
from streams.produce import LineError, LineParser
from topology.topics import TopicId, Topology

T0 = "2026-11-21T10:00:00.000Z"
T0_MS = 1_795_255_200_000

GOOD: dict[TopicId, dict[str, Any]] = {
    TopicId.ORDERS: {
        "event_id": "o1-placed", "order_id": "o1", "type": "PLACED", "event_time": T0,
        "user_id": "u1", "items": [{"sku": "A", "quantity": 2, "unit_price": 1500}],
        "total_amount": 3000, "currency": "CNY",
    },
    TopicId.PAYMENTS: {
        "event_id": "o1-pay", "order_id": "o1", "type": "SUCCEEDED", "event_time": T0,
        "payment_id": "p1", "amount": 3000, "currency": "CNY", "channel": "alipay",
    },
    TopicId.INVENTORY: {
        "event_id": "o1-res", "order_id": "o1", "type": "RESERVED", "event_time": T0,
        "reservation_id": "r1", "sku": "A", "quantity": 2,
    },
    TopicId.SHIPPING: {
        "event_id": "o1-ship", "order_id": "o1", "type": "CREATED", "event_time": T0,
        "shipment_id": "s1", "items": [{"sku": "A", "quantity": 2}],
    },
}

#: the Avro record each GOOD event becomes (with the defaults of the fields it omits)
EXPECTED: dict[TopicId, dict[str, Any]] = {
    topic: {**event, "event_time": T0_MS, **({"payment_id": ""} if topic is TopicId.ORDERS
                                             else {})}
    for topic, event in GOOD.items()
}

_MISSING = object()


def _with(topic: TopicId, path: str, value: Any) -> dict[str, Any]:
    """GOOD[topic] with `path` ("amount", "items[0].quantity") set, or removed for _MISSING."""
    event = copy.deepcopy(GOOD[topic])
    target: Any = event
    steps = path.replace("[", ".[").split(".")
    for step in steps[:-1]:
        target = target[int(step[1:-1])] if step.startswith("[") else target[step]
    last: Any = int(steps[-1][1:-1]) if steps[-1].startswith("[") else steps[-1]
    if value is _MISSING:
        del target[last]
    else:
        target[last] = value
    return event


def _both(topic: TopicId, event: Any) -> tuple[str, str]:
    """The error of the mapping path and of the JSON path, as 'field: reason'."""
    messages = []
    checks: list[Callable[[], dict[str, Any]]] = [
        lambda: validate_event(topic, event),
        lambda: parse_event_json(topic, json.dumps(event).encode()),
    ]
    for check in checks:
        with pytest.raises(ValidationError) as info:
            check()
        messages.append(str(info.value))
    return messages[0], messages[1]


_STRINGS = {
    TopicId.ORDERS: ["event_id", "order_id", "user_id"],
    TopicId.PAYMENTS: ["event_id", "order_id", "payment_id"],
    TopicId.INVENTORY: ["event_id", "order_id", "reservation_id", "sku"],
    TopicId.SHIPPING: ["event_id", "order_id", "shipment_id"],
}
_ITEM_STRINGS = {TopicId.ORDERS: ["items[0].sku"], TopicId.SHIPPING: ["items[0].sku"]}
_AMOUNTS = {TopicId.ORDERS: ["total_amount", "items[0].unit_price"],
            TopicId.PAYMENTS: ["amount"]}
_QUANTITIES = {TopicId.ORDERS: ["items[0].quantity"], TopicId.INVENTORY: ["quantity"],
               TopicId.SHIPPING: ["items[0].quantity"]}
_CURRENCIES = {TopicId.ORDERS: ["currency"], TopicId.PAYMENTS: ["currency"]}


def _cases() -> list[Any]:
    """(topic, field path, value, expected 'field: reason' prefix) for every kind of breakage."""
    cases: list[Any] = []

    def add(topic: TopicId, path: str, value: Any, expected: str) -> None:
        shown = "missing" if value is _MISSING else repr(value)[:20]
        cases.append(pytest.param(topic, path, value, expected, id=f"{topic}-{path}-{shown}"))

    for topic in TYPES:
        for path in [*_STRINGS[topic], *_ITEM_STRINGS.get(topic, [])]:
            add(topic, path, _MISSING, f"{path}: is missing")
            add(topic, path, None, f"{path}: is missing")
            add(topic, path, "", f"{path}: must not be empty")
            add(topic, path, 7, f"{path}: must be a string, got int")
            add(topic, path, ["x"], f"{path}: must be a string, got array")
        for path in _AMOUNTS.get(topic, []):
            add(topic, path, _MISSING, f"{path}: is missing")
            add(topic, path, -1, f"{path}: must not be negative: -1")
            add(topic, path, "10", f"{path}: must be an integer, got str")
            add(topic, path, 10.5, f"{path}: must be an integer, got float")
            add(topic, path, True, f"{path}: must be an integer, got bool")
            add(topic, path, 2**63, f"{path}: is too large: {2**63}")
        for path in _QUANTITIES.get(topic, []):
            add(topic, path, _MISSING, f"{path}: is missing")
            add(topic, path, 0, f"{path}: must not be less than 1: 0")
            add(topic, path, -3, f"{path}: must not be less than 1: -3")
            add(topic, path, 1.0, f"{path}: must be an integer, got float")
            add(topic, path, 2**31, f"{path}: is too large: {2**31}")
        for path in _CURRENCIES.get(topic, []):
            add(topic, path, _MISSING, f"{path}: is missing")
            for bad in ("usd", "US", "USDT", "", "U$D", "USD\n", 840):
                if isinstance(bad, int):
                    add(topic, path, bad, f"{path}: must be a string, got int")
                else:
                    add(topic, path, bad, f"{path}: {bad!r} is not an ISO-4217 code")
        allowed = ", ".join(sorted(TYPES[topic]))
        add(topic, "type", "FOO", f"type: 'FOO' is not a {topic.value} type ({allowed})")
        add(topic, "type", "placed", "type: 'placed' is not a")
        add(topic, "type", _MISSING, "type: is missing")
        add(topic, "type", 1, "type: must be a string, got int")
        add(topic, "event_time", _MISSING, "event_time: is missing")
        add(topic, "event_time", None, "event_time: is missing")
        add(topic, "event_time", "yesterday", "event_time: 'yesterday' is not an ISO-8601 time")
        add(topic, "event_time", "2026-13-01T00:00:00Z",
            "event_time: '2026-13-01T00:00:00Z' is not")
        add(topic, "event_time", "2026-11-21T10:00:00", "event_time: '2026-11-21T10:00:00' has no")
        add(topic, "event_time", "1969-12-31T23:59:59Z", "event_time: '1969-12-31T23:59:59Z' is")
        add(topic, "event_time", -1, "event_time: epoch milliseconds out of range: -1")
        add(topic, "event_time", 2**63, "event_time: epoch milliseconds out of range")
        add(topic, "event_time", 1.5, "event_time: must be an ISO-8601 time or epoch milliseconds")
        add(topic, "event_time", True, "event_time: must be an ISO-8601 time or epoch milliseconds")
        add(topic, "event_time", [T0], "event_time: must be an ISO-8601 time or epoch milliseconds")
    for topic in (TopicId.ORDERS, TopicId.SHIPPING):
        add(topic, "items", _MISSING, "items: is missing or empty")
        add(topic, "items", [], "items: is missing or empty")
        add(topic, "items", None, "items: is missing or empty")
        add(topic, "items", {"sku": "A"}, "items: must be a list, got object")
        add(topic, "items", "A", "items: must be a list, got str")
        add(topic, "items[0]", "A", "items[0]: must be an object, got str")
        add(topic, "items[0]", ["A", 1], "items[0]: must be an object, got array")
    add(TopicId.PAYMENTS, "channel", 3, "channel: must be a string, got int")
    return cases


@pytest.mark.parametrize(("topic", "path", "value", "expected"), _cases())
def test_every_violation_names_its_field(topic: TopicId, path: str, value: Any,
                                         expected: str) -> None:
    from_mapping, from_json = _both(topic, _with(topic, path, value))
    assert from_mapping.startswith(expected), from_mapping
    assert from_json == from_mapping


@pytest.mark.parametrize(("topic", "path", "value", "expected"), _cases()[::7])
def test_bad_lines_are_reported_as_event_dot_field(topic: TopicId, path: str, value: Any,
                                                  expected: str) -> None:
    line = json.dumps({"topic": topic.value, "event": _with(topic, path, value)})
    with pytest.raises(LineError) as info:
        LineParser(Topology(), "in.jsonl").parse(line.encode(), 12)
    assert str(info.value).startswith(f"in.jsonl:12: event.{expected}")
    assert info.value.lineno == 12


def test_messages_in_the_documented_form() -> None:
    assert _both(TopicId.PAYMENTS, _with(TopicId.PAYMENTS, "amount", -1))[1] == (
        "amount: must not be negative: -1")
    assert _both(TopicId.ORDERS, _with(TopicId.ORDERS, "items[0].quantity", 0))[1] == (
        "items[0].quantity: must not be less than 1: 0")
    assert _both(TopicId.PAYMENTS, _with(TopicId.PAYMENTS, "type", "FOO"))[1] == (
        "type: 'FOO' is not a payments type (FAILED, REFUNDED, SUCCEEDED)")
    assert _both(TopicId.INVENTORY, _with(TopicId.INVENTORY, "event_time", "noon"))[1] == (
        "event_time: 'noon' is not an ISO-8601 time")


def test_the_error_carries_field_and_reason() -> None:
    with pytest.raises(ValidationError) as info:
        parse_event_json(TopicId.ORDERS, json.dumps(_with(TopicId.ORDERS, "items[0].sku", "")))
    assert info.value.field == "items[0].sku"
    assert info.value.reason == "must not be empty"


@pytest.mark.parametrize("topic", list(TYPES))
def test_good_events_become_avro_records(topic: TopicId) -> None:
    assert validate_event(topic, GOOD[topic]) == EXPECTED[topic]
    assert parse_event_json(topic, json.dumps(GOOD[topic]).encode()) == EXPECTED[topic]
    assert parse_event_json(topic, json.dumps(GOOD[topic])) == EXPECTED[topic]


@pytest.mark.parametrize("topic", list(TYPES))
def test_avro_records_validate_to_themselves(topic: TopicId) -> None:
    record = EXPECTED[topic]
    assert validate_event(topic, record) == record
    assert validate_event(topic, validate_event(topic, record)) == record


@pytest.mark.parametrize("topic", list(TYPES))
def test_unknown_fields_are_ignored(topic: TopicId) -> None:
    event = {**GOOD[topic], "trace_id": "abc", "nested": {"x": [1, 2]}}
    assert validate_event(topic, event) == EXPECTED[topic]
    assert parse_event_json(topic, json.dumps(event)) == EXPECTED[topic]


@pytest.mark.parametrize("topic", list(TYPES))
def test_every_type_of_each_topic_is_accepted(topic: TopicId) -> None:
    for etype in sorted(TYPES[topic]):
        event = {**GOOD[topic], "type": etype}
        assert validate_event(topic, event)["type"] == etype
        assert parse_event_json(topic, json.dumps(event))["type"] == etype


def test_cancelled_orders_may_omit_the_order_details() -> None:
    event = {"event_id": "c1", "order_id": "o1", "type": "CANCELLED", "event_time": 5}
    expected = {**event, "user_id": "", "items": [], "total_amount": 0, "currency": "",
                "payment_id": ""}
    assert validate_event(TopicId.ORDERS, event) == expected
    assert parse_event_json(TopicId.ORDERS, json.dumps(event)) == expected
    nulls = {**event, "user_id": None, "items": None, "total_amount": None, "currency": None}
    assert validate_event(TopicId.ORDERS, nulls) == expected
    assert parse_event_json(TopicId.ORDERS, json.dumps(nulls)) == expected
    assert validate_event(TopicId.ORDERS, {**event, "currency": ""})["currency"] == ""


def test_cancelled_orders_still_check_what_they_carry() -> None:
    base = {"event_id": "c1", "order_id": "o1", "type": "CANCELLED", "event_time": 5}
    extras: list[tuple[dict[str, Any], str]] = [
        ({"currency": "eur"}, "currency: 'eur' is not an ISO-4217 code"),
        ({"total_amount": -5}, "total_amount: must not be negative: -5"),
        ({"items": [{"sku": "A", "quantity": 0, "unit_price": 1}]},
         "items[0].quantity: must not be less than 1: 0"),
        ({"user_id": 5}, "user_id: must be a string, got int"),
    ]
    for extra, expected in extras:
        mapping, from_json = _both(TopicId.ORDERS, {**base, **extra})
        assert mapping.startswith(expected)
        assert from_json == mapping


def test_paid_orders_carry_an_optional_payment_id() -> None:
    event = {"event_id": "p1-paid", "order_id": "o1", "type": "PAID", "event_time": T0}
    bare = {**event, "event_time": T0_MS, "user_id": "", "items": [], "total_amount": 0,
            "currency": "", "payment_id": ""}
    assert validate_event(TopicId.ORDERS, event) == bare
    assert parse_event_json(TopicId.ORDERS, json.dumps(event)) == bare
    applied = {**event, "payment_id": "PAY-1"}
    assert validate_event(TopicId.ORDERS, applied) == {**bare, "payment_id": "PAY-1"}
    assert parse_event_json(TopicId.ORDERS, json.dumps(applied))["payment_id"] == "PAY-1"
    assert validate_event(TopicId.ORDERS, {**event, "payment_id": None}) == bare
    mapping, from_json = _both(TopicId.ORDERS, {**event, "payment_id": 7})
    assert mapping == from_json == "payment_id: must be a string, got int"
    mapping, _ = _both(TopicId.ORDERS, {**event, "type": "SHIPPED"})
    assert mapping == "type: 'SHIPPED' is not a orders type (CANCELLED, PAID, PLACED)"


def test_placed_orders_need_every_detail() -> None:
    for name in ("user_id", "items", "total_amount", "currency"):
        mapping, _ = _both(TopicId.ORDERS, _with(TopicId.ORDERS, name, _MISSING))
        assert mapping.startswith(f"{name}: is missing")


def test_shipments_need_items_only_when_created() -> None:
    for etype in ("DISPATCHED", "DELIVERED", "CANCELLED"):
        event = {**GOOD[TopicId.SHIPPING], "type": etype}
        del event["items"]
        assert validate_event(TopicId.SHIPPING, event)["items"] == []
        assert parse_event_json(TopicId.SHIPPING, json.dumps(event))["items"] == []
    event = {**GOOD[TopicId.SHIPPING], "type": "DELIVERED", "items": [{"sku": "A", "quantity": 0}]}
    mapping, _ = _both(TopicId.SHIPPING, event)
    assert mapping.startswith("items[0].quantity: must not be less than 1: 0")


def test_channel_is_optional_with_default_empty() -> None:
    for event in (_with(TopicId.PAYMENTS, "channel", _MISSING),
                  _with(TopicId.PAYMENTS, "channel", None)):
        assert validate_event(TopicId.PAYMENTS, event)["channel"] == ""
        assert parse_event_json(TopicId.PAYMENTS, json.dumps(event))["channel"] == ""


def test_event_time_forms() -> None:
    assert parse_event_time(T0) == T0_MS
    assert parse_event_time("2026-11-21T18:00:00.000+08:00") == T0_MS
    assert parse_event_time("2026-11-21T10:00:00Z") == T0_MS
    assert parse_event_time("2026-11-21T10:00:00.123456Z") == T0_MS + 123
    assert parse_event_time(T0_MS) == T0_MS
    assert parse_event_time(0) == 0
    for event_time in (T0_MS, "2026-11-21T10:00:00.000+00:00"):
        event = _with(TopicId.PAYMENTS, "event_time", event_time)
        assert validate_event(TopicId.PAYMENTS, event)["event_time"] == T0_MS
        assert parse_event_json(TopicId.PAYMENTS, json.dumps(event))["event_time"] == T0_MS


def test_format_time_is_iso_utc_with_milliseconds() -> None:
    assert format_time(T0_MS) == T0
    assert format_time(T0_MS + 7) == "2026-11-21T10:00:00.007Z"
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(1999) == "1970-01-01T00:00:01.999Z"
    for ms in (1, 999, 1000, 86_399_999, T0_MS + 123, MAX_EVENT_TIME):
        assert parse_event_time(format_time(ms)) == ms
    assert format_time(MAX_EVENT_TIME) == "8999-12-31T23:59:59.999Z"
    assert format_time(253_402_300_799_999) == "9999-12-31T23:59:59.999Z"


def test_non_input_topics_and_non_objects_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"^topic: 'mismatches' is not an input topic"):
        validate_event(TopicId.MISMATCHES, {})
    with pytest.raises(ValidationError, match=r"^topic: 'dlq' is not an input topic"):
        parse_event_json(TopicId.DLQ, b"{}")
    with pytest.raises(ValidationError, match=r"^event: must be a JSON object"):
        validate_event(TopicId.PAYMENTS, ["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^event: must be a JSON object"):
        parse_event_json(TopicId.PAYMENTS, b"[1, 2]")
    with pytest.raises(ValidationError, match=r"^event: not valid JSON"):
        parse_event_json(TopicId.PAYMENTS, b'{"event_id": ')
    with pytest.raises(ValidationError, match=r"^event: not valid JSON"):
        parse_event_json(TopicId.PAYMENTS, b'{"event_id": "\xff"}')


def test_mappings_other_than_dict_are_accepted() -> None:
    from types import MappingProxyType

    event = MappingProxyType({**GOOD[TopicId.ORDERS],
                              "items": (MappingProxyType(GOOD[TopicId.ORDERS]["items"][0]),)})
    assert validate_event(TopicId.ORDERS, event) == EXPECTED[TopicId.ORDERS]


def test_integers_beyond_64_bits_are_rejected_naming_the_field() -> None:
    for value in (2**64, -(2**63) - 1, 10**30):
        event = _with(TopicId.PAYMENTS, "amount", value)
        with pytest.raises(ValidationError) as info:
            validate_event(TopicId.PAYMENTS, event)
        assert info.value.field == "amount"
        with pytest.raises(ValidationError) as info:
            parse_event_json(TopicId.PAYMENTS, json.dumps(event))
        assert info.value.field == "amount"


def test_value_schema_of_each_input() -> None:
    assert {t: value_schema(t) for t in TYPES} == {
        TopicId.ORDERS: "OrderEvent", TopicId.PAYMENTS: "PaymentEvent",
        TopicId.INVENTORY: "InventoryEvent", TopicId.SHIPPING: "ShippingEvent",
    }


# --- the JSON fast path and the mapping path agree on everything ------------------------------

#: integers JSON decoding keeps as ints (msgspec reads ints beyond 64 bits as floats)
_ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
    st.sampled_from(["", "CNY", "usd", "PLACED", "CANCELLED", "SUCCEEDED", "CREATED",
                     "RESERVED", T0, "2026-11-21T10:00:00", "x"]),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def _mutated_events(draw: Callable[..., Any]) -> tuple[TopicId, dict[str, Any]]:
    topic = draw(st.sampled_from(list(TYPES)))
    event = copy.deepcopy(GOOD[topic])
    event["type"] = draw(st.sampled_from(sorted(TYPES[topic])))
    for name in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        if draw(st.booleans()):
            event.pop(name, None)
        else:
            event[name] = draw(_ANY_VALUE)
    items = event.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict) and draw(st.booleans()):
        item = dict(event["items"][0])
        key = draw(st.sampled_from(sorted(item)))
        item[key] = draw(_ANY_VALUE)
        event["items"] = [item]
    return topic, event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_events())
def test_json_and_mapping_paths_agree(case: tuple[TopicId, dict[str, Any]]) -> None:
    topic, event = case
    outcomes: list[tuple[str, Any]] = []
    checks: list[Callable[[], dict[str, Any]]] = [
        lambda: validate_event(topic, event),
        lambda: parse_event_json(topic, msgspec.json.encode(event)),
    ]
    for check in checks:
        try:
            outcomes.append(("ok", check()))
        except ValidationError as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]
    kind, result = outcomes[0]
    if kind == "ok":
        assert validate_event(topic, result) == result
    else:
        field = str(result).split(":", 1)[0]
        assert field and " " not in field



def test_a_lone_surrogate_names_its_field_instead_of_crashing() -> None:
    # "\ud800" is valid JSON text and json.loads gives a lone surrogate, which has no UTF-8
    # form: msgspec raised UnicodeEncodeError out of validate_event (found by the fuzz test)
    with pytest.raises(ValidationError) as caught:
        validate_event(TopicId.INVENTORY, _with(TopicId.INVENTORY, "type", "\ud800"))
    assert caught.value.field == "type" and "lone surrogate" in caught.value.reason
    with pytest.raises(ValidationError) as caught:
        validate_event(TopicId.ORDERS, _with(TopicId.ORDERS, "items[0].sku", "x\udfff"))
    assert caught.value.field == "items[0].sku" and "lone surrogate" in caught.value.reason
    line = json.dumps({**GOOD[TopicId.PAYMENTS], "channel": "\ud800"})
    with pytest.raises(ValidationError) as caught:
        parse_event_json(TopicId.PAYMENTS, line.encode())
    assert caught.value.field == "channel" and "lone surrogate" in caught.value.reason
