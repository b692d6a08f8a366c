"""The fast path of decoding input records reads exactly what the checked path reads.

``read_event`` may decline any record (None: the checked path decides), but an Event it
returns must equal the checked path's, over valid records of every topic, the input fuzz
corpus (mutations, bad fields, raw bytes) and any field values hypothesis writes to Avro;
and it must read the records encoders write (else it would only cost time).
"""

from __future__ import annotations

import random
from collections import Counter

from fuzzing import INPUT_TOPICS, Blocks, Raw, encode_raw, schema_name, valid_record
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_input import CODEC, HYPO, any_record, payloads

from schemas.errors import DecodeError, ValidationError
from streams.fastdecode import read_event
from streams.inputs import decode_checked, decode_input, framed_id
from streams.model import Event, Source
from topology.topics import TopicId

Outcome = Event | DecodeError | ValidationError


def checked(topic: TopicId, value: bytes | None) -> Outcome:
    try:
        return decode_checked(CODEC, topic, value)
    except (DecodeError, ValidationError) as exc:
        return exc


def fast(topic: TopicId, value: bytes | None) -> Event | None:
    """What the fast path reads, for a value framed with its topic's schema id."""
    if value is None or CODEC.known_name(value) != schema_name(topic):
        return None
    return read_event(Source(topic.value), value)


def test_valid_records_of_every_topic_are_read_by_the_fast_path() -> None:
    rng = random.Random(3)
    for topic in INPUT_TOPICS:
        for _ in range(500):
            value = CODEC.encode(schema_name(topic), valid_record(rng, topic))
            expected = checked(topic, value)
            assert isinstance(expected, Event)
            assert fast(topic, value) == expected == decode_input(CODEC, topic, value)


def test_the_fuzz_corpus_reads_the_same_or_is_left_to_the_checked_path() -> None:
    rng = random.Random(20261205)
    seen: Counter[str] = Counter()
    for kind, topic, value, _ in payloads(rng, 30_000):
        expected = checked(topic, value)
        got = fast(topic, value)
        if got is not None:
            assert got == expected, (kind, got, expected)
            seen["read"] += 1
        elif isinstance(expected, Event):
            seen["valid, declined"] += 1
        else:
            seen["bad, declined"] += 1
        result: Outcome
        try:
            result = decode_input(CODEC, topic, value)
        except (DecodeError, ValidationError) as exc:
            result = exc
        assert type(result) is type(expected) and str(result) == str(expected)
    assert seen["read"] > 2_000 and seen["bad, declined"] > 10_000, seen


@HYPO
@given(st.sampled_from(INPUT_TOPICS), st.data())
def test_any_field_values_read_the_same(topic: TopicId, data: st.DataObject) -> None:
    _, value = any_record(topic, data)
    got = fast(topic, value)
    if got is not None:
        assert got == checked(topic, value)


def test_what_encoders_do_not_write_is_left_to_the_checked_path() -> None:
    rng = random.Random(5)
    payment = valid_record(rng, TopicId.PAYMENTS)
    big = encode_raw(TopicId.PAYMENTS, {**payment, "amount": 2**63 - 1})
    event = fast(TopicId.PAYMENTS, big)
    assert event is not None and event.amount == 2**63 - 1
    assert event == checked(TopicId.PAYMENTS, big)
    over = encode_raw(TopicId.PAYMENTS, {**payment, "amount": 2**63})  # past 64 bits
    assert fast(TopicId.PAYMENTS, over) is None
    assert isinstance(checked(TopicId.PAYMENTS, over), DecodeError)
    padded = encode_raw(TopicId.PAYMENTS, {**payment, "amount": Raw(b"\x82\x80\x00")})
    assert fast(TopicId.PAYMENTS, padded) is None  # a varint with a trailing zero group
    shipping = valid_record(rng, TopicId.SHIPPING)
    items = [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]
    blocks = encode_raw(TopicId.SHIPPING, {**shipping, "items": Blocks(((items[0],),
                                                                        (items[1],)))})
    assert fast(TopicId.SHIPPING, blocks) is None  # an array in two blocks
    assert [i.sku for i in decode_input(CODEC, TopicId.SHIPPING, blocks).items] == ["A", "B"]


def test_framed_id_is_the_id_of_the_topics_own_schema_only() -> None:
    rng = random.Random(9)
    payment = CODEC.encode(schema_name(TopicId.PAYMENTS), valid_record(rng, TopicId.PAYMENTS))
    assert framed_id(CODEC, TopicId.PAYMENTS, payment) == int.from_bytes(payment[1:5], "big")
    assert framed_id(CODEC, TopicId.ORDERS, payment) is None  # another topic's schema
    assert framed_id(CODEC, TopicId.PAYMENTS, payment[:3]) is None  # not framed
    assert framed_id(CODEC, TopicId.PAYMENTS, None) is None
