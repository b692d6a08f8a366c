"""Reading a topic back in the tests: every record from the start to its end as it is now."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.codec import Codec, DecodeError
from streams.clients import confluent_config
from streams.config import Settings

#: (partition, offset, decoded record)
Placed = tuple[int, int, dict[str, Any]]


def read_placed(settings: Settings, name: str, timeout: float = 60.0,
                decode: bool = True) -> Iterator[Placed]:
    """(partition, offset, record) of every record of a topic from the start (read_committed),
    decoded (with ``decode`` false the record is left empty: a topic of another encoding), in
    the order read.

    Reads until each partition reports its end (read_committed: the last stable offset, so
    a transaction still open holds the end before it) instead of until nothing has come for
    a while: no idle wait. What is committed later is not read.
    """
    codec = Codec()
    consumer = Consumer(confluent_config(settings, **{
        "group.id": f"t-read-{uuid.uuid4().hex[:12]}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True,
        # an empty partition's fetch waits this long for records: its end is known at once
        "fetch.wait.max.ms": 20}))
    errors: list[str] = []
    try:
        meta = consumer.list_topics(name, timeout=15).topics.get(name)
        assert meta is not None and meta.error is None, f"topic {name}: {meta and meta.error}"
        pending = set(meta.partitions)
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in sorted(pending)])
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, \
                f"{name}: partitions {sorted(pending)} not read to their end in {timeout:.0f}s"
            for msg in consumer.consume(5000, timeout=0.05):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    else:
                        errors.append(f"{name}: {error}")
                    continue
                try:
                    record = codec.decode(msg.value())[1] if decode else {}
                    yield msg.partition(), msg.offset(), record
                except DecodeError as exc:
                    errors.append(f"{name}[{msg.partition()}]@{msg.offset()}: {exc}")
    finally:
        consumer.close()
    assert not errors, errors[:5]


def read_to_end(settings: Settings, name: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record of a topic from the start to its end now (see ``read_placed``)."""
    return [record for _p, _o, record in read_placed(settings, name, timeout)]
