"""Mapping records of a shop's topics onto the contract's events: JSON events, Debezium change
events (envelope and unwrapped), skips and map errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shop_json import SOURCES_JSON, TOPIC, shop_value

from schemas.validation import validate_event
from streams.model import Event, Item, Source
from streams.simulate import FAULTS, SimConfig, generate
from streams.sources import MapError, Mapped, RawRecord, Skip, load_sources, map_event, map_record
from streams.sources import parse_sources as parse
from streams.sources.spec import InputSpec
from topology.topics import TopicId

T = 1_795_255_200_000  # 2026-11-21T10:00:00.000Z


def raw(value: Any, *, topic: str = "t", key: bytes | None = b"ORD-1", timestamp: int = T,
        offset: int = 7) -> RawRecord:
    body = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
    return RawRecord(topic, 1, offset, key, body, timestamp)


def spec_of(text: str, topic: TopicId) -> InputSpec:
    return parse(text).inputs[topic]


def error(result: object) -> tuple[str, str]:
    assert isinstance(result, MapError), result
    return result.rule, result.reason


# -- JSON events ----------------------------------------------------------------------------

JSON_PAYMENTS = spec_of("""\
[inputs.payments]
topic = "shop.payments"
format = "json"
event_id = "id"
order_id = "order.no"
payment_id = "payment.id"
amount = { field = "payment.amount", decimals = 2 }
currency = "payment.currency"
channel = "payment.channel"
event_time = "occurred_at"
type = "event"
[inputs.payments.types]
"payment.succeeded" = "SUCCEEDED"
"payment.refunded" = "REFUNDED"
"payment.created" = "skip"
7 = "FAILED"
""", TopicId.PAYMENTS)


def shop_payment(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "evt-9", "event": "payment.succeeded", "occurred_at": "2026-11-21T10:00:00.000Z",
        "order": {"no": "ORD-1"},
        "payment": {"id": "PAY-1", "amount": "30.00", "currency": "CNY", "channel": "alipay"}}
    event.update(changes)
    return event


def test_a_json_event_maps_to_the_event_its_contract_form_is() -> None:
    result = map_event(JSON_PAYMENTS, raw(shop_payment()))
    contract = validate_event(TopicId.PAYMENTS, {
        "event_id": "evt-9", "order_id": "ORD-1", "type": "SUCCEEDED", "event_time": T,
        "payment_id": "PAY-1", "amount": 3000, "currency": "CNY", "channel": "alipay"})
    assert result == Event(Source.PAYMENTS, "evt-9", "ORD-1", "SUCCEEDED", T, "PAY-1",
                           amount=3000, currency="CNY", channel="alipay")
    mapped = map_record(JSON_PAYMENTS, raw(shop_payment()))
    assert isinstance(mapped, Mapped) and mapped.record == contract
    assert mapped.order_id == "ORD-1" and mapped.event() == result


def test_statuses_map_by_their_text_and_skip_is_counted_not_an_error() -> None:
    failed = map_event(JSON_PAYMENTS, raw(shop_payment(event=7)))
    assert isinstance(failed, Event) and failed.type == "FAILED"
    assert map_record(JSON_PAYMENTS, raw(shop_payment(event="payment.created"))) == \
        Skip(TopicId.PAYMENTS, "status payment.created is skipped")
    assert map_record(JSON_PAYMENTS, raw(None)) == Skip(TopicId.PAYMENTS, "tombstone")
    assert error(map_record(JSON_PAYMENTS, raw(shop_payment(event="payment.lost")))) == (
        'type = "event"', "'payment.lost' is not in [inputs.payments.types]")


def test_json_map_errors_name_the_rule_and_the_reason() -> None:
    def bad(**changes: Any) -> tuple[str, str]:
        return error(map_record(JSON_PAYMENTS, raw(shop_payment(**changes))))

    payment = shop_payment()["payment"]
    assert bad(payment={**payment, "amount": "30.001"}) == (
        'amount = { field = "payment.amount", decimals = 2 }',
        "'30.001' is not a number with at most 2 decimals")
    assert bad(payment={**payment, "amount": "-1"}) == (
        'amount = { field = "payment.amount", decimals = 2 }', "must not be negative: -100")
    assert bad(payment={k: v for k, v in payment.items() if k != "amount"}) == (
        'amount = { field = "payment.amount", decimals = 2 }',
        "not in the record (no payment.amount)")
    assert bad(payment={**payment, "currency": None}) == (
        'currency = "payment.currency"', "is missing")
    assert bad(payment={**payment, "currency": "yuan"}) == (
        'currency = "payment.currency"', "'yuan' is not an ISO-4217 code (three capital "
                                         "letters)")
    assert bad(payment={**payment, "id": {"x": 1}}) == (
        'payment_id = "payment.id"', "expected text or an integer, got an object")
    assert bad(occurred_at="2026-11-21 10:00:00") == (
        'event_time = "occurred_at"', "'2026-11-21 10:00:00' has no time zone (add Z or "
                                      "+00:00)")
    assert bad(order={}) == ('order_id = "order.no"', "not in the record (no order.no)")
    assert bad(id=None) == ('event_id = "id"', "is null")
    assert error(map_record(JSON_PAYMENTS, raw(b"{not json")))[0] == 'format = "json"'
    assert error(map_record(JSON_PAYMENTS, raw([1, 2]))) == (
        'format = "json"', "expected a JSON object, got a list of 2")
    letter = map_record(JSON_PAYMENTS, raw(shop_payment(event="x"), topic="shop.payments"))
    assert isinstance(letter, MapError)
    assert letter.message() == ("payments (json shop.payments): type = \"event\": 'x' is not "
                                "in [inputs.payments.types]")


def test_keys_timestamps_constants_units_and_connect_envelopes() -> None:
    spec = spec_of("""\
