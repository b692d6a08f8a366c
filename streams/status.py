"""What `crosscheck status` reports: lag, inputs, watermarks, open mismatches, held commands."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.validation import format_time
from streams.clients import confluent_config
from streams.config import RuleConfig, Settings
from streams.engine.held import HeldCommands
from streams.engine.state import PartitionMeta, decode_meta
from streams.engine.store import MemoryStore
from streams.engine.watermark import rule_watermarks
from streams.model import Source
from streams.names import HELD_PREFIX, META_KEY, META_TABLE, STALLED_KEY, changelog_topic
from topology.topics import INPUTS, TopicId, Topology

_since_decoder = msgspec.msgpack.Decoder(dict[str, int])


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
class InputStatus:
    """One input topic-partition as the group's stored watermark state has it."""

    topic: str
    partition: int
    #: largest event time read (ms), None when never seen
    progress: int | None
    #: active, quiet, stalled, released or never seen
    state: str
    #: when it became stalled (wall ms; known for a released input)
    since: int | None = None


def input_states(meta: PartitionMeta, names: dict[str, str], partition: int,
                 stalled_since: dict[str, int]) -> list[InputStatus]:
    """Each input of a partition number, by topic name. The stored state knows quiet and
    released inputs; a quiet one is shown *stalled* while another input of its partition
    number is active (it advances), as the worker sees it."""
    advancing = any(s.value in meta.max_time and s.value not in meta.idle for s in Source)
    rows = []
    for source in Source:
        name = source.value
        if name in meta.released:
            state = "released"
        elif name in meta.idle:
            state = "stalled" if advancing else "quiet"
        elif name not in meta.max_time:
            state = "never seen"
        else:
            state = "active"
        rows.append(InputStatus(names[name], partition, meta.max_time.get(name), state,
                                stalled_since.get(name) if state == "released" else None))
    return sorted(rows, key=lambda r: r.topic)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else format_time(ms)


@dataclass
class Status:
    """The whole report."""

    group: str
    bootstrap: str
    lags: list[Lag] = field(default_factory=list)
    watermarks: dict[int, int | None] = field(default_factory=dict)
    idle: dict[int, list[str]] = field(default_factory=dict)
    open_by_type: Counter[str] = field(default_factory=Counter)
    inputs: list[InputStatus] = field(default_factory=list)
    #: each partition's rule groups and their own watermarks (``runtime.rule_watermarks``)
    rule_watermarks: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: held commands (``HeldCommands.describe`` rows with their partition), oldest first
    held: list[dict[str, Any]] = field(default_factory=list)

    def read_meta(self, records: list[tuple[int, bytes | None, bytes | None]],
                  names: dict[str, str], rules: RuleConfig) -> None:
        """Watermarks, inputs and held commands from the meta table's changelog records
        (partition, key, value), in offset order: the latest value of each key counts."""
        metas: dict[int, PartitionMeta] = {}
        since: dict[int, dict[str, int]] = {}
        blobs: dict[int, MemoryStore] = {}
        for partition, key, value in records:
            if key == META_KEY and value is not None:
                metas[partition] = decode_meta(value)
            elif key == STALLED_KEY:
                since[partition] = _since_decoder.decode(value) if value is not None else {}
            elif key is not None and key.startswith(HELD_PREFIX):
                blobs.setdefault(partition, MemoryStore()).put_blob(key, value)
        for partition, meta in sorted(metas.items()):
            self.watermarks[partition] = meta.watermark
            self.idle[partition] = list(meta.idle)
            self.inputs.extend(input_states(meta, names, partition, since.get(partition, {})))
            self.rule_watermarks[partition] = rule_watermarks(meta, rules.allowed_lateness)
        self.held = sorted(
            ({"partition": p, **row} for p, store in blobs.items()
             for row in HeldCommands(rules, store, lambda: 0).describe()),
            key=lambda r: (r["decided_at"], r["command_id"]))

    @property
    def total_lag(self) -> int:
        """Sum of the lags."""
        return sum(lag.lag for lag in self.lags)

    @property
    def open_mismatches(self) -> int:
        """Mismatches whose latest record is OPEN."""
        return sum(self.open_by_type.values())

    def lag_of(self, topic: str, partition: int) -> int | None:
        """The group's lag on an input topic-partition (None when not known)."""
        for lag in self.lags:
            if (lag.topic, lag.partition) == (topic, partition):
                return lag.lag
        return None

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON data."""
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
            "rule_watermarks": {str(p): [{**g, "watermark": _iso(g["watermark"])}
                                         for g in groups]
                                for p, groups in sorted(self.rule_watermarks.items())},
            "inputs": [
                {"topic": i.topic, "partition": i.partition, "progress": _iso(i.progress),
                 "progress_ms": i.progress, "lag": self.lag_of(i.topic, i.partition),
                 "state": i.state, "since": _iso(i.since)}
                for i in self.inputs
            ],
            "open_mismatches": self.open_mismatches,
            "open_by_type": dict(sorted(self.open_by_type.items())),
            "held_commands": {"count": len(self.held), "commands": [
                {**h, "decided_at": _iso(h["decided_at"]), "held_at": _iso(h["held_at"])}
                for h in self.held]},
        }


def _read_to_end(consumer: Consumer, topic: str) -> list[Any]:
    """Every record of a topic up to its end offsets as of now. A partition is done at its
    last record or when the consumer says it reached the end (``enable.partition.eof``): in
    a topic written in transactions the last offset is a commit marker, never delivered."""
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
            error, partition = msg.error(), msg.partition()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                    done.add(partition)
                continue
            records.append(msg)
            offset = msg.offset()
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
        "enable.partition.eof": True,
    }))
    try:
        names = {s.value: topology.name(TopicId(s.value)) for s in Source}
        status.read_meta([(msg.partition(), msg.key(), msg.value())
                          for msg in _read_to_end(reader, changelog_topic(settings.app_id,
                                                                           META_TABLE))],
                         names, settings.rules)
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
