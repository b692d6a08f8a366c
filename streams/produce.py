"""Publishing a JSON Lines file of input events, keyed by order_id with the murmur2 partitioner."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from confluent_kafka import Producer

from schemas.codec import Codec
from schemas.errors import ValidationError
from schemas.validation import TYPES, validate_event
from streams.clients import confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from topology.topics import BY_ID, TopicId, Topology

#: Fast, batching, idempotent producer settings; murmur2_random is Java's partitioner.
PRODUCER_TUNING: dict[str, Any] = {
    "partitioner": "murmur2_random",
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "batch.num.messages": 10000,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "compression.type": "lz4",
}


class LineError(CrosscheckError):
    """A bad line of a JSON Lines file: FILE:LINE: reason."""

    def __init__(self, source: str, lineno: int, reason: str) -> None:
        self.source, self.lineno, self.reason = source, lineno, reason
        super().__init__(f"{source}:{lineno}: {reason}")


@dataclass(frozen=True)
class ParsedLine:
    """One good line: where it goes and the Avro record."""

    topic: TopicId
    key: str
    record: dict[str, Any]


@dataclass
class ProduceReport:
    """What `produce` did."""

    produced: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    bad: list[LineError] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)


def parse_line(text: str, lineno: int, topology: Topology, source: str = "-") -> ParsedLine:
    """Parse one JSON line {"topic": ..., "event": {...}}; LineError says what is wrong."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise LineError(source, lineno, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise LineError(source, lineno, "not a JSON object")
    name = obj.get("topic")
    if not isinstance(name, str):
        raise LineError(source, lineno, "topic: is missing or not a string")
    try:
        topic = topology.topic_id(name)
    except CrosscheckError:
        topic = None
    if topic is None or topic not in TYPES:
        inputs = ", ".join(t.value for t in TYPES)
        raise LineError(source, lineno, f"topic: {name!r} is not an input topic ({inputs})")
    event = obj.get("event")
    if not isinstance(event, dict):
        raise LineError(source, lineno, "event: is missing or not a JSON object")
    try:
        record = validate_event(topic, event)
    except ValidationError as exc:
        raise LineError(source, lineno, f"event.{exc}") from None
    return ParsedLine(topic, record["order_id"], record)


def iter_lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines."""
    for lineno, text in enumerate(stream, start=1):
        if text.strip():
            yield lineno, text


class EventPublisher:
    """A batching producer of encoded input events; delivery errors are collected, not raised."""

    def __init__(self, settings: Settings, codec: Codec | None = None,
                 topology: Topology | None = None) -> None:
        self.codec = codec or Codec()
        self.topology = topology or Topology(settings.partitions, settings.topic_prefix,
                                             settings.topic_overrides)
        self.errors: list[str] = []
        self._producer = Producer(confluent_config(settings, **PRODUCER_TUNING))
        self._names = {t: self.topology.name(t) for t in TYPES}
        self._queued = 0

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and len(self.errors) < 100:
            self.errors.append(f"{msg.topic()}: {err}")

    def publish(self, line: ParsedLine) -> None:
        """Queue one event (waits for room when the local queue is full)."""
        name = self._names[line.topic]
        value = self.codec.encode(BY_ID[line.topic].value_schema, line.record, name)
        while True:
            try:
                self._producer.produce(name, value, line.key.encode(), on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._queued += 1
        if self._queued % 1000 == 0:
            self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued event is acknowledged."""
        remaining = self._producer.flush(timeout)
        if remaining:
            self.errors.append(f"{remaining} events were not acknowledged within {timeout:.0f}s")


def produce_file(path: str, settings: Settings, *, strict: bool = False,
                 progress: bool | None = None,
                 on_bad: Callable[[LineError], None] | None = None) -> ProduceReport:
    """Validate every line, publish the good ones (none if strict and any is bad)."""
    report = ProduceReport()
    publisher = EventPublisher(settings)
    source = path
    stream: IO[str] = sys.stdin if path == "-" else Path(path).open(encoding="utf-8")
    try:
        if strict:
            lines = list(iter_lines(stream))
            parsed = _parse_all(lines, publisher.topology, source, report, on_bad)
            if report.bad:
                return report
            for line in _progress(parsed, len(parsed), progress):
                publisher.publish(line)
                report.produced += 1
                report.by_topic[line.topic.value] += 1
        else:
            total = None if path == "-" else Path(path).stat().st_size
            for lineno, text in _progress_bytes(iter_lines(stream), total, progress):
                try:
                    line = parse_line(text, lineno, publisher.topology, source)
                except LineError as exc:
                    report.bad.append(exc)
                    if on_bad:
                        on_bad(exc)
                    continue
                publisher.publish(line)
                report.produced += 1
                report.by_topic[line.topic.value] += 1
        publisher.flush()
    finally:
        if stream is not sys.stdin:
            stream.close()
    report.delivery_errors = publisher.errors
    return report


def _parse_all(lines: list[tuple[int, str]], topology: Topology, source: str,
               report: ProduceReport,
               on_bad: Callable[[LineError], None] | None) -> list[ParsedLine]:
    parsed: list[ParsedLine] = []
    for lineno, text in lines:
        try:
            parsed.append(parse_line(text, lineno, topology, source))
        except LineError as exc:
            report.bad.append(exc)
            if on_bad:
                on_bad(exc)
    return parsed


def _progress(items: list[ParsedLine], total: int, enabled: bool | None) -> Iterator[ParsedLine]:
    from tqdm import tqdm

    with tqdm(total=total, unit="ev", disable=_disabled(enabled, total * 256), file=sys.stderr) as bar:
        for i, item in enumerate(items, start=1):
            yield item
            if i % 5000 == 0:
                bar.update(5000)
        bar.update(total % 5000)


def _progress_bytes(lines: Iterator[tuple[int, str]], total: int | None,
                    enabled: bool | None) -> Iterator[tuple[int, str]]:
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr,
              disable=_disabled(enabled, total or 0)) as bar:
        pending = 0
        for lineno, text in lines:
            yield lineno, text
            pending += len(text)
            if pending >= 1 << 20:
                bar.update(pending)
                pending = 0
        bar.update(pending)


def _disabled(enabled: bool | None, size: int) -> bool | None:
    """Progress bars only for large inputs on a terminal, unless forced."""
    if enabled is not None:
        return not enabled
    return True if size < 4 << 20 else None