[inputs.inventory]
topic = "stock"
format = "json"
event_id = "mid"
order_id = "@key"
reservation_id = "r"
sku = { value = "SKU-1" }
quantity = "q"
event_time = { field = "at", unit = "us" }
type = "a"
""", TopicId.INVENTORY)
    event = {"mid": 5, "r": 77, "q": "2", "at": (T + 3) * 1000 + 999, "a": "RESERVED"}
    wrapped = {"schema": {"type": "struct"}, "payload": event}
    for value in (event, wrapped):
        assert map_event(spec, raw(value, key=b"ORD-7")) == Event(
            Source.INVENTORY, "5", "ORD-7", "RESERVED", T + 3, "77", sku="SKU-1", quantity=2)
    assert error(map_record(spec, raw(event, key=None))) == (
        'order_id = "@key"', "not in the record (no @key)")
    assert error(map_record(spec, raw({**event, "a": "paid"})))[1].startswith(
        "'paid' is not a inventory type (RESERVED, CONFIRMED, RELEASED)")
    timed = spec_of("""\
[inputs.inventory]
topic = "stock"
format = "json"
event_id = "mid"
order_id = "o"
reservation_id = "r"
sku = "s"
quantity = "q"
event_time = "@timestamp"
type = "a"
""", TopicId.INVENTORY)
    result = map_event(timed, raw({"mid": "m", "o": "O", "r": "R", "s": "S", "q": 1,
                                   "a": "CONFIRMED"}, timestamp=T + 42))
    assert isinstance(result, Event) and result.event_time == T + 42


def test_simulated_traffic_in_the_shops_shape_maps_back_exactly() -> None:
    """Every event of the simulator (all faults), written as the example's shop events,
    maps back through examples/sources-json.toml to the same contract record."""
    sources = load_sources(SOURCES_JSON)
    events = generate(SimConfig(orders=120, seed=4, faults=dict.fromkeys(FAULTS, 0.05)))
    assert {t for t, _ in events} == set(TOPIC)
    for offset, (topic, record) in enumerate(events):
        spec = sources.by_topic()[TOPIC[topic]]
        result = map_record(spec, raw(shop_value(topic, record), topic=TOPIC[topic],
                                      offset=offset))
        assert isinstance(result, Mapped), (record, result)
        assert result.record == record


# -- Debezium change events -----------------------------------------------------------------

DEBEZIUM_PAYMENTS = """\
[inputs.payments]
topic = "shop.public.payments"
format = "debezium"
order_id = "order_id"
payment_id = "id"
amount = "amount_cents"
currency = "currency"
channel = "channel"
event_time = "updated_at"
type = "status"
[inputs.payments.types]
pending = "skip"
paid = "SUCCEEDED"
failed = "FAILED"
refunded = "REFUNDED"
"""
ENVELOPE = spec_of(DEBEZIUM_PAYMENTS, TopicId.PAYMENTS)
UNWRAPPED = spec_of(DEBEZIUM_PAYMENTS.replace('format = "debezium"',
                                              'format = "debezium"\nunwrap = true'),
                    TopicId.PAYMENTS)


def row(status: str, at: str = "2026-11-21T10:00:00.123456Z") -> dict[str, Any]:
    """A row of the payments table (timestamptz columns come as ISO-8601 text)."""
    return {"id": "PAY-1", "order_id": "ORD-1", "status": status, "amount_cents": 3000,
            "currency": "CNY", "channel": "alipay", "updated_at": at}


def change(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
           lsn: int = 24023128, commit: int = T + 200) -> dict[str, Any]:
    """A Debezium 3 PostgreSQL change event (JsonConverter, schemas.enable=false)."""
    return {
        "before": before, "after": after,
        "source": {"version": "3.6.1.Final", "connector": "postgresql", "name": "shop",
                   "ts_ms": commit, "snapshot": "false", "db": "shop",
                   "sequence": f'["24023119","{lsn}"]', "ts_us": commit * 1000,
                   "ts_ns": commit * 1_000_000, "schema": "public", "table": "payments",
                   "txId": 771, "lsn": lsn, "xmin": None},
        "transaction": None, "op": op, "ts_ms": commit + 50, "ts_us": (commit + 50) * 1000,
        "ts_ns": (commit + 50) * 1_000_000}


def test_an_update_that_changes_the_status_is_one_event_named_by_table_key_and_lsn() -> None:
    result = map_event(ENVELOPE, raw(change("u", row("pending"), row("paid"))))
    assert result == Event(Source.PAYMENTS, "public.payments:PAY-1:24023128", "ORD-1",
                           "SUCCEEDED", T + 123, "PAY-1", amount=3000, currency="CNY",
                           channel="alipay")
    # Connect delivers the change again after a restart: the same event
    again = map_event(ENVELOPE, raw(change("u", row("pending"), row("paid")), offset=99))
    assert again == result
    # a later change of the row is another event
    refund = map_event(ENVELOPE, raw(change("u", row("paid"), row("refunded"), lsn=24023500)))
    assert isinstance(refund, Event)
    assert (refund.event_id, refund.type) == ("public.payments:PAY-1:24023500", "REFUNDED")


def test_inserts_and_snapshot_reads_map_the_row_after() -> None:
    for op in ("c", "r"):
        result = map_event(ENVELOPE, raw(change(op, None, row("failed"))))
        assert isinstance(result, Event) and result.type == "FAILED"
    wrapped = {"schema": {"type": "struct", "name": "shop.public.payments.Envelope"},
               "payload": change("c", None, row("paid"))}
    assert isinstance(map_event(ENVELOPE, raw(wrapped)), Event)


def test_changes_that_are_no_event_are_skipped() -> None:
    skips = {
        "status unchanged": change("u", row("paid"), row("paid", "2026-11-21T10:05:00Z")),
        "delete": change("d", row("paid"), None),
        "truncate": change("t", None, None),
        "status pending is skipped": change("c", None, row("pending")),
    }
    for reason, value in skips.items():
        assert map_record(ENVELOPE, raw(value)) == Skip(TopicId.PAYMENTS, reason)
    assert map_record(ENVELOPE, raw(None)) == Skip(TopicId.PAYMENTS, "tombstone")


def test_an_update_without_the_previous_row_is_refused_with_lsn_ids() -> None:
    """REPLICA IDENTITY DEFAULT: before is null on an update; a changed status cannot be
    told from an unchanged one, so the record is dead-lettered saying what to set."""
    assert error(map_record(ENVELOPE, raw(change("u", None, row("paid"))))) == (
        'event_id = "lsn"', "an update without the row's previous status (no before image): "
                            "set REPLICA IDENTITY FULL on public.payments, or event_id = "
                            "\"status\"")
    by_status = spec_of(DEBEZIUM_PAYMENTS.replace('format = "debezium"',
                                                  'format = "debezium"\nevent_id = "status"'),
                        TopicId.PAYMENTS)
    result = map_event(by_status, raw(change("u", None, row("paid"))))
    assert isinstance(result, Event) and result.event_id == "public.payments:PAY-1:paid"


def test_debezium_map_errors() -> None:
    assert error(map_record(ENVELOPE, raw(row("paid")))) == (
        'format = "debezium"', "not a Debezium change event: op is missing (is the "
                               "connector's ExtractNewRecordState on? then unwrap = true)")
    other = change("c", None, row("paid"))
    other["source"]["table"] = "refunds"
    assert error(map_record(ENVELOPE, raw(other))) == (
        'table = "public.payments"', "the change is of table public.refunds")
    no_lsn = change("c", None, row("paid"))
    del no_lsn["source"]["lsn"]
    assert error(map_record(ENVELOPE, raw(no_lsn))) == (
        'event_id = "lsn"', "the change has no LSN (source.lsn)")
    keyless = change("c", None, {**row("paid"), "id": None})
    assert error(map_record(ENVELOPE, raw(keyless))) == ('key = ["id"]', "column id is null")
    assert error(map_record(ENVELOPE, raw(change("c", None, {**row("paid"),
                                                             "status": "lost"})))) == (
        'type = "status"', "'lost' is not in [inputs.payments.types]")
    assert error(map_record(ENVELOPE, raw(change("c", None, {**row("paid"),
                                                             "amount_cents": "a"})))) == (
        'amount = "amount_cents"', "'a' is not a number")


def test_the_commit_time_and_microsecond_columns() -> None:
    text = DEBEZIUM_PAYMENTS.replace('event_time = "updated_at"', 'event_time = "@commit"')
    result = map_event(spec_of(text, TopicId.PAYMENTS), raw(change("c", None, row("paid"))))
    assert isinstance(result, Event) and result.event_time == T + 200
    text = DEBEZIUM_PAYMENTS.replace('event_time = "updated_at"',
                                     'event_time = { field = "updated_at", unit = "us" }')
    micro = {**row("paid"), "updated_at": T * 1000 + 123_456}  # a `timestamp` column
    result = map_event(spec_of(text, TopicId.PAYMENTS), raw(change("c", None, micro)))
    assert isinstance(result, Event) and result.event_time == T + 123


def unwrapped(status: str, op: str, lsn: int, deleted: str = "false") -> dict[str, Any]:
    """ExtractNewRecordState with add.fields=op,table,lsn,source.ts_ms and
    delete.handling.mode=rewrite."""
    return {**row(status), "__op": op, "__table": "payments", "__lsn": lsn,
            "__source_ts_ms": T + 200, "__deleted": deleted}


def test_an_unwrapped_row_is_named_by_its_status() -> None:
    """No before image: an update that leaves the status as it was repeats the event_id of
    the change that set it (the engine ignores it as a redelivery)."""
    inserted = map_event(UNWRAPPED, raw(unwrapped("paid", "c", 100)))
    touched = map_event(UNWRAPPED, raw(unwrapped("paid", "u", 200)))
    refunded = map_event(UNWRAPPED, raw(unwrapped("refunded", "u", 300)))
    assert isinstance(inserted, Event) and isinstance(touched, Event)
    assert isinstance(refunded, Event)
    assert inserted.event_id == touched.event_id == "public.payments:PAY-1:paid"
    assert refunded.event_id == "public.payments:PAY-1:refunded"
    assert map_record(UNWRAPPED, raw(unwrapped("paid", "d", 400, deleted="true"))) == \
        Skip(TopicId.PAYMENTS, "delete")
    with_lsn = spec_of(DEBEZIUM_PAYMENTS.replace(
        'format = "debezium"', 'format = "debezium"\nunwrap = true\nevent_id = "ref"'),
        TopicId.PAYMENTS)
    assert error(map_record(with_lsn, raw(unwrapped("paid", "c", 1)))) == (
        'event_id = "ref"', "not in the record")


def test_order_items_from_a_jsonb_column() -> None:
    spec = spec_of("""\
