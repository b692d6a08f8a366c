"""`crosscheck ingest`: the shop's topics mapped onto the contract's Avro topics, exactly once.

A consume-transform-produce loop (confluent-kafka): a batch of source records is read
(read_committed), each is mapped (``streams.sources.mapping``) and written, keyed by its
order id, to its order's partition (murmur2) of the input's contract topic, or as a dead
letter to ``crosscheck.dlq``; the records written and the batch's source offsets commit in
one transaction (the offsets under the consumer group's metadata, so a fenced instance
cannot commit). A failed transaction is aborted and its batch read again. Skipped records
(tombstones, deletes, unchanged statuses) are counted. The worker, replay and audit read the
contract's topics as always.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from schemas.codec import Codec
from schemas.registry import registry_from
from streams.clients import admin, confluent_config
from streams.clock import wall_ms
from streams.config import Settings
from streams.errors import CrosscheckError
from streams.model import DeadLetter
from streams.records import dead_letter_record
from streams.sources.checks import Layout, check_layout, moved_advice
from streams.sources.mapping import MapError, RawRecord, Skip, map_record
from streams.sources.spec import SourcesFile
from streams.sources.stats import IngestStats
from topology.partitioner import partition_for
from topology.topics import BY_ID, TopicId, Topology

#: transactional producer settings (Java's murmur2 for what has a key; partitions are given)
_PRODUCER: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "compression.type": "lz4",
    "transaction.timeout.ms": 60_000,
}


class IngestError(CrosscheckError):
    """The ingest cannot go on (a transaction failed in a way that cannot be retried)."""


@dataclass(frozen=True)
class Out:
    """One record to write: a contract event or a dead letter."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes


class Translator:
    """Source records -> the records to write, counted in ``stats``."""

    def __init__(self, sources: SourcesFile, topology: Topology, layout: Layout, codec: Codec,
                 stats: IngestStats, clock: Callable[[], int] = wall_ms,
                 warn: Callable[[str], None] | None = None) -> None:
        self.specs = sources.by_topic()
        self.stats = stats
        self.clock = clock
        self.warn = warn
        self.partitions = layout.inputs
        self.dlq_partitions = layout.dlq
        self.names = {spec.input: topology.name(spec.input) for spec in self.specs.values()}
        self.encoders = {topic: codec.encoder(BY_ID[topic].value_schema, name)
                         for topic, name in self.names.items()}
        self.dlq_name = topology.name(TopicId.DLQ)
        self.dlq_encoder = codec.encoder("DeadLetter", self.dlq_name)
        self._warned: set[TopicId] = set()

    def translate(self, records: Iterable[RawRecord]) -> list[Out]:
        """The records to write for these source records, in their order."""
        with self.stats.lock:
            return [out for raw in records if (out := self._one(raw)) is not None]

    def _one(self, raw: RawRecord) -> Out | None:
        spec = self.specs[raw.topic]
        name = spec.input.value
        self.stats.read[name] += 1
        result = map_record(spec, raw)
        if isinstance(result, Skip):
            self.stats.skipped[(name, result.reason)] += 1
            return None
        if isinstance(result, MapError):
            self.stats.dead_letters[name] += 1
            return self.dead_letter(raw, result.message())
        partition = partition_for(result.order_id, self.partitions)
        if partition != raw.partition:
            self.stats.moved[name] += 1
            if spec.input not in self._warned and self.warn is not None:
                self._warned.add(spec.input)
                self.warn(moved_advice(spec, self.partitions))
        try:
            value = self.encoders[spec.input](result.record)
        except (ValueError, TypeError) as exc:  # validated, so not expected: said, not lost
            self.stats.dead_letters[name] += 1
            return self.dead_letter(raw, f"{name}: cannot be encoded: {exc}")
        self.stats.mapped[name] += 1
        return Out(self.names[spec.input], partition, result.order_id.encode(), value)

    def dead_letter(self, raw: RawRecord, reason: str) -> Out:
        """The dead letter of a source record, keyed by its source key."""
        letter = DeadLetter(raw.topic, raw.partition, raw.offset, raw.key, raw.value, reason,
                            self.clock())
        count = self.dlq_partitions
        partition = partition_for(raw.key, count) if raw.key else raw.partition % count
        return Out(self.dlq_name, partition, raw.key, self.dlq_encoder(dead_letter_record(letter)))


def raw_record(msg: Any) -> RawRecord:
    """A confluent-kafka message as a RawRecord."""
    kind, stamp = msg.timestamp()
    return RawRecord(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                     stamp if kind else None, tuple(msg.headers() or ()))


