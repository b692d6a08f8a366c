"""Bundled Avro schemas: each round-trips through the Codec; ids are fixed; Confluent header."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader

from schemas.catalog import SCHEMA_DIR, schema, schemas
from schemas.codec import Codec
from schemas.errors import DecodeError, SchemaError
from schemas.registry import LocalRegistry, registry_from
from topology.topics import TOPICS

T = 1_795_255_200_000

#: A realistic record of every schema, with nulls, maps, unions and empty arrays among them.
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "OrderEvent": [
        {"event_id": "o1-placed", "order_id": "o1", "type": "PLACED", "event_time": T,
         "user_id": "u1", "items": [{"sku": "A", "quantity": 2, "unit_price": 1500},
                                    {"sku": "B-\u4e2d\u6587", "quantity": 1, "unit_price": 0}],
         "total_amount": 3000, "currency": "CNY", "payment_id": ""},
        {"event_id": "o1-cancel", "order_id": "o1", "type": "CANCELLED", "event_time": T + 1,
         "user_id": "", "items": [], "total_amount": 0, "currency": "", "payment_id": ""},
        {"event_id": "o1-paid", "order_id": "o1", "type": "PAID", "event_time": T + 61,
         "user_id": "", "items": [], "total_amount": 0, "currency": "", "payment_id": "p1"},
        {"event_id": "o2-paid", "order_id": "o2", "type": "PAID", "event_time": T + 62,
         "user_id": "u2", "items": [], "total_amount": 3000, "currency": "CNY",
         "payment_id": ""},
    ],
    "PaymentEvent": [
        {"event_id": "o1-pay", "order_id": "o1", "type": "SUCCEEDED", "event_time": T + 60,
         "payment_id": "p1", "amount": 3000, "currency": "CNY", "channel": "alipay"},
        {"event_id": "o1-refund", "order_id": "o1", "type": "REFUNDED", "event_time": 0,
         "payment_id": "p1", "amount": 2**63 - 1, "currency": "USD", "channel": ""},
    ],
    "InventoryEvent": [
        {"event_id": "o1-res", "order_id": "o1", "type": "RESERVED", "event_time": T + 15,
         "reservation_id": "r1", "sku": "A", "quantity": 2},
        {"event_id": "o1-rel", "order_id": "o1", "type": "RELEASED", "event_time": T + 16,
         "reservation_id": "r1", "sku": "A", "quantity": 2**31 - 1},
    ],
    "ShippingEvent": [
        {"event_id": "o1-ship", "order_id": "o1", "type": "CREATED", "event_time": T + 90,
         "shipment_id": "s1", "items": [{"sku": "A", "quantity": 2}]},
        {"event_id": "o1-dlv", "order_id": "o1", "type": "DELIVERED", "event_time": T + 99,
         "shipment_id": "s1", "items": []},
    ],
    "Mismatch": [
        {"mismatch_id": "m-1", "type": "DUPLICATE_PAYMENT", "status": "OPEN", "order_id": "o1",
         "subject_id": "p2", "severity": "CRITICAL", "decided_at": T, "detected_at": T + 5,
         "evidence": ["e1", "e2"], "command_id": "c-1",
         "details": {"amount": "3000", "other_payment": "p1"},
         "resolved_at": None, "resolved_by": None},
        {"mismatch_id": "m-2", "type": "TCC_EMPTY_ROLLBACK", "status": "RESOLVED",
         "order_id": "o2", "subject_id": "r9", "severity": "LOW", "decided_at": T,
         "detected_at": T, "evidence": [], "command_id": None, "details": {},
         "resolved_at": T + 1000, "resolved_by": "e9"},
        {"mismatch_id": "m-3", "type": "PAYMENT_NOT_APPLIED", "status": "OPEN",
         "order_id": "o3", "subject_id": "p3", "severity": "HIGH", "decided_at": T,
         "detected_at": T, "evidence": ["e3", "e4"], "command_id": "c-3", "details": {},
         "resolved_at": None, "resolved_by": None},
    ],
    "Command": [
        {"command_id": "c-1", "type": "REFUND_PAYMENT", "order_id": "o1", "target_id": "p2",
         "amount": 3000, "currency": "CNY", "sku": None, "quantity": None,
         "payment_id": None, "mismatch_id": "m-1", "issued_at": T + 6},
        {"command_id": "c-2", "type": "RELEASE_STOCK", "order_id": "o1", "target_id": "r1",
         "amount": None, "currency": None, "sku": "A", "quantity": 2,
         "payment_id": None, "mismatch_id": "m-3", "issued_at": T + 7},
        {"command_id": "c-3", "type": "MARK_ORDER_PAID", "order_id": "o3", "target_id": "o3",
         "amount": 3000, "currency": "CNY", "sku": None, "quantity": None,
         "payment_id": "p3", "mismatch_id": "m-3", "issued_at": T + 8},
    ],
    "MetricsWindow": [
        {"window_start": T, "window_end": T + 60_000, "orders_placed": 10,
         "payments_succeeded": 3, "payments_failed": 1, "payment_success_rate": 0.75,
         "gmv": {"CNY": 9000, "USD": 150}, "refunds": 0, "shipments_created": 2,
         "mismatches_opened": {"DUPLICATE_PAYMENT": 1}, "mismatches_resolved": 0,
         "commands_issued": {"REFUND_PAYMENT": 1}, "dead_letters": 2, "late_events": 4},
        {"window_start": 0, "window_end": 60_000, "orders_placed": 0,
         "payments_succeeded": 0, "payments_failed": 0, "payment_success_rate": None,
         "gmv": {}, "refunds": 0, "shipments_created": 0, "mismatches_opened": {},
         "mismatches_resolved": 0, "commands_issued": {}, "dead_letters": 0, "late_events": 0},
    ],
    "Alert": [
        {"alert_id": "a-1", "kind": "STORM", "mismatch_type": "PAYMENT_WITHOUT_RESERVATION",
         "severity": "HIGH", "count": 42, "window_start": T, "window_end": T + 60_000,
         "sample_order_ids": [f"o{i}" for i in range(10)], "source": None},
        {"alert_id": "a-2", "kind": "MISMATCH", "mismatch_type": "DUPLICATE_PAYMENT",
         "severity": "CRITICAL", "count": 1, "window_start": T, "window_end": T + 60_000,
         "sample_order_ids": ["o1"], "source": None},
        {"alert_id": "a-3", "kind": "SOURCE_STALLED", "mismatch_type": None,
         "severity": "HIGH", "count": 2, "window_start": T, "window_end": T + 600_000,
         "sample_order_ids": [],
         "source": {"topic": "inventory", "partitions": [0, 2], "last_event_time": T - 5,
                    "stalled_ms": 600_000}},
        {"alert_id": "a-4", "kind": "SOURCE_RECOVERED", "mismatch_type": None,
         "severity": "HIGH", "count": 1, "window_start": T, "window_end": T + 900_000,
         "sample_order_ids": [],
         "source": {"topic": "t1.orders", "partitions": [3], "last_event_time": None,
                    "stalled_ms": 900_000}},
    ],
    "DeadLetter": [
        {"source_topic": "payments", "partition": 3, "offset": 12345, "key": b"o1",
         "value": b"\x00\x00\x00\x00\x02garbage", "reason": "amount: must not be negative: -1",
         "failed_at": T},
        {"source_topic": "shipping", "partition": 0, "offset": 0, "key": None, "value": None,
         "reason": "empty value (tombstone)", "failed_at": T},
    ],
    "Tick": [
        {"partition": 2, "idle_topics": ["orders", "shipping"], "offsets": [0, 17], "sent_at": T,
         "released_topics": ["inventory"], "released_offsets": [2**40]},
        {"partition": 0, "idle_topics": [], "offsets": [], "sent_at": T,
         "released_topics": [], "released_offsets": []},
    ],
}

#: schemas/registry.json: these ids are on the wire of every existing topic; never renumber.
#: One id per version, oldest first; the last is the current .avsc (the one written).
REGISTRY_VERSIONS = {
    "io.crosscheck.events.OrderEvent": [1, 13],
    "io.crosscheck.events.PaymentEvent": [2],
    "io.crosscheck.events.InventoryEvent": [3],
    "io.crosscheck.events.ShippingEvent": [4],
    "io.crosscheck.outputs.Mismatch": [5, 14],
    "io.crosscheck.outputs.Command": [6, 15],
    "io.crosscheck.outputs.MetricsWindow": [7],
    "io.crosscheck.outputs.Alert": [8, 11],
    "io.crosscheck.outputs.DeadLetter": [9],
    "io.crosscheck.internal.Tick": [10, 12],
}
#: the id each schema is written with
REGISTRY_IDS = {name: ids[-1] for name, ids in REGISTRY_VERSIONS.items()}

CASES = [pytest.param(name, i, id=f"{name}-{i}")
         for name, records in SAMPLES.items() for i in range(len(records))]


def test_every_schema_file_is_loaded_and_has_samples() -> None:
    files = {json.loads(p.read_text(encoding="utf-8"))["name"] for p in SCHEMA_DIR.glob("*.avsc")}
    assert set(schemas()) == files
    assert set(SAMPLES) == files, "add a sample record for every new schema"


@pytest.mark.parametrize(("name", "index"), CASES)
def test_round_trip_through_the_codec(name: str, index: int) -> None:
    codec = Codec()
    record = SAMPLES[name][index]
    data = codec.encode(name, record)
    info, decoded = codec.decode(data)
    assert info.name == name
    assert decoded == record
    assert codec.decode_as(name, data) == record


@pytest.mark.parametrize(("name", "index"), CASES)
def test_wire_format_header(name: str, index: int) -> None:
    data = Codec().encode(name, SAMPLES[name][index], topic="some-topic")
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert schema_id == REGISTRY_IDS[schema(name).full_name]
    assert data[1:5] == schema_id.to_bytes(4, "big")
    body = io.BytesIO(data[5:])
    assert schemaless_reader(body, schema(name).fast, None) == SAMPLES[name][index]
    assert body.tell() == len(data) - 5


def test_registry_ids_are_never_renumbered() -> None:
    data = json.loads((SCHEMA_DIR / "registry.json").read_text(encoding="utf-8"))
    assert data["ids"] == REGISTRY_VERSIONS
    registry = LocalRegistry()
    assert {info.full_name: registry.id_for(info, "any") for info in schemas().values()} == (
        REGISTRY_IDS)
    for full_name, ids in REGISTRY_VERSIONS.items():
        for version, schema_id in enumerate(ids, 1):
            info = registry.info_for(schema_id)
            assert (info.full_name, info.version) == (full_name, version)
        assert registry.info_for(ids[-1]) is schema(full_name.rsplit(".", 1)[1])


def test_ids_do_not_depend_on_the_topic() -> None:
    registry = LocalRegistry()
    info = schema("PaymentEvent")
    assert registry.id_for(info, "payments") == registry.id_for(info, "t1.pay.v2") == 2


def test_unknown_schema_id_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="unknown schema id 99"):
        LocalRegistry().info_for(99)
    with pytest.raises(DecodeError, match="unknown schema id 4096"):
        Codec().decode(b"\x00\x00\x00\x10\x00\x02")


def test_registry_from_without_url_is_local() -> None:
    assert isinstance(registry_from(None), LocalRegistry)
    assert isinstance(registry_from(""), LocalRegistry)


def test_unknown_schema_name() -> None:
    with pytest.raises(SchemaError, match="no schema named 'Nope'"):
        schema("Nope")
    with pytest.raises(SchemaError):
        Codec().encode("Nope", {})


def test_schema_infos() -> None:
    info = schema("Mismatch")
    assert info.full_name == "io.crosscheck.outputs.Mismatch"
    assert info.timestamp_fields == {"decided_at", "detected_at", "resolved_at"}
    assert json.loads(info.text) == info.raw
    assert "logicalType" in info.text
    for name in ("OrderEvent", "PaymentEvent", "InventoryEvent", "ShippingEvent"):
        assert schema(name).timestamp_fields == {"event_time"}
    assert schema("Alert").nested_timestamps == {"source": {"last_event_time"}}
    assert all(not schema(name).nested_timestamps for name in schemas() if name != "Alert")


def test_every_topic_has_a_bundled_value_schema() -> None:
    avro = [t for t in TOPICS if t.encoding == "avro"]
    assert len(avro) >= len(TOPICS) - 1  # only the internal metrics partials are msgpack
    for topic in avro:
        assert schema(topic.value_schema).name == topic.value_schema
    for topic in TOPICS:
        if topic.encoding != "avro":
            assert topic.encoding == "msgpack" and topic.copartition_group is None


def test_schema_files_are_pretty_and_namespaced() -> None:
    for path in Path(SCHEMA_DIR).glob("*.avsc"):
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert raw["type"] == "record"
        assert raw["namespace"].startswith("io.crosscheck.")
        assert path.stem == raw["name"]
