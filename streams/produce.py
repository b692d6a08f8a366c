"""Publishing a JSON Lines file of input events, keyed by order_id with the murmur2 partitioner."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, AnyStr, NamedTuple

import msgspec
from confluent_kafka import Producer

from schemas.codec import Codec
from schemas.errors import ValidationError
from schemas.validation import TYPES, parse_event_json
from streams.clients import confluent_config
from streams.config import Settings
from streams.errors import CrosscheckError
from topology.topics import BY_ID, TopicId, Topology

#: Fast, batching, idempotent producer settings; murmur2_random is Java's partitioner.
#: Delivery reports are only raised for failures, so successful sends cost no callback.
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
    "delivery.report.only.error": True,
}


class LineError(CrosscheckError):
    """A bad line of a JSON Lines file: FILE:LINE: reason."""

    def __init__(self, source: str, lineno: int, reason: str) -> None:
        self.source, self.lineno, self.reason = source, lineno, reason
        super().__init__(f"{source}:{lineno}: {reason}")


class ParsedLine(NamedTuple):
    """One good line: where it goes, its key (the order_id) and the Avro record."""

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


class _Line(msgspec.Struct):
    """The envelope of a line; the event is decoded by its topic's typed decoder."""

    topic: str
    event: msgspec.Raw


_LINE = msgspec.json.Decoder(_Line)


class LineParser:
    """Parses lines {"topic": ..., "event": {...}} of one source in one pass each."""

    def __init__(self, topology: Topology, source: str = "-") -> None:
        self.source = source
        names: dict[str, TopicId] = topology.by_name()
        for topic in TopicId:
            names.setdefault(topic.value, topic)
        #: topic name or id -> input topic id (None: a known topic that is not an input)
        self._topics: dict[str, TopicId | None] = {
            name: (topic if topic in TYPES else None) for name, topic in names.items()
        }

    def parse(self, data: bytes | str, lineno: int) -> ParsedLine:
        """The line as a ParsedLine; LineError (FILE:LINE: reason) says what is wrong."""
        try:
            line = _LINE.decode(data)
        except msgspec.ValidationError as exc:
            raise LineError(self.source, lineno, _envelope_reason(str(exc))) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise LineError(self.source, lineno, f"not valid JSON: {exc}") from None
        topic = self._topics.get(line.topic)
        if topic is None:
            inputs = ", ".join(t.value for t in TYPES)
            raise LineError(self.source, lineno,
                            f"topic: {line.topic!r} is not an input topic ({inputs})")
        try:
            record = parse_event_json(topic, line.event)
        except ValidationError as exc:
            reason = str(exc) if exc.field == "event" else f"event.{exc}"
            raise LineError(self.source, lineno, reason) from None
        return ParsedLine(topic, record["order_id"], record)


def _envelope_reason(message: str) -> str:
    if "`topic`" in message or "`$.topic`" in message:
        return "topic: is missing or not a string"
    if "`event`" in message or "`$.event`" in message:
        return "event: is missing or not a JSON object"
    return "not a JSON object"


def iter_lines(stream: Iterable[AnyStr]) -> Iterator[tuple[int, AnyStr]]:
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
        self._producer = Producer(confluent_config(settings, **PRODUCER_TUNING,
                                                   on_delivery=self._on_delivery))
        self._names = {t: self.topology.name(t) for t in TYPES}
        self._encoders = {
            t: self.codec.encoder(BY_ID[t].value_schema, name) for t, name in self._names.items()
        }
        self._queued = 0

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and len(self.errors) < 100:
            self.errors.append(f"{msg.topic()}: {err}")

    def publish(self, line: ParsedLine) -> None:
        """Queue one event (waits for room when the local queue is full)."""
        topic, key, record = line
        value = self._encoders[topic](record)
        name = self._names[topic]
        try:
            self._producer.produce(name, value, key)
        except BufferError:
            while True:
                self._producer.poll(0.05)
                try:
                    self._producer.produce(name, value, key)
                    break
                except BufferError:
                    continue
        self._queued += 1
        if not self._queued & 1023:
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
    parser = LineParser(publisher.topology, path)
    counts: Counter[TopicId] = Counter()
    stream: IO[bytes] = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    try:
        if strict:
            parsed = _parse_all(list(iter_lines(stream)), parser, report, on_bad)
            if report.bad:
                return report
            for line in _progress(parsed, len(parsed), progress):
                publisher.publish(line)
                counts[line.topic] += 1
        else:
            total = None if path == "-" else Path(path).stat().st_size
            parse, publish = parser.parse, publisher.publish
            for lineno, text in _progress_bytes(iter_lines(stream), total, progress):
                try:
                    line = parse(text, lineno)
                except LineError as exc:
                    report.bad.append(exc)
                    if on_bad:
                        on_bad(exc)
                    continue
                publish(line)
                counts[line.topic] += 1
        publisher.flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    for topic, count in counts.items():
        report.by_topic[topic.value] = count
    report.produced = sum(counts.values())
    report.delivery_errors = publisher.errors
    return report


def _parse_all(lines: list[tuple[int, bytes]], parser: LineParser, report: ProduceReport,
               on_bad: Callable[[LineError], None] | None) -> list[ParsedLine]:
    parsed: list[ParsedLine] = []
    for lineno, text in lines:
        try:
            parsed.append(parser.parse(text, lineno))
        except LineError as exc:
            report.bad.append(exc)
            if on_bad:
                on_bad(exc)
    return parsed


def _progress(items: list[ParsedLine], total: int, enabled: bool | None) -> Iterator[ParsedLine]:
    if _disabled(enabled, total * 256):
        yield from items
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="ev", file=sys.stderr) as bar:
        for i, item in enumerate(items, start=1):
            yield item
            if i % 5000 == 0:
                bar.update(5000)
        bar.update(total % 5000)


def _progress_bytes(lines: Iterator[tuple[int, bytes]], total: int | None,
                    enabled: bool | None) -> Iterator[tuple[int, bytes]]:
    if _disabled(enabled, total or 0):
        return lines
    return _with_bar(lines, total)


def _with_bar(lines: Iterator[tuple[int, bytes]], total: int | None) -> Iterator[tuple[int, bytes]]:
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr) as bar:
        pending = 0
        for lineno, text in lines:
            yield lineno, text
            pending += len(text)
            if pending >= 1 << 20:
                bar.update(pending)
                pending = 0
        bar.update(pending)


def _disabled(enabled: bool | None, size: int) -> bool:
    """Progress bars only for large inputs on a terminal, unless forced."""
    if enabled is not None:
        return not enabled
    return size < 4 << 20 or not sys.stderr.isatty()