class Ingest:
    """One ingest process: ``start`` checks and connects, ``run`` loops until told to stop."""

    def __init__(self, settings: Settings, sources: SourcesFile, *,
                 topology: Topology | None = None, batch_size: int = 2000,
                 repartition: bool = False, instance: str = "0",
                 warn: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.sources = sources
        self.topology = topology or Topology(settings.partitions, settings.topic_prefix,
                                             settings.topic_overrides)
        self.batch_size = batch_size
        self.repartition = repartition
        self.instance = instance
        self.warn = warn
        self.stats = IngestStats()
        self.group = f"{settings.app_id}-ingest"
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._translator: Translator | None = None
        self._at_end: set[tuple[str, int]] = set()

    @property
    def transactional_id(self) -> str:
        """Stable per instance, so that a restarted instance fences and aborts what its
        predecessor left open."""
        return f"{self.group}-{self.instance}"

    def check(self) -> Layout:
        """Check the topics (SourceTopicsError says what to change), connecting nothing (a
        check beside a running ingest must not fence its transactional id)."""
        if not self.sources.mapped():
            raise IngestError(f"{self.sources.name}: no json or debezium input to ingest")
        return check_layout(admin(self.settings), self.topology, self.sources,
                            repartition=self.repartition)

    def start(self, layout: Layout | None = None) -> Layout:
        """Check the topics (unless ``layout`` is their check) and connect."""
        layout = layout or self.check()
        s = self.settings
        codec = Codec(registry_from(s.schema_registry_url, s.schema_registry_auth))
        self._translator = Translator(self.sources, self.topology, layout, codec, self.stats,
                                      warn=self.warn)
        self._producer = Producer(confluent_config(s, **_PRODUCER, **{
            "transactional.id": self.transactional_id,
            "client.id": f"crosscheck-ingest-{socket.gethostname()}"}))
        self._producer.init_transactions(30)
        self._consumer = Consumer(confluent_config(s, **{
            "group.id": self.group, "enable.auto.commit": False,
            "isolation.level": "read_committed", "auto.offset.reset": "earliest",
            "enable.partition.eof": True}))
        self._consumer.subscribe([spec.topic for spec in self.sources.mapped()],
                                 on_assign=self._assigned)
        return layout

    def _assigned(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._at_end.clear()

    def run(self, stop: threading.Event, *, until_idle: float | None = None,
            report_every: float | None = None,
            on_report: Callable[[str], None] | None = None) -> IngestStats:
        """Ingest until ``stop`` is set (a batch under way is committed first) or, with
        ``until_idle``, until every assigned partition has been at its end that long."""
        consumer = self._consumer
        if consumer is None:
            raise IngestError("start() first")
        last_record = time.monotonic()
        last_report = time.monotonic()
        while not stop.is_set():
            messages = consumer.consume(self.batch_size, 0.1)
            records = self._records(messages)
            if records:
                self._transact(records)
                last_record = time.monotonic()
            now = time.monotonic()
            if report_every and on_report and now - last_report >= report_every:
                on_report(self.stats.summary())
                last_report = now
            if until_idle is not None and now - last_record >= until_idle and self._idle():
                break
        return self.stats

    def _records(self, messages: list[Any]) -> list[Any]:
        records = []
        for msg in messages:
            err = msg.error()
            if err is None:
                self._at_end.discard((msg.topic(), msg.partition()))
                records.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                self._at_end.add((msg.topic(), msg.partition()))
            elif err.fatal():
                raise IngestError(f"the consumer failed: {err}")
            elif self.warn is not None:
                self.warn(f"consumer: {err}")
        return records

    def _idle(self) -> bool:
        assert self._consumer is not None
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        return bool(assigned) and assigned <= self._at_end

    def _transact(self, messages: list[Any]) -> None:
        """Write one batch's records and commit them with its offsets, in one transaction;
        an aborted one is read again."""
        assert self._producer is not None and self._consumer is not None
        assert self._translator is not None
        producer, consumer = self._producer, self._consumer
        first: dict[tuple[str, int], int] = {}
        after: dict[tuple[str, int], int] = {}
        for msg in messages:
            place = (msg.topic(), msg.partition())
            first.setdefault(place, msg.offset())
            after[place] = msg.offset() + 1
        counted = self.stats.snapshot()
        outs = self._translator.translate(raw_record(m) for m in messages)
        try:
            producer.begin_transaction()
            for out in outs:
                self._produce(out)
            producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in after.items()],
                consumer.consumer_group_metadata(), 30)
            self._commit()
        except KafkaException as exc:
            err = exc.args[0]
            if not (isinstance(err, KafkaError) and err.txn_requires_abort()):
                raise IngestError(f"the transaction failed: {err}") from None
            producer.abort_transaction(30)
            self.stats.restore(counted)  # the batch is read, and counted, again
            with self.stats.lock:
                self.stats.aborted += 1
            for (topic, partition), offset in first.items():
                consumer.seek(TopicPartition(topic, partition, offset))
            if self.warn is not None:
                self.warn(f"transaction aborted ({err}); its records are read again")
            return
        with self.stats.lock:
            self.stats.transactions += 1

    def _commit(self) -> None:
        assert self._producer is not None
        for attempt in range(10):
            try:
                self._producer.commit_transaction(30)
                return
            except KafkaException as exc:
                err = exc.args[0]
                if not (isinstance(err, KafkaError) and err.retriable()) or attempt == 9:
                    raise
                time.sleep(0.2)

    def _produce(self, out: Out) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(out.topic, out.value, out.key, partition=out.partition)
                return
            except BufferError:
                self._producer.poll(0.05)

    def close(self) -> None:
        """Leave the group and release the clients (nothing is committed here)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
