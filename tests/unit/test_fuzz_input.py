"""Fuzz test of the input path (codec, validation, Event; Runtime.handle's dead letters).

Over 100,000 payloads: random bytes, mutated valid records, bad field values written past
any encoder's checks, huge strings, long item lists, unicode and invalid UTF-8, numbers past
64 bits, bad enum indexes, currencies and event times. The property: `decode_input` returns
an Event or raises DecodeError / ValidationError with a specific reason (a known form that
names the field or the problem), never anything else; valid records round-trip; and
`Runtime.handle` turns every bad record into exactly one dead letter with that reason.
Volume comes from a seeded random.Random loop; hypothesis drives the field-level structure.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from builders import BlobStore
from fuzzing import (
    INPUT_TOPICS,
    SCHEMA_IDS,
    Blocks,
    Raw,
    bad_value,
    encode_raw,
    header,
    huge_string,
    leaf_fields,
    schema_name,
    text,
    valid_record,
    zigzag,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schemas import SAMPLES

from schemas.catalog import schema
from schemas.codec import Codec
from schemas.errors import DecodeError, ValidationError
from schemas.limits import show
from schemas.validation import validate_event
from streams.config import RuleConfig
from streams.inputs import decode_input
from streams.model import DeadLetter, Event, Source
from streams.records import event_from_record
from streams.worker.runtime import Runtime
from streams.worker.runtime_types import Record
from topology.topics import TopicId, Topology

CODEC = Codec()
PAYLOADS = 100_000  # at least 100k: the figure
FIELDS = {name: {f["name"] for f in schema(name).raw["fields"]} for name in SCHEMA_IDS}
_HEADER_FORMS = re.compile(
    r"empty value \(tombstone\)|\d bytes is too short for the 5-byte wire-format header"
    r"|magic byte is -?\d+, not 0: not Confluent wire format|unknown schema id \d+"
    r"|expected a \w+ record, got \w+|\d+ trailing bytes after a \w+ record")
_BODY = re.compile(r"body is not a valid (?P<name>\w+): (?P<path>\w+)(?:\[\d+\])?"
                   r"(?:\.\w+)?(?: \((?:union index|block count|block size|key)\))?: (?P<what>.+)")
_GENERIC = re.compile(r"\b(?:Index|EOF|Key|Type|Value|Attribute|Overflow|Recursion|Memory)"
                      r"Error\b|struct\.error|Traceback|object at 0x")
Outcome = Event | DecodeError | ValidationError


def outcome(topic: TopicId, value: bytes | None) -> Outcome:
    """What the input path makes of a value (any other exception fails the test)."""
    try:
        return decode_input(CODEC, topic, value)
    except (DecodeError, ValidationError) as exc:
        return exc


def root(path: str) -> str:
    """The top-level field of a field path (items[3].sku -> items)."""
    return re.split(r"[.\[ ]", path, maxsplit=1)[0]


def assert_specific(exc: DecodeError | ValidationError, topic: TopicId) -> str:
    """The reason is one of the known forms, names a real field, and is short; its field."""
    reason = str(exc)
    assert reason and len(reason) <= 300, reason[:400]
    assert not _GENERIC.search(reason), reason
    if isinstance(exc, ValidationError):
        assert exc.reason and exc.field, reason
        assert root(exc.field) in FIELDS[schema_name(topic)] | {"event"}, reason
        return root(exc.field)
    if _HEADER_FORMS.fullmatch(reason):
        return ""
    body = _BODY.fullmatch(reason)
    assert body is not None, reason
    assert body["path"] in FIELDS[body["name"]], reason
    return body["path"]


def assert_round_trip(topic: TopicId, value: bytes, event: Event) -> None:
    """A decoded event re-encodes (canonical form) to the same event."""
    record = validate_event(topic, CODEC.decode(value)[1])
    assert decode_input(CODEC, topic, CODEC.encode(schema_name(topic), record)) == event


def runtime() -> Runtime:
    """A one-partition runtime over an in-memory store (as the runtime unit tests build)."""
    store = BlobStore()
    return Runtime(RuleConfig(), Topology(1, "", {}), CODEC, lambda p: store,
                   dict.fromkeys(TopicId, 1), 1, "w1", clock=lambda: 1000)


def assert_handled(rt: Runtime, topic: TopicId, offset: int, key: bytes | None,
                   value: bytes | None, result: Outcome) -> None:
    """Runtime.handle never raises; a bad record is exactly one DLQ Emit with the reason."""
    emits = rt.handle(Record(rt.topology.name(topic), 0, offset, key, value))
    if isinstance(result, Event):
        assert all(e.topic is not TopicId.DLQ for e in emits), emits
        return
    assert len(emits) == 1 and emits[0].topic is TopicId.DLQ, emits
    letter = emits[0].output
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.value, letter.key) == (str(result), value, key)
    assert (letter.offset, letter.source_topic) == (offset, rt.topology.name(topic))


# --- the volume loop: seeded payloads of every kind --------------------------------------


def _mutate(rng: random.Random, data: bytes, kind: str, name: str) -> bytes | None:
    buf = bytearray(data)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[rng.randrange(len(buf)):]
    elif kind == "extend":
        buf += rng.randbytes(rng.randint(1, 20))
    elif kind == "splice":
        i = rng.randrange(5, len(buf) + 1)
        buf[i:i + rng.randint(0, 3)] = rng.randbytes(rng.randint(0, 3))
    elif kind == "magic":
        buf[0] = rng.randint(1, 255)
    elif kind == "unknown_id":
        unknown = rng.choice((0, 11, 99, 2**31, 2**32 - 1))
        buf[1:5] = unknown.to_bytes(4, "big")
    elif kind == "other_id":
        other = rng.choice([i for n, i in SCHEMA_IDS.items() if n != name])
        buf[1:5] = other.to_bytes(4, "big")
    elif kind == "random":
        prefix = header(rng.choice(list(SCHEMA_IDS))) if rng.random() < 0.5 else b""
        return prefix + rng.randbytes(rng.randint(0, 64))
    elif kind == "tombstone":
        return None
    return bytes(buf)


#: kind of payload -> weight (huge: a string of 10k characters and more)
KINDS: dict[str, float] = {
    "valid": 12, "bad_field": 14, "bad_item": 3, "missing_field": 3, "bitflip": 14,
    "truncate": 10, "extend": 4, "splice": 8, "magic": 2, "unknown_id": 2, "other_id": 4,
    "other_record": 2, "random": 10, "tombstone": 1, "huge": 0.3}


def payloads(rng: random.Random, count: int) -> Iterator[tuple[str, TopicId, bytes | None,
                                                              Any]]:
    """(kind, topic, value, what to expect) for `count` payloads."""
    kinds, weights = list(KINDS), list(KINDS.values())
    pool = {topic: [valid_record(rng, topic) for _ in range(2000)] for topic in INPUT_TOPICS}
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        topic = rng.choice(INPUT_TOPICS)
        # valid events are new ones (the engine sees distinct orders); mutations start from
        # one of 2000 valid records per topic (making a record costs more than the checks)
        record = valid_record(rng, topic) if kind == "valid" else rng.choice(pool[topic])
        name = schema_name(topic)
        good = CODEC.encode(name, record)
        if kind == "valid":
            yield kind, topic, good, event_from_record(Source(topic.value), record)
        elif kind in ("bad_field", "bad_item", "huge"):
            field, ftype = rng.choice([f for f in leaf_fields(schema(name).raw)
                                       if kind != "bad_item" or f[0] == "items"]
                                      or leaf_fields(schema(name).raw))
            changed = huge_string(rng) if kind == "huge" and ftype == "string" else \
                bad_value(rng, ftype)
            yield kind, topic, encode_raw(topic, {**record, field: changed}), (field, changed)
        elif kind == "missing_field":
            field = rng.choice(sorted(record))
            yield kind, topic, encode_raw(topic, {k: v for k, v in record.items()
                                                  if k != field}), None
        elif kind == "other_record":
            other = rng.choice([n for n in SAMPLES if n != name])
            yield kind, topic, CODEC.encode(other, rng.choice(SAMPLES[other])), "expected"
        else:
            yield kind, topic, _mutate(rng, good, kind, name), None


def as_read(written: Any) -> Any:
    """What a correct decoder reads for a value write_raw wrote (bytes as UTF-8 text)."""
    if isinstance(written, bytes):
        return written.decode("utf-8")
    if isinstance(written, Blocks):
        return [as_read(item) for block in written.blocks for item in block]
    if isinstance(written, list):
        return [as_read(item) for item in written]
    if isinstance(written, dict):
        return {k: as_read(v) for k, v in written.items()}
    return written


def _key(rng: random.Random) -> bytes | None:
    return rng.choice((None, b"", b"o1", b"\xff\xfe\x00", "订单".encode(), rng.randbytes(8)))


def test_a_hundred_thousand_payloads_never_escape_the_dead_letter_boundary() -> None:
    rng = random.Random(20261121)
    rt = runtime()
    seen: Counter[str] = Counter()
    for offset, (kind, topic, value, expect) in enumerate(payloads(rng, PAYLOADS)):
        result = outcome(topic, value)
        if isinstance(result, Event):
            assert value is not None
            if kind == "valid":  # the event of the record that was encoded
                assert result == expect
            else:  # a mutation that still makes a valid record: it round-trips
                assert_round_trip(topic, value, result)
            if kind in ("bad_field", "bad_item", "huge"):  # and holds what was written
                field, written = expect
                if not isinstance(written, Raw):
                    read = CODEC.decode(value)[1][field]
                    ftype = dict(leaf_fields(schema(schema_name(topic)).raw))[field]
                    if isinstance(written, int) and isinstance(ftype, dict) and \
                            ftype["type"] == "enum":
                        symbols = ftype["symbols"]  # an index within them is a valid one
                        written = symbols[written] if 0 <= written < len(symbols) else None
                    assert read == as_read(written), (field, show(read), show(written))
            seen[f"{kind} ok"] += 1
        else:
            assert kind != "valid", (result, expect)
            field = assert_specific(result, topic)
            if kind in ("bad_field", "bad_item", "huge"):  # the error is at the changed field
                assert field == expect[0], (str(result), expect[0])
            elif kind == "other_record":
                assert str(result).startswith("expected a "), str(result)
            elif kind == "extend":
                assert "trailing bytes" in str(result), str(result)
            seen[f"{kind} bad"] += 1
        assert_handled(rt, topic, offset, _key(rng), value, result)
    assert sum(seen.values()) == PAYLOADS
    for kind in KINDS:  # every kind was generated, and the bad ones were mostly rejected
        assert seen[f"{kind} bad"] + seen[f"{kind} ok"] > 0, kind
    assert min(seen["valid ok"], seen["bad_field bad"]) > PAYLOADS // 20, seen
    assert seen["other_id ok"] == seen["magic ok"] == seen["extend ok"] == 0, seen
    assert rt.counters.dead_letters == sum(n for k, n in seen.items() if k.endswith(" bad"))


# --- hypothesis: any value in any field, through Avro and through the mapping path -----------

_CHARS = st.one_of(st.characters(exclude_categories=()),
                   st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF,
                                 exclude_categories=()))
_TEXT = st.one_of(st.text(_CHARS, max_size=12), st.binary(max_size=8),
                  st.sampled_from(["", " ", "CNY", "usd", "x" * 300]))
_NUMBER = st.one_of(st.integers(-(2**70), 2**70), st.integers(-3, 3),
                    st.sampled_from([2**31, 2**63, 2**63 - 1, 221_845_392_000_000]))
HYPO = settings(max_examples=600, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _avro_value(ftype: Any) -> st.SearchStrategy[Any]:
    kind = ftype if isinstance(ftype, str) else ftype["type"]
    if kind == "string":
        return _TEXT
    if kind in ("long", "int"):
        return _NUMBER
    if kind == "enum":
        return st.one_of(st.sampled_from(ftype["symbols"]), st.integers(-5, 8))
    if kind == "array":
        item = st.fixed_dictionaries({n: _avro_value(t) for n, t in leaf_fields(ftype["items"])})
        return st.lists(item, max_size=3)
    raise AssertionError(kind)


def any_record(topic: TopicId, data: st.DataObject) -> tuple[dict[str, Any], bytes]:
    """A record of the topic's schema with any value hypothesis draws in every field, and
    its framed bytes (whatever the values, valid or not)."""
    fields = leaf_fields(schema(schema_name(topic)).raw)
    record = {name: data.draw(_avro_value(ftype), label=name) for name, ftype in fields}
    return record, encode_raw(topic, record)


@HYPO
@given(st.sampled_from(INPUT_TOPICS), st.data())
def test_any_field_values_written_to_avro(topic: TopicId, data: st.DataObject) -> None:
    record, value = any_record(topic, data)
    result = outcome(topic, value)
    if isinstance(result, Event):
        assert_round_trip(topic, value, result)
        order_id = record["order_id"]
        assert result.order_id == (order_id.decode() if isinstance(order_id, bytes) else order_id)
    else:
        assert_specific(result, topic)
    assert_handled(runtime(), topic, 0, b"k", value, result)


_JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), _NUMBER, st.floats(), st.text(_CHARS, max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=10)


@HYPO
@given(st.sampled_from(INPUT_TOPICS), st.data())
def test_any_values_on_the_mapping_path(topic: TopicId, data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    event: dict[str, Any] = dict(valid_record(rng, topic))
    for name in data.draw(st.lists(st.sampled_from(sorted(event)), min_size=1, max_size=3)):
        event[name] = data.draw(_JSONISH, label=name)
    try:
        record = validate_event(topic, event)
    except ValidationError as exc:
        assert_specific(exc, topic)
        return
    assert CODEC.decode_as(schema_name(topic), CODEC.encode(schema_name(topic), record)) == \
        record


def test_the_generators_make_what_they_say() -> None:
    rng = random.Random(7)
    for topic in INPUT_TOPICS:
        for _ in range(200):
            record = valid_record(rng, topic)
            assert validate_event(topic, record) == record
            assert encode_raw(topic, record) == CODEC.encode(schema_name(topic), record)
    assert zigzag(-1) == b"\x01" and zigzag(2**63 - 1) == b"\xfe" + b"\xff" * 8 + b"\x01"
    broken = outcome(TopicId.PAYMENTS, encode_raw(TopicId.PAYMENTS, {
        **valid_record(rng, TopicId.PAYMENTS), "amount": Raw(b"\xff" * 11)}))
    assert isinstance(broken, DecodeError) and assert_specific(broken, TopicId.PAYMENTS) == \
        "amount"
    assert len(text(rng, 300, 300)) == 300


def test_the_reason_check_rejects_generic_messages() -> None:
    # the fuzz properties are only as good as this check: it must fail on what a caught
    # library exception or an unnamed field would give
    for reason in ("body is not a valid PaymentEvent: IndexError: string index out of range",
                   "body is not a valid PaymentEvent: nosuchfield: broken", "",
                   "EOFError()", "x" * 500):
        with pytest.raises(AssertionError):
            assert_specific(DecodeError(reason), TopicId.PAYMENTS)
    with pytest.raises(AssertionError):
        assert_specific(ValidationError("nosuchfield", "is bad"), TopicId.PAYMENTS)
    with pytest.raises(AssertionError):
        assert_specific(ValidationError("amount", "ValueError: bad"), TopicId.PAYMENTS)
    assert assert_specific(ValidationError("items[2].sku", "must not be empty"),
                           TopicId.ORDERS) == "items"
