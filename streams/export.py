"""Reading a topic from the start (read_committed) and writing it decoded as JSON Lines."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.catalog import SchemaInfo
from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.validation import TYPES, format_time
from streams.clients import confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from topology.topics import TopicId


def to_json_record(info: SchemaInfo, record: dict[str, Any]) -> dict[str, Any]:
    """Times (also those of a nested record, such as an alert's source) -> ISO-8601 UTC with
    ms and Z; bytes -> base64 text."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in info.timestamp_fields and isinstance(value, int):
            out[key] = format_time(value)
        elif key in info.nested_timestamps and isinstance(value, dict):
            times = info.nested_timestamps[key]
            out[key] = {k: format_time(v) if k in times and isinstance(v, int) else v
                        for k, v in value.items()}
        elif isinstance(value, bytes):
            out[key] = base64.b64encode(value).decode("ascii")
        else:
            out[key] = value
    return out


def json_line(topic: TopicId, info: SchemaInfo, record: dict[str, Any]) -> str:
    """One exported line: input events in the `produce` form, output records bare."""
    body = to_json_record(info, record)
    obj = {"topic": topic.value, "event": body} if topic in TYPES else body
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def read_topic(settings: Settings, name: str, idle_timeout: float,
               codec: Codec | None = None,
               on_error: Callable[[str], None] | None = None,
               ) -> Iterator[tuple[SchemaInfo, dict[str, Any], Any]]:
    """Yield (schema, record, message) from the beginning until no record came for idle_timeout."""
    codec = codec or Codec()
    consumer = Consumer(confluent_config(
        settings,
        **{
            "group.id": f"crosscheck-export-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        },
    ))
    try:
        metadata = consumer.list_topics(name, timeout=15)
        topic_meta = metadata.topics.get(name)
        if topic_meta is None or topic_meta.error is not None:
            raise CrosscheckError(f"topic {name} does not exist (run `crosscheck topics create`)")
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in topic_meta.partitions])
        last = time.monotonic()
        while time.monotonic() - last < idle_timeout:
            batch = consumer.consume(num_messages=5000, timeout=min(0.5, idle_timeout))
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF and on_error:
                        on_error(f"{name}: {error}")
                    continue
                last = time.monotonic()
                try:
                    info, record = codec.decode(msg.value())
                except DecodeError as exc:
                    if on_error:
                        on_error(f"{name}[{msg.partition()}]@{msg.offset()}: {exc}")
                    continue
                yield info, record, msg
    finally:
        consumer.close()


def export_topic(settings: Settings, topic: TopicId, name: str, out: IO[str],
                 idle_timeout: float = 5.0,
                 on_error: Callable[[str], None] | None = None) -> int:
    """Write every record of a topic to `out` as JSON Lines; returns the count."""
    count = 0
    for info, record, _msg in read_topic(settings, name, idle_timeout, on_error=on_error):
        out.write(json_line(topic, info, record))
        out.write("\n")
        count += 1
    out.flush()
    return count
