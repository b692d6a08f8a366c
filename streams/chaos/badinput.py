"""Bursts of bad input records (not Avro, truncated, wrong schema id, failing validation).

Each record is keyed by an order_id of its own and sent with the murmur2 partitioner, so it
lands on the order's home partition: the worker must dead-letter it for what is wrong with
it, not as "misrouted". A raw confluent-kafka producer writes the bytes as they are, and the
delivery reports give each record's (topic, partition, offset), which the run then looks for
in the DLQ: every one exactly once.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Producer

from schemas.codec import Codec
from streams.clients import confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from topology.topics import BY_ID, INPUTS, TopicId, Topology

KINDS = ("not_avro", "truncated", "wrong_schema_id", "invalid")
#: a schema id no registry here hands out
UNKNOWN_SCHEMA_ID = 999_999
_T0 = 1_795_219_200_000  # 2026-11-21T00:00:00Z

#: per topic: changes that keep a record Avro but make validation fail
_INVALID: dict[TopicId, tuple[dict[str, Any], ...]] = {
    TopicId.ORDERS: ({"total_amount": -5}, {"currency": "C1Y"},
                     {"items": [{"sku": "SKU-1", "quantity": 0, "unit_price": 100}]}),
    TopicId.PAYMENTS: ({"amount": -1}, {"currency": "cny"}, {"event_id": ""},
                       {"payment_id": ""}),
    TopicId.INVENTORY: ({"quantity": 0}, {"quantity": -3}, {"sku": ""}),
    TopicId.SHIPPING: ({"items": []}, {"items": [{"sku": "SKU-1", "quantity": 0}]}),
}


def valid_record(topic: TopicId, order_id: str, n: int) -> dict[str, Any]:
    """A good Avro record of an input topic (the base every bad record is made from)."""
    common = {"event_id": f"{order_id}-e{n}", "order_id": order_id, "event_time": _T0 + n}
    if topic is TopicId.ORDERS:
        return {**common, "type": "PLACED", "user_id": "U-BAD", "total_amount": 100,
                "currency": "CNY", "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}]}
    if topic is TopicId.PAYMENTS:
        return {**common, "type": "SUCCEEDED", "payment_id": f"{order_id}-p", "amount": 100,
                "currency": "CNY", "channel": "card"}
    if topic is TopicId.INVENTORY:
        return {**common, "type": "RESERVED", "reservation_id": f"{order_id}-r",
                "sku": "SKU-1", "quantity": 1}
    return {**common, "type": "CREATED", "shipment_id": f"{order_id}-s",
            "items": [{"sku": "SKU-1", "quantity": 1}]}


@dataclass(frozen=True)
class BadRecord:
    """One bad record: where it goes, its key, its bytes and what is wrong with it."""

    topic: TopicId
    order_id: str
    value: bytes | None
    kind: str
    what: str


def make_bad(rng: random.Random, codec: Codec, topology: Topology, kind: str,
             order_id: str, n: int) -> BadRecord:
    """A bad record of ``kind`` (one of KINDS) for a random input topic."""
    topic = rng.choice(INPUTS)
    name = topology.name(topic)
    record = valid_record(topic, order_id, n)
    good = codec.encode(BY_ID[topic].value_schema, record, name)
    if kind == "not_avro":
        choice = rng.randrange(4)
        if choice == 0:
            return BadRecord(topic, order_id, orjson.dumps(record), kind, "JSON text")
        if choice == 1:
            noise = bytes([rng.randrange(1, 256)]) + rng.randbytes(rng.randrange(4, 60))
            return BadRecord(topic, order_id, noise, kind, "random bytes")
        if choice == 2:
            return BadRecord(topic, order_id, rng.randbytes(rng.randrange(0, 5)), kind,
                             "shorter than the header")
        return BadRecord(topic, order_id, None, kind, "no value (tombstone)")
    if kind == "truncated":
        cut = rng.randrange(5, len(good))
        return BadRecord(topic, order_id, good[:cut], kind, f"{cut} of {len(good)} bytes")
    if kind == "wrong_schema_id":
        choice = rng.randrange(3)
        if choice == 0:
            header = struct.pack(">bI", 0, UNKNOWN_SCHEMA_ID)
            return BadRecord(topic, order_id, header + good[5:], kind, "unknown schema id")
        other = rng.choice([t for t in INPUTS if t is not topic])
        if choice == 1:  # a good record of another input's schema
            value = codec.encode(BY_ID[other].value_schema,
                                 valid_record(other, order_id, n), name)
            return BadRecord(topic, order_id, value, kind, f"a {other.value} record")
        header = codec.encode(BY_ID[other].value_schema, valid_record(other, order_id, n),
                              name)[:5]  # this body under another schema's id
        return BadRecord(topic, order_id, header + good[5:], kind,
                         f"body under the {other.value} schema id")
    change = rng.choice(_INVALID[topic])
    value = codec.encode(BY_ID[topic].value_schema, {**record, **change}, name)
    return BadRecord(topic, order_id, value, kind, f"invalid {', '.join(change)}")


@dataclass
class BadSender:
    """Writes bursts of bad records and remembers where each one landed."""

    settings: Settings
    topology: Topology
    codec: Codec
    seed: int
    #: (topic name, partition, offset) -> kind, for every acknowledged record
    sent: dict[tuple[str, int, int], str] = field(default_factory=dict)
    by_kind: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(f"crosscheck-chaos-bad:{self.seed}")
        self._producer = Producer(confluent_config(self.settings, **{
            "partitioner": "murmur2_random", "enable.idempotence": True, "acks": "all"}))

    def burst(self, size: int, timeout: float = 60.0) -> int:
        """Send ``size`` bad records (the kinds in turn) and wait for them; returns how many
        were acknowledged. CrosscheckError if any was not."""
        before = len(self.sent)
        for i in range(size):
            self._n += 1
            kind = KINDS[(self._n - 1) % len(KINDS)]
            order_id = f"CHAOS-BAD-{self.seed}-{self._n:06d}"
            bad = make_bad(self._rng, self.codec, self.topology, kind, order_id, i)
            self._producer.produce(self.topology.name(bad.topic), bad.value,
                                   order_id.encode(), on_delivery=self._delivered(kind))
            self._producer.poll(0)
        left = self._producer.flush(timeout)
        if left or self.errors:
            raise CrosscheckError(f"bad records not delivered: {left} left, {self.errors[:3]}")
        return len(self.sent) - before

    def _delivered(self, kind: str) -> Any:
        def report(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))
                return
            self.sent[(msg.topic(), msg.partition(), msg.offset())] = kind
            self.by_kind[kind] += 1
        return report
