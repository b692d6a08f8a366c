"""What `crosscheck ingest` checks before it reads: the topics it reads and writes, and whether
the shop's topics are partitioned like the contract's inputs (what to change if not)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from streams.errors import ConfigError
from streams.sources.spec import Format, InputSpec, SourcesFile
from topology.admin import input_partition_count
from topology.topics import TopicId, Topology


class SourceTopicsError(ConfigError):
    """A source topic is missing, or is not partitioned like the contract's inputs."""


@dataclass(frozen=True)
class Layout:
    """The partition counts the ingest works with."""

    inputs: int  #: of every contract input topic (they are co-partitioned)
    dlq: int
    sources: dict[str, int]  #: source topic -> its partition count


def check_layout(client: AdminClient, topology: Topology, sources: SourcesFile, *,
                 repartition: bool = False) -> Layout:
    """The layout, after checking that the contract's topics are there and co-partitioned,
    that every source topic exists, and (unless ``repartition``) that each has the inputs'
    partition count; SourceTopicsError says what to change."""
    inputs = input_partition_count(client, topology)
    metadata = client.list_topics(timeout=15).topics
    dlq_name = topology.name(TopicId.DLQ)
    dlq = metadata.get(dlq_name)
    if dlq is None or dlq.error or not dlq.partitions:
        raise SourceTopicsError(f"the dead-letter topic {dlq_name} is missing (run `crosscheck "
                                "topics create`)")
    problems: list[str] = []
    counts: dict[str, int] = {}
    for spec in sources.mapped():
        found = metadata.get(spec.topic)
        if found is None or found.error or not found.partitions:
            problems.append(missing_topic(spec))
            continue
        counts[spec.topic] = len(found.partitions)
        if counts[spec.topic] != inputs and not repartition:
            problems.append(not_copartitioned(spec, counts[spec.topic], inputs))
    if problems:
        raise SourceTopicsError("\n".join(problems))
    return Layout(inputs, len(dlq.partitions), counts)


def missing_topic(spec: InputSpec) -> str:
    """Why a source topic that does not exist cannot be read, and where it comes from."""
    where = f"{spec.input.value}: source topic {spec.topic!r} does not exist"
    if spec.format is Format.DEBEZIUM:
        return (f"{where}: Debezium creates <topic.prefix>.<schema>.<table> at the table's "
                "first change (given topic.creation.default.partitions when the broker does not "
                "create topics by itself); is the connector running?")
    return f"{where}: create it, or correct topic in [inputs.{spec.input.value}]"


def not_copartitioned(spec: InputSpec, count: int, inputs: int) -> str:
    """What to change so that a source topic is partitioned like the contract's inputs."""
    head = (f"{spec.input.value}: source topic {spec.topic!r} has {count} partition(s), the "
            f"inputs have {inputs}. Every order's records must come in order from one partition "
            f"so that the ingest keeps their order: ")
    tail = (" (or run `crosscheck ingest --repartition`, accepting that after a backlog an "
            "order's events may reach the worker later than the allowed lateness)")
    if spec.format is Format.DEBEZIUM:
        return head + (f"in the connector config set topic.creation.default.partitions="
                       f"{inputs} (a topic that exists: `kafka-topics --alter --partitions "
                       f"{inputs}`, or delete it and restart the connector) and "
                       f"{order_key(spec)}") + tail
    return head + (f"produce it with {inputs} partitions, keyed by the order id with Java's "
                   "murmur2 partitioner (librdkafka clients: partitioner=murmur2_random)") + tail


def order_key(spec: InputSpec) -> str:
    """The connector settings that key a table's changes by the bare order id, which the
    producer's default partitioner (Java's murmur2) then puts on the order's partition."""
    column = order_column(spec)
    return (f"key its changes by the order id: message.key.columns={spec.table}:{column}, a "
            f"transform org.apache.kafka.connect.transforms.ExtractField$Key with field="
            f"{column}, and key.converter=org.apache.kafka.connect.storage.StringConverter")


def order_column(spec: InputSpec) -> str:
    """The column of a debezium input holding the order id (for the connector's key)."""
    ref = spec.fields.get("order_id")
    return ".".join(ref.path) if ref is not None and ref.path else "order_id"


def moved_advice(spec: InputSpec, inputs: int) -> str:
    """The warning when a source record's order id hashes to another partition than the one
    it came from: the topic is not keyed by the order id with murmur2."""
    if spec.format is Format.DEBEZIUM:
        fix = (f"in the connector config, {order_key(spec)} (by default the key is the "
               "table's primary key)")
    else:
        fix = ("key its records by the order id, partitioned with Java's murmur2 "
               "(librdkafka: partitioner=murmur2_random)")
    return (f"{spec.input.value}: records of {spec.topic!r} are not on the partition of their "
            f"order id ({inputs} partitions, murmur2): each is written to its order's "
            f"partition, but their order there is only as good as the lag; {fix}")
