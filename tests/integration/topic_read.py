"""Reading topics back in the tests: every record from the start to its end as it is now;
the worker's outputs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.codec import Codec, DecodeError
from streams.clients import confluent_config
from streams.config import Settings
from streams.verify import normalize_command, normalize_mismatch, sort_records
from tests.integration.scenarios import Outputs
from topology.topics import TopicId, Topology

#: (partition, offset, decoded record)
Placed = tuple[int, int, dict[str, Any]]


def read_placed(settings: Settings, name: str, timeout: float = 60.0, decode: bool = True,
                settle: float = 3.0) -> Iterator[Placed]:
    """(partition, offset, record) of every record of a topic from the start (read_committed),
    decoded (with ``decode`` false the record is left empty: a topic of another encoding), in
    the order read.

    Reads until each partition reports its end (read_committed: the last stable offset)
    instead of until nothing has come for a while. A transaction is visible only once its
    commit markers are written, which the broker does after the producer's commit returns:
    first, for up to ``settle`` seconds, wait until no partition has a transaction open or
    committing (last stable offset = high watermark). What is committed later is not read.
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
        if settle > 0:
            no_open_transactions(settings, consumer,
                                 [TopicPartition(name, p) for p in sorted(pending)], settle)
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


def no_open_transactions(settings: Settings, committed: Consumer, tps: list[TopicPartition],
                         timeout: float = 0.0) -> bool:
    """Wait up to ``timeout`` seconds until each partition's last stable offset (what the
    read_committed consumer ``committed`` reports as its end) is its high watermark: no
    transaction open or being committed. Whether it came to that."""
    uncommitted = Consumer(confluent_config(settings, **{
        "group.id": f"t-hw-{uuid.uuid4().hex[:12]}", "isolation.level": "read_uncommitted"}))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if all(committed.get_watermark_offsets(tp, timeout=15, cached=False)[1] ==
                   uncommitted.get_watermark_offsets(tp, timeout=15, cached=False)[1]
                   for tp in tps):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
    finally:
        uncommitted.close()


def read_records(settings: Settings, name: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record of a topic from the start to its end now, decoded (see ``read_placed``)."""
    return [record for _p, _o, record in read_placed(settings, name, timeout)]


# -- the worker's outputs -------------------------------------------------------------------


@dataclass
class WorkerOutputs:
    """What the worker wrote, read back with read_committed."""

    mismatches: list[dict[str, Any]]
    commands: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]

    def normalized(self) -> Outputs:
        return Outputs(sort_records([normalize_mismatch(m) for m in self.mismatches]),
                       sort_records([normalize_command(c) for c in self.commands]))


def read_outputs(settings: Settings, topology: Topology) -> WorkerOutputs:
    """Mismatches, commands and dead letters (in parallel)."""
    topics = [TopicId.MISMATCHES, TopicId.COMMANDS, TopicId.DLQ]
    with ThreadPoolExecutor(len(topics)) as pool:
        found = list(pool.map(lambda t: read_records(settings, topology.name(t)), topics))
    return WorkerOutputs(*found)