[inputs.orders]
topic = "shop.public.orders"
format = "debezium"
order_id = "id"
user_id = "customer_id"
total_amount = { field = "total", decimals = 2 }
currency = "currency"
items = { field = "items", sku = "sku", quantity = "qty", unit_price = "price", decimals = 2 }
event_time = "updated_at"
type = "status"
[inputs.orders.types]
placed = "PLACED"
cancelled = "CANCELLED"
""", TopicId.ORDERS)
    lines = [{"sku": "A", "qty": 2, "price": "4.50"}, {"sku": "B", "qty": 1, "price": 1}]
    order = {"id": "ORD-1", "customer_id": 42, "total": "10.00", "currency": "CNY",
             "items": json.dumps(lines), "status": "placed", "updated_at": "2026-11-21T10:00:00Z"}
    value = change("c", None, order)
    value["source"]["table"] = "orders"
    result = map_event(spec, raw(value))
    assert result == Event(Source.ORDERS, "public.orders:ORD-1:24023128", "ORD-1", "PLACED", T,
                           "ORD-1", currency="CNY", items=(Item("A", 2, 450), Item("B", 1, 100)),
                           user_id="42", total_amount=1000)
    bad = {**order, "items": json.dumps([{"sku": "A", "qty": "two", "price": 1}])}
    value["after"] = bad
    assert error(map_record(spec, raw(value))) == (
        'items = { field = "items", sku = "sku", quantity = "qty", unit_price = "price", '
        'decimals = 2 }', "[0].qty: 'two' is not a number")
    value["after"] = {**order, "items": json.dumps([{"sku": "A", "qty": 0, "price": 1}])}
    assert error(map_record(spec, raw(value)))[1] == "[0].quantity: must not be less than 1: 0"


@pytest.mark.parametrize("value", [b"\xff\xfe", b"", b"null"])
def test_undecodable_values_are_map_errors_not_crashes(value: bytes) -> None:
    result = map_record(JSON_PAYMENTS, raw(value))
    assert isinstance(result, MapError | Skip)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                           allow_infinity=False)
                     | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
#: the fields and columns the specs above read, and what their nested objects hold
_FIELDS = ["id", "event", "occurred_at", "order", "payment", "order_id", "amount_cents",
           "currency", "channel", "updated_at", "status"]
_INNER = st.dictionaries(st.sampled_from(["no", "id", "amount", "currency", "channel"]), _JSON)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), _JSON | _INNER),
       st.sampled_from(["u", "c", "d", "x"]),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(["status", "id"]), _JSON)))
def test_any_value_in_any_field_maps_skips_or_is_a_map_error(
        event: dict[str, Any], op: str, before: dict[str, Any] | None) -> None:
    """Nothing a record holds makes a mapping raise: it gives an event, a skip or a reason."""
    for spec, value in ((JSON_PAYMENTS, event), (ENVELOPE, change(op, before, event)),
                        (UNWRAPPED, {**event, "__op": op})):
        result = map_record(spec, raw(value))
        assert isinstance(result, Mapped | Skip | MapError)
        if isinstance(result, MapError):
            assert result.rule and result.reason
