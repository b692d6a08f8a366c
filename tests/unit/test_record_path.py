"""The native engine's one-call path (``on_record``) and the replay's native reading
(``read_record``) do what the checked path does.

``on_record`` reads an input record's bytes in Rust (the reading of ``streams.fastdecode``),
checks its partition and applies it. It may decline any record (None: the runtime's checked
path decides, and nothing was applied), but what it applies must be what the checked path
gives: the same outputs as a Python engine fed ``decode_input``'s Event after the partition
check, the same fields for the metrics, over valid records, the input fuzz corpus and any
field values. And it must take the records encoders write (else it only costs time).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from builders import RULES
from fuzzing import INPUT_TOPICS, schema_name, valid_record
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_input import CODEC, HYPO, any_record, payloads

from schemas.errors import DecodeError, ValidationError
from streams import native
from streams.engine import MemoryStore, core
from streams.inputs import decode_input
from streams.model import Event, Source
from topology.partitioner import partition_for
from topology.topics import TopicId

pytestmark = pytest.mark.skipif(native.status() != "native",
                                reason="the native core is not built (make native)")

PARTITIONS = 4
NOW = 1_800_000_000_000


def _schema_id(topic: TopicId) -> int:
    value = CODEC.encode(schema_name(topic), valid_record(random.Random(0), topic))
    return int.from_bytes(value[1:5], "big")


SCHEMA_IDS = {topic: _schema_id(topic) for topic in INPUT_TOPICS}


class Pair:
    """A native engine fed records through ``on_record`` (the checked path when it
    declines), one fed ``read_record``'s events (the replay's), and one fed the checked path
    only (whose ``on_event`` gives what the Python engine's does: ``test_native_parity.py``), on
    stores of their own."""

    def __init__(self) -> None:
        self.native = core.PartitionEngine(RULES, MemoryStore(), lambda: NOW)
        fast = core.record_engine(self.native)
        assert fast is not None
        self.fast = fast
        self.reference = core.PartitionEngine(RULES, MemoryStore(), lambda: NOW)
        self.replay = core.PartitionEngine(RULES, MemoryStore(), lambda: NOW)
        self.seen: Counter[str] = Counter()

    def feed(self, topic: TopicId, value: bytes | None, partition: int) -> None:
        event = checked(topic, value, partition)
        done = read = None
        if value is not None:
            assert core.read_record is not None
            read = core.read_record(topic.value, value, SCHEMA_IDS[topic], partition,
                                    PARTITIONS)
            done = self.fast.on_record(Source(topic.value), value, SCHEMA_IDS[topic],
                                       partition, PARTITIONS)
        assert (read is None) == (done is None)  # the replay's reading is the worker's
        if event is None:
            assert done is None, (topic, value)  # the checked path refuses it
            self.seen["refused"] += 1
            return
        expected = self.reference.on_event(event)
        # the replay's engine is fed the native core's event where it reads one
        if read is not None:
            assert (read.event_time, read.order_id) == (event.event_time, event.order_id)
        assert self.replay.on_event(read if read is not None else event) == expected
        if done is None:
            self.seen["valid, declined"] += 1
            outputs: list[Any] = self.native.on_event(event)
        else:
            self.seen["one call"] += 1
            outputs, etype, event_time, amount, currency, watermark = done
            assert (etype, event_time, amount, currency) == (
                event.type, event.event_time, event.amount, event.currency)
            assert watermark == self.reference.watermark == self.native.watermark
        assert outputs == expected
        assert self.fast.last_was_new == self.reference.last_was_new


def checked(topic: TopicId, value: bytes | None, partition: int) -> Event | None:
    """The Event the checked path applies on ``partition`` (None: a dead letter)."""
    try:
        event = core_decode(topic, value)
    except (DecodeError, ValidationError):
        return None
    return event if partition_for(event.order_id, PARTITIONS) == partition else None


def core_decode(topic: TopicId, value: bytes | None) -> Event:
    return decode_input(CODEC, topic, value)


def home(topic: TopicId, value: bytes | None, rng: random.Random) -> int:
    """The record's partition: its order's, mostly; another one now and then, and a random
    one when it has no order_id that can be read."""
    try:
        right = partition_for(core_decode(topic, value).order_id, PARTITIONS)
    except (DecodeError, ValidationError):
        return rng.randrange(PARTITIONS)
    return right if rng.random() < 0.9 else (right + 1) % PARTITIONS


def ascii_valid_record(rng: random.Random, topic: TopicId) -> dict[str, Any]:
    """A valid record whose order_id is printable ASCII (what ``on_record`` reads; it leaves
    other order_ids, valid or not, to the checked path)."""
    return {**valid_record(rng, topic), "order_id": f"o-{rng.randrange(10**9)}"}


def test_valid_records_of_every_topic_take_the_one_call_path() -> None:
    rng = random.Random(7)
    pair = Pair()
    for _ in range(400):
        for topic in INPUT_TOPICS:
            value = CODEC.encode(schema_name(topic), ascii_valid_record(rng, topic))
            pair.feed(topic, value, partition_for(core_decode(topic, value).order_id,
                                                  PARTITIONS))
    assert pair.seen == Counter({"one call": 1600})
    assert pair.fast.take_decode_seconds() > 0
    assert pair.fast.take_decode_seconds() == 0


def test_the_fuzz_corpus_is_applied_the_same_or_left_to_the_checked_path() -> None:
    rng = random.Random(20261205)
    pair = Pair()
    for _kind, topic, value, _ in payloads(rng, 20_000):
        pair.feed(topic, value, home(topic, value, rng))
    seen = pair.seen
    assert seen["one call"] > 500 and seen["refused"] > 8_000, seen


@HYPO
@given(st.sampled_from(INPUT_TOPICS), st.data())
def test_any_field_values_are_applied_the_same(topic: TopicId, data: st.DataObject) -> None:
    _, value = any_record(topic, data)
    Pair().feed(topic, value, data.draw(st.integers(0, PARTITIONS - 1), label="partition"))


def test_another_schema_id_or_partition_is_declined_and_nothing_applied() -> None:
    rng = random.Random(11)
    pair = Pair()
    value = CODEC.encode(schema_name(TopicId.PAYMENTS),
                         ascii_valid_record(rng, TopicId.PAYMENTS))
    right = partition_for(core_decode(TopicId.PAYMENTS, value).order_id, PARTITIONS)
    source, sid = Source.PAYMENTS, SCHEMA_IDS[TopicId.PAYMENTS]
    assert pair.fast.on_record(source, value, sid + 1, right, PARTITIONS) is None
    assert pair.fast.on_record(source, value[:4], sid, right, PARTITIONS) is None
    assert pair.fast.on_record(source, b"\x01" + value[1:], sid, right, PARTITIONS) is None
    wrong = (right + 1) % PARTITIONS
    assert pair.fast.on_record(source, value, sid, wrong, PARTITIONS) is None
    assert pair.fast.on_record(Source.ORDERS, value, sid, right, PARTITIONS) is None
    store = pair.native.store
    assert list(store.order_ids()) == [] and store.get_meta() is None  # nothing was applied
    done = pair.fast.on_record(source, value, sid, right, PARTITIONS)
    assert done is not None and pair.fast.last_was_new
    assert len(list(store.order_ids())) == 1 and store.get_meta() is not None
    again = pair.fast.on_record(source, value, sid, right, PARTITIONS)
    assert again is not None and not pair.fast.last_was_new  # a redelivery
