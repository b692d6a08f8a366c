"""What `crosscheck status` reports: consumer lag, watermarks and open mismatches of a group."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.codec import Codec
from schemas.errors import DecodeError
from streams.clients import confluent_config
from streams.config import Settings
from streams.engine.state import decode_meta
from streams.names import META_KEY, META_TABLE, changelog_topic
from topology.topics import INPUTS, TopicId, Topology


@dataclass
class Lag:
    """Consumer position of one input topic-partition."""

    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        """Records not yet committed by the group."""
        return self.end - (self.committed or 0)


@dataclass
class Status:
    """The whole report."""

    group: str
    bootstrap: str
    lags: list[Lag] = field(default_factory=list)
    watermarks: dict[int, int | None] = field(default_factory=dict)
    idle: dict[int, list[str]] = field(default_factory=dict)
    open_by_type: Counter[str] = field(default_factory=Counter)

    @property
    def total_lag(self) -> int:
        """Sum of the lags."""
        return sum(lag.lag for lag in self.lags)

    @property
    def open_mismatches(self) -> int:
        """Mismatches whose latest record is OPEN."""
        return sum(self.open_by_type.values())

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON data."""
        from schemas.validation import format_time

        return {
            "group": self.group,
            "bootstrap": self.bootstrap,
            "total_lag": self.total_lag,
            "lag": [
                {"topic": lag.topic, "partition": lag.partition, "committed": lag.committed,
                 "end": lag.end, "lag": lag.lag}
                for lag in self.lags
            ],
            "watermarks": {str(p): (None if wm is None else format_time(wm))
                           for p, wm in sorted(self.watermarks.items())},
            "idle_inputs": {str(p): topics for p, topics in sorted(self.idle.items())},
            "open_mismatches": self.open_mismatches,
            "open_by_type": dict(sorted(self.open_by_type.items())),
        }


def _read_to_end(consumer: Consumer, topic: str) -> list[Any]:
    """Every record of a topic up to its end offsets as of now."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    ends: dict[int, int] = {}
    for p in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    if not ends:
        return []
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    records: list[Any] = []
    done: set[int] = set()
    idle_polls = 0
    while len(done) < len(ends) and idle_polls < 20:
        batch = consumer.consume(num_messages=5000, timeout=0.5)
        idle_polls = 0 if batch else idle_polls + 1
        for msg in batch:
            if msg.error():
                continue
            records.append(msg)
            offset, partition = msg.offset(), msg.partition()
            if offset is not None and partition is not None and offset + 1 >= ends[partition]:
                done.add(partition)
    consumer.unassign()
    return records


def collect(settings: Settings, topology: Topology) -> Status:
    """Gather the status of the worker group `settings.app_id`."""
    status = Status(settings.app_id, settings.bootstrap)
    consumer = Consumer(confluent_config(settings, **{
        "group.id": settings.app_id,  # only to read its committed offsets: never subscribes
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }))
    try:
        tps: list[TopicPartition] = []
        for topic_id in INPUTS:
            name = topology.name(topic_id)
            meta = consumer.list_topics(name, timeout=10).topics.get(name)
            if meta is None or meta.error is not None:
                continue
            tps.extend(TopicPartition(name, p) for p in sorted(meta.partitions))
        committed = consumer.committed(tps, timeout=10) if tps else []
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            status.lags.append(Lag(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else None,
                                   high))
    finally:
        consumer.close()

    reader = Consumer(confluent_config(settings, **{
        "group.id": f"crosscheck-status-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }))
    try:
        for msg in _read_to_end(reader, changelog_topic(settings.app_id, META_TABLE)):
            if msg.value() is None or msg.key() != META_KEY:
                continue  # the same table also holds the metrics windows
            meta = decode_meta(msg.value())
            status.watermarks[msg.partition()] = meta.watermark
            status.idle[msg.partition()] = list(meta.idle)
        codec = Codec()
        latest: dict[str, tuple[str, str]] = {}
        for msg in _read_to_end(reader, topology.name(TopicId.MISMATCHES)):
            try:
                record = codec.decode_as("Mismatch", msg.value())
            except DecodeError:
                continue
            latest[record["mismatch_id"]] = (record["status"], record["type"])
        status.open_by_type = Counter(t for s, t in latest.values() if s == "OPEN")
    finally:
        reader.close()
    return status
