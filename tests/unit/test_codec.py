"""Codec: compiled encoders write fastavro's exact bytes; bad payloads only raise DecodeError."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schemas import SAMPLES

from schemas.catalog import schema, schemas
from schemas.codec import Codec, _Unsupported, compile_encoder
from schemas.errors import DecodeError
from schemas.registry import LocalRegistry

SLOW = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = sorted(SAMPLES)
IDS = {name: LocalRegistry().id_for(schema(name), "") for name in NAMES}


def _fastavro_bytes(name: str, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(b"\x00" + IDS[name].to_bytes(4, "big"))
    schemaless_writer(out, schema(name).fast, record)
    return out.getvalue()


def _strategy(node: Any) -> st.SearchStrategy[Any]:
    """Records of an (unparsed) Avro schema, as fastavro takes them."""
    if isinstance(node, list):
        return st.one_of(*[_strategy(b) for b in node])
    if isinstance(node, dict) and not isinstance(node.get("type"), str):
        return _strategy(node["type"])
    kind = node if isinstance(node, str) else node["type"]
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "string": st.text(max_size=20),
        "bytes": st.binary(max_size=20),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-100, 20_000),
                          st.integers(1_500_000_000_000, 2_000_000_000_000)),
        "double": st.floats(allow_nan=False),
        "boolean": st.booleans(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        return st.lists(_strategy(node["items"]), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _strategy(node["values"]), max_size=4)
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: _strategy(f["type"]) for f in node["fields"]})
    raise AssertionError(f"no strategy for {node!r}")


RECORDS = st.sampled_from(NAMES).flatmap(
    lambda name: st.tuples(st.just(name), _strategy(schema(name).raw)))


@SLOW
@given(RECORDS)
def test_compiled_encoders_write_fastavros_bytes(case: tuple[str, dict[str, Any]]) -> None:
    name, record = case
    codec = Codec()
    data = codec.encode(name, record)
    assert data == _fastavro_bytes(name, record)
    assert codec.decode(data) == (schema(name), record)


@pytest.mark.parametrize("name", NAMES)
def test_samples_encode_like_fastavro(name: str) -> None:
    for record in SAMPLES[name]:
        assert Codec().encode(name, record) == _fastavro_bytes(name, record)


def test_longs_at_every_varint_width() -> None:
    codec = Codec()
    base = SAMPLES["PaymentEvent"][0]
    for bits in range(64):
        for value in (2**bits - 1, 2**bits, -(2**bits), -(2**bits) - 1):
            if -(2**63) <= value < 2**63:
                record = {**base, "amount": value, "event_time": value}
                assert codec.encode("PaymentEvent", record) == _fastavro_bytes("PaymentEvent",
                                                                                record)


def test_long_strings_and_arrays() -> None:
    record = {**SAMPLES["Tick"][0], "idle_topics": ["x" * 9000] * 200}
    assert Codec().encode("Tick", record) == _fastavro_bytes("Tick", record)
    assert Codec().decode_as("Tick", Codec().encode("Tick", record)) == record


def test_encoder_is_cached_per_schema_and_topic() -> None:
    codec = Codec()
    assert codec.encoder("Tick", "a") is codec.encoder("Tick", "a")
    tick = SAMPLES["Tick"][0]
    assert codec.encoder("Tick", "a")(tick) == codec.encode("Tick", tick, "a")


def test_missing_fields_with_defaults_take_them() -> None:
    record = {"event_id": "c", "order_id": "o", "type": "CANCELLED", "event_time": 1}
    codec = Codec()
    assert codec.encode("OrderEvent", record) == _fastavro_bytes("OrderEvent", record)
    assert codec.decode_as("OrderEvent", codec.encode("OrderEvent", record)) == {
        **record, "user_id": "", "items": [], "total_amount": 0, "currency": "",
        "payment_id": ""}
    mismatch = {k: v for k, v in SAMPLES["Mismatch"][0].items()
                if k not in ("resolved_at", "resolved_by", "command_id")}
    decoded = codec.decode_as("Mismatch", codec.encode("Mismatch", mismatch))
    assert decoded["resolved_at"] is None and decoded["command_id"] is None


@pytest.mark.parametrize(("change", "error"), [
    ({"amount": "3000"}, TypeError),
    ({"amount": None}, TypeError),
    ({"amount": 2**63}, ValueError),
    ({"amount": 1.5}, TypeError),
    ({"currency": 840}, TypeError),
    ({"currency": b"CNY"}, TypeError),
    ({"type": "LOST"}, ValueError),
    ({"payment_id": None}, TypeError),
])
def test_records_that_do_not_fit_raise(change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Codec().encode("PaymentEvent", {**SAMPLES["PaymentEvent"][0], **change})


def test_missing_required_field_and_bad_int_raise_value_error() -> None:
    record = dict(SAMPLES["PaymentEvent"][0])
    del record["payment_id"]
    with pytest.raises(ValueError, match="payment_id"):
        Codec().encode("PaymentEvent", record)
    with pytest.raises(ValueError):
        Codec().encode("InventoryEvent", {**SAMPLES["InventoryEvent"][0], "quantity": 2**31})
    with pytest.raises(TypeError):
        Codec().encode("DeadLetter", {**SAMPLES["DeadLetter"][0], "key": "text"})


def test_unsupported_constructs_are_left_to_fastavro() -> None:
    for raw in (
        {"type": "record", "name": "U", "fields": [{"name": "a", "type": ["int", "string"]}]},
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "io.x.Other"}]},
        {"type": "record", "name": "D", "fields": [
            {"name": "a", "type": {"type": "int", "logicalType": "date"}}]},
        {"type": "enum", "name": "E", "symbols": ["A"]},
    ):
        with pytest.raises(_Unsupported):
            compile_encoder(raw)


def test_every_bundled_schema_compiles() -> None:
    for info in schemas().values():
        compile_encoder(info.raw)


# --- decoding: anything that is not a valid record is a DecodeError, never another exception ---


def _decode_or_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        Codec().decode(data)


@SLOW
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _decode_or_decode_error(data)


@SLOW
@given(st.sampled_from(sorted(IDS.values())), st.binary(max_size=200))
def test_random_bodies_behind_a_valid_header(schema_id: int, body: bytes) -> None:
    _decode_or_decode_error(b"\x00" + schema_id.to_bytes(4, "big") + body)


@SLOW
@given(RECORDS, st.data())
def test_truncated_payloads(case: tuple[str, dict[str, Any]], data: st.DataObject) -> None:
    name, record = case
    payload = Codec().encode(name, record)
    cut = data.draw(st.integers(0, len(payload) - 1))
    with pytest.raises(DecodeError):
        Codec().decode(payload[:cut])


@SLOW
@given(RECORDS, st.binary(min_size=1, max_size=20))
def test_trailing_bytes(case: tuple[str, dict[str, Any]], extra: bytes) -> None:
    name, record = case
    with pytest.raises(DecodeError):
        Codec().decode(Codec().encode(name, record) + extra)


@pytest.mark.parametrize("name", NAMES)
def test_every_prefix_of_the_samples_is_a_decode_error(name: str) -> None:
    codec = Codec()
    for record in SAMPLES[name]:
        payload = codec.encode(name, record)
        for cut in range(len(payload)):
            with pytest.raises(DecodeError):
                codec.decode(payload[:cut])


def test_header_errors_say_what_is_wrong() -> None:
    codec = Codec()
    good = codec.encode("Tick", SAMPLES["Tick"][0])
    with pytest.raises(DecodeError, match="tombstone"):
        codec.decode(None)
    with pytest.raises(DecodeError, match="too short"):
        codec.decode(b"\x00\x00")
    with pytest.raises(DecodeError, match="magic byte is 1"):
        codec.decode(b"\x01" + good[1:])
    with pytest.raises(DecodeError, match="unknown schema id"):
        codec.decode(b"\x00\x00\x00\x00\x00" + good[5:])
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(good + b"\x00")
    with pytest.raises(DecodeError, match="expected a PaymentEvent record, got Tick"):
        codec.decode_as("PaymentEvent", good)
    with pytest.raises(DecodeError, match="not a valid"):
        codec.decode(b"\x00\x00\x00\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")


# --- regressions found while writing the input fuzz test: fastavro alone accepted or garbled these


def _zigzag(n: int) -> bytes:
    """The Avro varint of n, without any range check (for numbers beyond 64 bits too)."""
    z = (n << 1) ^ (n >> (max(n.bit_length(), 63) + 1))
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _payment_body(type_index: bytes = b"\x00", amount: bytes = b"\x02") -> bytes:
    """A PaymentEvent: event_id e, order_id o, type, event_time 1, payment_id p, amount,
    currency CNY, channel ''."""
    return (b"\x00" + IDS["PaymentEvent"].to_bytes(4, "big") + b"\x02e\x02o" + type_index
            + b"\x02\x02p" + amount + b"\x06CNY\x00")


def test_the_body_builder_is_a_valid_payment() -> None:
    record = Codec().decode_as("PaymentEvent", _payment_body())
    assert (record["type"], record["amount"], record["currency"]) == ("SUCCEEDED", 1, "CNY")


def test_a_negative_enum_index_is_not_the_last_symbol() -> None:
    # fastavro read symbols[-1]: a corrupt SUCCEEDED (index 0 -> -1) became a REFUNDED
    with pytest.raises(DecodeError, match=r"PaymentEvent: type: enum index -1 is not one of"):
        Codec().decode(_payment_body(type_index=_zigzag(-1)))
    with pytest.raises(DecodeError, match=r"type: enum index 3 is not one of the 3 symbols"):
        Codec().decode(_payment_body(type_index=_zigzag(3)))


def test_a_number_beyond_64_bits_does_not_wrap() -> None:
    # fastavro kept the low 64 bits: 2**64 + 1000 was read as the amount 1000
    wrapped = 2**64 + 1000
    assert len(_zigzag(wrapped)) == 10
    with pytest.raises(DecodeError, match=r"amount: 18446744073709552616 does not fit a 64-bit"):
        Codec().decode(_payment_body(amount=_zigzag(wrapped)))
    with pytest.raises(DecodeError, match="amount: variable-length long longer than 10 bytes"):
        Codec().decode(_payment_body(amount=b"\xff" * 11 + b"\x01"))


def test_an_int_beyond_32_bits_names_its_field() -> None:
    body = Codec().encode("InventoryEvent", SAMPLES["InventoryEvent"][0])
    cut = body.rindex(_zigzag(2))  # the quantity, last field
    with pytest.raises(DecodeError, match=r"InventoryEvent: quantity: 2147483648 does not fit"):
        Codec().decode(body[:cut] + _zigzag(2**31))


def test_truncation_and_lengths_name_the_field() -> None:
    header = b"\x00" + IDS["PaymentEvent"].to_bytes(4, "big")
    cases = {
        _zigzag(2**62) + b"abc": r"event_id: string of 4611686018427387904 bytes, only 3 left",
        _zigzag(-5) + b"abc": r"event_id: string has a negative length \(-5\)",
        b"\x02e\x04\xff\xfe": r"order_id: string is not valid UTF-8 \(invalid start byte",
        b"\x02e\x06\xed\xa0\x80": r"order_id: string is not valid UTF-8",  # a surrogate
        b"\x02e\x02o": r"type: truncated: the body ends inside a number",
    }
    for body, reason in cases.items():
        with pytest.raises(DecodeError, match=rf"^body is not a valid PaymentEvent: {reason}"):
            Codec().decode(header + body)


def test_a_huge_block_count_is_rejected_at_once() -> None:
    header = b"\x00" + IDS["OrderEvent"].to_bytes(4, "big")
    start = header + b"\x02e\x02o\x02\x02\x00"  # event_id, order_id, CANCELLED, time 1, user ''
    with pytest.raises(DecodeError, match=r"items: block of 4611686018427387904 items cannot"):
        Codec().decode(start + _zigzag(2**62) + b"\x00" * 8)
    with pytest.raises(DecodeError, match=r"items: block size 4611686018427387904 does not"):
        Codec().decode(start + _zigzag(-2) + _zigzag(2**62) + b"\x00" * 8)


def test_a_union_index_out_of_range_names_the_field() -> None:
    body = Codec().encode("Mismatch", SAMPLES["Mismatch"][0])  # resolved_by null: last byte 0
    assert body.endswith(b"\x00")
    for index in (-1, 2, 5):
        with pytest.raises(DecodeError, match=rf"^body is not a valid Mismatch: resolved_by: "
                           rf"union index {index} is not one of the 2 branches"):
            Codec().decode(body[:-1] + _zigzag(index))


def test_valid_non_canonical_bodies_still_decode() -> None:
    # what other writers may produce: an overlong varint, an array in two blocks, a block
    # with its byte size (negative count)
    codec = Codec()
    one = codec.decode_as("PaymentEvent", _payment_body(amount=b"\x82\x80\x00"))
    assert one["amount"] == 1
    record = SAMPLES["OrderEvent"][0]
    canonical = codec.encode("OrderEvent", record)
    first, second = (_fastavro_item(i) for i in record["items"])
    head = canonical[:canonical.index(_zigzag(2) + first)]
    tail = canonical[canonical.index(first + second + b"\x00") + len(first + second) + 1:]
    two_blocks = head + _zigzag(1) + first + _zigzag(1) + second + b"\x00" + tail
    sized = head + _zigzag(-2) + _zigzag(len(first + second)) + first + second + b"\x00" + tail
    for body in (two_blocks, sized):
        assert body != canonical
        assert codec.decode_as("OrderEvent", body) == record


def _fastavro_item(item: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, {"type": "record", "name": "OrderItem", "fields": [
        {"name": "sku", "type": "string"}, {"name": "quantity", "type": "int"},
        {"name": "unit_price", "type": "long"}]}, item)
    return out.getvalue()
