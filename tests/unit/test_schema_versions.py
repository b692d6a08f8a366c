"""Schema versions: old ids still decode, resolved into the current schema; new ids are written."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codec import _strategy
from test_schemas import REGISTRY_VERSIONS, SAMPLES

from schemas.catalog import (
    SCHEMA_DIR,
    VERSIONS_DIR,
    SchemaInfo,
    load,
    load_versions,
    schema,
    schemas,
    versions,
)
from schemas.codec import Codec
from schemas.errors import DecodeError, SchemaError
from schemas.registry import ConfluentRegistry, LocalRegistry
from streams.fastdecode import read_event
from streams.inputs import decode_checked, decode_input, framed_id
from streams.model import Item, Source
from topology.topics import TopicId

T = 1_795_255_200_000
ALERT_V1 = {"alert_id": "a-1", "kind": "STORM", "mismatch_type": "DUPLICATE_PAYMENT",
            "severity": "CRITICAL", "count": 42, "window_start": T, "window_end": T + 60_000,
            "sample_order_ids": ["o1", "o2"]}
TICK_V1 = {"partition": 3, "idle_topics": ["orders"], "offsets": [17], "sent_at": T}
ORDER_V1 = [
    {"event_id": "o1-placed", "order_id": "o1", "type": "PLACED", "event_time": T,
     "user_id": "u1", "items": [{"sku": "A", "quantity": 2, "unit_price": 1500}],
     "total_amount": 3000, "currency": "CNY"},
    {"event_id": "o1-cancel", "order_id": "o1", "type": "CANCELLED", "event_time": T + 1,
     "user_id": "", "items": [], "total_amount": 0, "currency": ""},
]
COMMAND_V1 = {"command_id": "c-1", "type": "REFUND_PAYMENT", "order_id": "o1",
              "target_id": "p2", "amount": 3000, "currency": "CNY", "sku": None,
              "quantity": None, "mismatch_id": "m-1", "issued_at": T}
MISMATCH_V1 = {"mismatch_id": "m-1", "type": "TCC_HANGING", "status": "OPEN", "order_id": "o1",
               "subject_id": "r1", "severity": "MEDIUM", "decided_at": T, "detected_at": T,
               "evidence": ["e1"], "command_id": "c-1", "details": {}, "resolved_at": None,
               "resolved_by": None}


def framed(schema_id: int, info: SchemaInfo, record: dict[str, Any]) -> bytes:
    """A record as a producer of that schema version wrote it (fastavro, Confluent framing)."""
    out = io.BytesIO()
    out.write(b"\x00" + schema_id.to_bytes(4, "big"))
    schemaless_writer(out, info.fast, record)
    return out.getvalue()


def test_every_version_file_is_a_version_of_a_current_schema() -> None:
    for path in VERSIONS_DIR.glob("*.avsc"):
        raw = json.loads(path.read_text(encoding="utf-8"))
        name, _, k = path.name.removesuffix(".avsc").partition(".v")
        assert raw["name"] == name and (SCHEMA_DIR / f"{name}.avsc").exists()
        assert versions(name)[int(k) - 1].raw == raw
    for name, info in schemas().items():
        kept = versions(name)
        assert kept[-1] is info and [v.version for v in kept] == list(range(1, len(kept) + 1))
        assert len(REGISTRY_VERSIONS[info.full_name]) == len(kept)
    ids = [i for v in REGISTRY_VERSIONS.values() for i in v]
    assert len(ids) == len(set(ids))


def test_the_first_versions_are_the_schemas_as_they_were() -> None:
    alert = versions("Alert")[0].raw
    kind = next(f for f in alert["fields"] if f["name"] == "kind")
    assert kind["type"]["symbols"] == ["MISMATCH", "STORM"]
    assert [f["name"] for f in alert["fields"]] == list(ALERT_V1)
    assert [f["name"] for f in versions("Tick")[0].raw["fields"]] == list(TICK_V1)
    order = versions("OrderEvent")[0].raw
    kind = next(f for f in order["fields"] if f["name"] == "type")
    assert kind["type"]["symbols"] == ["PLACED", "CANCELLED"]
    assert [f["name"] for f in order["fields"]] == list(ORDER_V1[0])
    command = versions("Command")[0].raw
    assert [f["name"] for f in command["fields"]] == list(COMMAND_V1)
    kind = next(f for f in command["fields"] if f["name"] == "type")
    assert "MARK_ORDER_PAID" not in kind["type"]["symbols"]
    mismatch = versions("Mismatch")[0].raw
    kind = next(f for f in mismatch["fields"] if f["name"] == "type")
    assert len(kind["type"]["symbols"]) == 10 and "TCC_HANGING" in kind["type"]["symbols"]


def test_an_old_order_event_decodes_into_the_current_schema_and_to_an_event() -> None:
    codec = Codec()
    old = versions("OrderEvent")[0]
    for record in ORDER_V1:
        data = framed(1, old, record)
        info, decoded = codec.decode(data)
        assert info is schema("OrderEvent") and decoded == {**record, "payment_id": ""}
        assert framed_id(codec, TopicId.ORDERS, data) is None  # the checked path reads it
        event = decode_input(codec, TopicId.ORDERS, data)
        assert (event.type, event.event_id, event.payment_id) == (
            record["type"], record["event_id"], None)
        assert event.total_amount == record["total_amount"]
    assert decode_input(codec, TopicId.ORDERS, framed(1, old, ORDER_V1[0])).items == (
        Item("A", 2, 1500),)


def test_a_paid_order_event_is_written_with_the_new_id_and_read_by_both_paths() -> None:
    codec = Codec()
    for payment_id in ("PAY-1", ""):
        record = {"event_id": "o1-paid", "order_id": "o1", "type": "PAID", "event_time": T,
                  "payment_id": payment_id}
        data = codec.encode("OrderEvent", record)
        assert int.from_bytes(data[1:5], "big") == 13
        assert codec.decode_as("OrderEvent", data) == {
            **record, "user_id": "", "items": [], "total_amount": 0, "currency": ""}
        event = decode_checked(codec, TopicId.ORDERS, data)
        assert (event.type, event.entity_id, event.payment_id) == (
            "PAID", "o1", payment_id or None)
        assert framed_id(codec, TopicId.ORDERS, data) == 13
        assert read_event(Source.ORDERS, data) == event == decode_input(
            codec, TopicId.ORDERS, data)
    with pytest.raises(DecodeError):  # the old version has no PAID (nor a payment_id)
        codec.decode(b"\x00\x00\x00\x00\x01" + data[5:])


def test_old_commands_and_mismatches_decode_into_the_current_schemas() -> None:
    codec = Codec()
    command = codec.decode_as("Command", framed(6, versions("Command")[0], COMMAND_V1))
    assert command == {**COMMAND_V1, "payment_id": None}
    mismatch = codec.decode_as("Mismatch", framed(5, versions("Mismatch")[0], MISMATCH_V1))
    assert mismatch == MISMATCH_V1
    for name, schema_id in (("OrderEvent", 13), ("Mismatch", 14), ("Command", 15)):
        data = codec.encode(name, SAMPLES[name][-1])
        assert int.from_bytes(data[1:5], "big") == schema_id
        assert codec.decode_as(name, data) == SAMPLES[name][-1]


def test_an_old_alert_decodes_into_the_current_schema_with_defaults() -> None:
    codec = Codec()
    data = framed(8, versions("Alert")[0], ALERT_V1)
    info, record = codec.decode(data)
    assert info is schema("Alert")
    assert record == {**ALERT_V1, "source": None}
    assert codec.decode_as("Alert", data) == record


def test_an_old_tick_decodes_with_empty_released_lists_of_its_own() -> None:
    codec = Codec()
    data = framed(10, versions("Tick")[0], TICK_V1)
    first = codec.decode_as("Tick", data)
    assert first == {**TICK_V1, "released_topics": [], "released_offsets": []}
    first["released_topics"].append("mutated")
    assert codec.decode_as("Tick", data)["released_topics"] == []


def test_the_current_schemas_are_written_with_the_new_ids() -> None:
    codec = Codec()
    for name, schema_id in (("Alert", 11), ("Tick", 12), ("PaymentEvent", 2)):
        data = codec.encode(name, SAMPLES[name][0])
        assert int.from_bytes(data[1:5], "big") == schema_id
        assert codec.decode_as(name, data) == SAMPLES[name][0]


def test_only_ids_of_current_versions_are_known_to_the_fast_readers() -> None:
    codec = Codec()
    old = framed(8, versions("Alert")[0], ALERT_V1)
    new = codec.encode("Alert", SAMPLES["Alert"][2])
    codec.decode(old)
    codec.decode(new)
    assert codec.known_name(old) is None
    assert codec.known_name(new) == "Alert"


def test_an_old_layout_of_an_input_schema_is_never_given_to_the_fast_path() -> None:
    current = schema("PaymentEvent")
    older = load(json.loads(current.text), 1)  # same layout, but another version's id
    by_id = {2: current, 77: older}
    registry = SimpleNamespace(id_for=lambda info, topic: 2, info_for=by_id.__getitem__)
    codec = Codec(registry)
    record = SAMPLES["PaymentEvent"][0]
    data = framed(77, older, record)
    assert codec.decode_as("PaymentEvent", data) == record
    assert framed_id(codec, TopicId.PAYMENTS, data) is None
    data = codec.encode("PaymentEvent", record)
    codec.decode(data)
    assert framed_id(codec, TopicId.PAYMENTS, data) == 2


def test_unknown_ids_are_still_decode_errors() -> None:
    codec = Codec()
    body = framed(11, schema("Alert"), SAMPLES["Alert"][0])[5:]
    for schema_id in (0, 16, 99, 2**31):
        with pytest.raises(DecodeError, match=f"unknown schema id {schema_id}"):
            codec.decode(b"\x00" + schema_id.to_bytes(4, "big") + body)


def test_a_bad_body_of_an_old_version_is_a_decode_error() -> None:
    codec = Codec()
    data = framed(8, versions("Alert")[0], ALERT_V1)
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(data + b"\x00")
    with pytest.raises(DecodeError):
        codec.decode(data[:-3])
    at = 5 + 1 + len("a-1")  # the kind, after the alert_id
    assert data[at] == 2  # STORM (zig-zag 1)
    bad_kind = data[:at] + b"\x01" + data[at + 1:]  # index -1
    with pytest.raises(DecodeError, match="kind"):
        codec.decode(bad_kind)
    # a v1 body under the v2 id: read as v2, it does not fit
    with pytest.raises(DecodeError):
        codec.decode(b"\x00\x00\x00\x00\x0b" + framed(8, versions("Alert")[0],
                                                      {**ALERT_V1, "sample_order_ids": []})[5:])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_old_version_resolves_into_the_current_one(data: st.DataObject) -> None:
    registry = LocalRegistry()
    codec = Codec(registry)
    for name, info in schemas().items():
        ids = REGISTRY_VERSIONS[info.full_name]
        for schema_id, old in zip(ids[:-1], versions(name)[:-1], strict=True):
            record = data.draw(_strategy(old.raw))
            decoded = codec.decode_as(name, framed(schema_id, old, record))
            assert set(decoded) == {f["name"] for f in info.raw["fields"]}
            for field in old.raw["fields"]:
                assert decoded[field["name"]] == record[field["name"]]


class _FakeClient:
    """A Confluent registry holding some schema texts."""

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts

    def get_schema(self, schema_id: int) -> Any:
        if schema_id not in self.texts:
            raise LookupError(f"Schema {schema_id} not found")
        return SimpleNamespace(schema_str=self.texts[schema_id])

    def register_schema(self, subject: str, schema_: Any) -> int:
        for schema_id, text in self.texts.items():
            if text == schema_.schema_str:
                return schema_id
        self.texts[len(self.texts) + 100] = schema_.schema_str
        return len(self.texts) + 99


def _confluent(texts: dict[int, str]) -> ConfluentRegistry:
    registry = ConfluentRegistry("http://registry.invalid:8081")
    registry._client = _FakeClient(texts)  # type: ignore[assignment]
    return registry


def test_confluent_ids_decode_as_the_version_they_name() -> None:
    v1, v2 = versions("Alert")
    stripped = {k: v for k, v in v2.raw.items() if k != "doc"}  # the same wire layout
    extra = json.loads(v1.text)  # a version this code does not bundle: one field more
    extra["fields"].append({"name": "team", "type": "string", "default": ""})
    registry = _confluent({1: v1.text, 2: json.dumps(stripped), 3: json.dumps(extra),
                           4: json.dumps({"type": "record", "name": "Other",
                                          "fields": []})})
    assert registry.info_for(1) is v1
    assert registry.info_for(2) is v2
    assert registry.info_for(3).version == 0
    codec = Codec(registry)
    data = framed(1, v1, ALERT_V1)
    assert codec.decode_as("Alert", data) == {**ALERT_V1, "source": None}
    assert codec.known_name(data) is None
    data = framed(2, v2, SAMPLES["Alert"][2])
    assert codec.decode_as("Alert", data) == SAMPLES["Alert"][2]
    assert codec.known_name(data) == "Alert"
    data = framed(3, load(extra, 0), {**ALERT_V1, "team": "payments"})
    assert codec.decode_as("Alert", data) == {**ALERT_V1, "source": None}
    with pytest.raises(DecodeError, match="not a crosscheck schema"):
        codec.decode(b"\x00\x00\x00\x00\x04")
    with pytest.raises(DecodeError, match="not found in the registry"):
        codec.decode(b"\x00\x00\x00\x00\x05" + data[5:])


def test_confluent_writes_the_current_version() -> None:
    registry = _confluent({})
    data = Codec(registry).encode("Alert", SAMPLES["Alert"][3], "crosscheck.alerts")
    schema_id = int.from_bytes(data[1:5], "big")
    assert registry._client.texts[schema_id] == schema("Alert").text  # type: ignore[attr-defined]
    assert registry.info_for(schema_id) is schema("Alert")


def test_versions_must_be_numbered_from_one_and_name_their_record(tmp_path: Path) -> None:
    old = tmp_path / "versions"
    old.mkdir()
    (tmp_path / "Tick.avsc").write_text(schema("Tick").text)
    (old / "Tick.v2.avsc").write_text(versions("Tick")[0].text)
    with pytest.raises(SchemaError, match=r"not 1\.\.n"):
        load_versions(tmp_path, old)
    (old / "Tick.v2.avsc").rename(old / "Nope.v1.avsc")
    with pytest.raises(SchemaError, match="its record is named 'Tick'"):
        load_versions(tmp_path, old)
    (old / "Nope.v1.avsc").rename(old / "Tick.v1.avsc")
    assert [v.version for v in load_versions(tmp_path, old)["Tick"]] == [1, 2]
    (tmp_path / "Tick.avsc").unlink()
    with pytest.raises(SchemaError, match=r"no current \.avsc: Tick"):
        load_versions(tmp_path, old)
